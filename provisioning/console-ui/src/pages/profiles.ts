// Site profiles: one configuration per site that every active device there gets, with per-device
// overrides merged over it (set on the device page). Edited as JSON: checked here so typos show at
// once, but the service validates and is the authority.
import { ApiError, api } from '../api.js';
import { dataTable, field, h, loading, mount, notice, pageTitle, timeEl } from '../dom.js';
import { type PageContext, replaceHash } from '../router.js';

interface SiteRow {
  site: string;
  devices: number;
  online: number;
  profileVersion: number | null;
}

interface Profile {
  site: string;
  config: Record<string, unknown>;
  version: number;
  updatedAt: string;
  updatedBy: string;
}

// Well under the service's body limit; a profile is a page of settings, not a file store.
const MAX_PROFILE_CHARS = 64 * 1024;

/** Parses the editor's text; returns the config object or a message saying what is wrong. */
export function parseProfile(text: string): { config: Record<string, unknown> } | { error: string } {
  if (text.length > MAX_PROFILE_CHARS)
    return { error: `The profile is larger than ${MAX_PROFILE_CHARS / 1024} KiB.` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `Not valid JSON: ${(err as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'A profile is a JSON object: { "setting": value, … }.' };
  }
  for (const key of Object.keys(value)) {
    if (key.length > 64)
      return { error: `Setting names are at most 64 characters ("${key.slice(0, 20)}…").` };
  }
  return { config: value as Record<string, unknown> };
}

export async function render(root: HTMLElement, params: URLSearchParams, ctx: PageContext): Promise<void> {
  const title = pageTitle('Site profiles');
  mount(root, title, loading());
  let sites: SiteRow[];
  try {
    sites = (await api<{ items: SiteRow[] }>('/v1/sites')).items;
  } catch (err) {
    mount(root, title, notice(`The sites could not be loaded: ${(err as Error).message}`));
    return;
  }
  if (ctx.signal.aborted) return;

  const editor = h('div', { class: 'profile-editor' });
  const versionCells = new Map<string, HTMLTableCellElement>();
  const versionText = (v: number | null) => (v === null ? h('span', { class: 'muted' }, 'none') : `v${v}`);
  const rows = sites.map((s) => {
    const cell = h('td', { class: 'num' }, versionText(s.profileVersion));
    versionCells.set(s.site, cell);
    return h(
      'tr',
      null,
      h('th', { scope: 'row' }, s.site),
      h('td', { class: 'num' }, String(s.devices)),
      h('td', { class: 'num' }, String(s.online)),
      cell,
      h(
        'td',
        null,
        h(
          'button',
          {
            type: 'button',
            class: 'btn',
            'aria-label': `${ctx.me.role === 'admin' ? 'Edit' : 'View'} the profile of ${s.site}`,
            onclick: () => void openSite(s),
          },
          ctx.me.role === 'admin' ? 'Edit' : 'View',
        ),
      ),
    );
  });
  mount(
    root,
    title,
    h(
      'p',
      { class: 'hint' },
      'A profile is the configuration every device at a site gets. Settings made on a device page override it for that device.',
    ),
    sites.length === 0
      ? notice('No sites yet: a site appears when the first device there is claimed.', 'info')
      : h(
          'div',
          { class: 'card table-wrap' },
          dataTable({ class: 'table' }, 'Sites', ['Site', 'Devices', 'Online', 'Profile', 'Action'], rows),
        ),
    editor,
  );

  async function openSite(site: SiteRow): Promise<void> {
    replaceHash(`#/profiles?site=${encodeURIComponent(site.site)}`);
    mount(editor, loading(`Loading the profile of ${site.site}…`));
    let profile: Profile | null = null;
    try {
      profile = await api<Profile>(`/v1/sites/${encodeURIComponent(site.site)}/profile`);
    } catch (err) {
      // 404 = the site has no profile yet: start from an empty one.
      if (!(err instanceof ApiError && err.status === 404)) {
        mount(editor, notice(`The profile could not be loaded: ${(err as Error).message}`));
        return;
      }
    }
    if (ctx.signal.aborted) return;
    renderEditor(editor, site, profile, ctx, (version) =>
      versionCells.get(site.site)?.replaceChildren(versionText(version)),
    );
  }

  const wanted = params.get('site');
  const initial = sites.find((s) => s.site === wanted);
  if (initial) await openSite(initial);
}

/** Who gets a profile, and when: online devices on their next heartbeat, offline ones on return. */
export function reachText(site: SiteRow): string {
  const offline = site.devices - site.online;
  const n = (k: number) => `${k} ${k === 1 ? 'device' : 'devices'}`;
  if (site.devices === 0)
    return `No active device at ${site.site} yet: devices claimed there later get this profile.`;
  if (offline === 0)
    return `${n(site.devices)} at ${site.site} get this profile, all online: within a minute.`;
  if (site.online === 0) {
    return `${n(site.devices)} at ${site.site} get this profile; all are offline now: each gets it when it comes back.`;
  }
  return `${n(site.devices)} at ${site.site} get this profile: ${site.online} online within a minute, ${offline} offline when they come back.`;
}

function renderEditor(
  editor: HTMLElement,
  site: SiteRow,
  profile: Profile | null,
  ctx: PageContext,
  onSaved: (version: number) => void,
): void {
  const admin = ctx.me.role === 'admin';
  const heading = h('h2', { tabindex: '-1' }, `Profile of ${site.site}`);
  const text = h('textarea', {
    class: 'json-editor',
    spellcheck: 'false',
    autocomplete: 'off',
    readonly: !admin,
  });
  text.value = JSON.stringify(profile?.config ?? {}, null, 2);
  // Tall enough for the profile as it is, within reason.
  text.rows = Math.min(28, Math.max(8, text.value.split('\n').length + 2));
  const problem = h('div', { class: 'profile-problem' });
  const result = h('div', { class: 'profile-result' });
  const reach = h('p', { class: 'hint', 'data-testid': 'profile-reach' }, reachText(site));
  const meta = profile
    ? h(
        'p',
        { class: 'muted' },
        `Version ${profile.version}, saved by ${profile.updatedBy} `,
        timeEl(profile.updatedAt),
        '.',
      )
    : h('p', { class: 'muted' }, 'No profile yet: devices here run with their own settings only.');

  const check = (): Record<string, unknown> | null => {
    const parsed = parseProfile(text.value);
    if ('error' in parsed) {
      text.setAttribute('aria-invalid', 'true');
      problem.replaceChildren(notice(parsed.error, 'error'));
      return null;
    }
    text.removeAttribute('aria-invalid');
    problem.replaceChildren();
    return parsed.config;
  };
  text.addEventListener('input', () => {
    result.replaceChildren();
    check();
  });

  const save = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save profile');
  const form = h(
    'form',
    { class: 'profile-form', novalidate: true },
    field(
      'Configuration (JSON)',
      text,
      admin
        ? 'A JSON object; the service checks it again when you save.'
        : 'Read only: the helpdesk role cannot change profiles.',
    ),
    problem,
    reach,
    admin ? h('div', { class: 'toolbar' }, save) : null,
    result,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!admin) return;
    const config = check();
    if (!config) {
      text.focus();
      return;
    }
    save.disabled = true;
    result.replaceChildren(loading('Saving…'));
    try {
      const saved = await api<Profile & { devicesUpdated?: number }>(
        `/v1/sites/${encodeURIComponent(site.site)}/profile`,
        { method: 'PUT', body: { config } },
      );
      if (ctx.signal.aborted) return;
      text.value = JSON.stringify(saved.config ?? config, null, 2);
      const changed =
        typeof saved.devicesUpdated === 'number'
          ? ` ${saved.devicesUpdated} devices get a new configuration.`
          : '';
      result.replaceChildren(
        notice(`Saved version ${saved.version} of the ${site.site} profile.${changed}`, 'ok'),
      );
      meta.replaceChildren(
        `Version ${saved.version}, saved by ${saved.updatedBy} `,
        timeEl(saved.updatedAt),
        '.',
      );
      onSaved(saved.version);
    } catch (err) {
      if (ctx.signal.aborted) return;
      result.replaceChildren(notice(`The profile was not saved: ${(err as Error).message}`, 'error'));
    } finally {
      save.disabled = false;
    }
  });
  mount(editor, h('section', { class: 'card' }, heading, meta, form));
  heading.focus();
}
