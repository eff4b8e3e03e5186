// Software updates (issue 14): the Rollout page (`#/updates`: per channel, devices by running
// version and update state, the newest published release; devices whose update failed or rolled
// back; an admin assigns a site's channel, window or pause) and the device page's Update card (what
// IT assigned, what the device last reported, with progress; an admin changes this device's).
// Channel, window and pause are plain device configuration (key `update`), see docs/updates.md.
import { ApiError, api, query } from '../api.js';
import { badge, dataTable, field, h, loading, mount, notice, pageTitle, timeEl, uid } from '../dom.js';
import type { PageContext } from '../router.js';
import type { DeviceDetail, DeviceUpdate, Rollout, UpdatePolicy, UpdatePolicyChange } from '../types.js';

/** The update policy in a configuration object (same defaults as the service's updatePolicyOf). */
export function policyOf(config: Record<string, unknown> | undefined): UpdatePolicy {
  const u = config?.update;
  const o = (typeof u === 'object' && u !== null && !Array.isArray(u) ? u : {}) as Record<string, unknown>;
  const w = o.window as { start?: unknown; end?: unknown } | undefined;
  return {
    channel: typeof o.channel === 'string' && CHANNEL_RE.test(o.channel) ? o.channel : 'stable',
    window:
      w && typeof w.start === 'string' && typeof w.end === 'string' ? { start: w.start, end: w.end } : null,
    paused: o.paused === true,
  };
}

const CHANNEL_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** States during which the card refreshes itself (an update under way). */
const BUSY = new Set(['available', 'downloading', 'waiting', 'installing', 'restarting', 'verifying']);
const POLL_MS = 5000;

const STATE_LABEL: Record<string, string> = {
  idle: 'Up to date',
  available: 'Update available',
  downloading: 'Downloading',
  waiting: 'Waiting for the window or the meeting to end',
  installing: 'Installing',
  restarting: 'Restarting',
  verifying: 'Checking the new version',
  committed: 'Updated',
  'rolled-back': 'Rolled back',
  failed: 'Failed',
  unknown: 'Never reported',
};

export function stateBadge(state: string): HTMLSpanElement {
  const label = STATE_LABEL[state] ?? state;
  if (state === 'committed' || state === 'idle') return badge(label, 'ok');
  if (state === 'failed' || state === 'rolled-back') return badge(label, 'bad');
  if (state === 'unknown') return badge(label, 'muted');
  if (state === 'waiting' || state === 'available') return badge(label, 'info');
  return badge(label, 'warn');
}

/** The form's values as a policy change, or a message saying what is wrong. */
export function policyFromForm(v: {
  channel: string;
  windowOn: boolean;
  start: string;
  end: string;
  paused: boolean;
}): UpdatePolicyChange | { error: string } {
  const channel = v.channel.trim();
  if (!CHANNEL_RE.test(channel))
    return { error: 'A channel is lower-case letters, digits and "-" (at most 32), e.g. stable or canary.' };
  let window: UpdatePolicyChange['window'] = null;
  if (v.windowOn) {
    const t = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
    if (!t.test(v.start) || !t.test(v.end))
      return { error: 'The window needs a start and an end time (HH:MM).' };
    if (v.start === v.end) return { error: 'The window must start and end at different times.' };
    window = { start: v.start, end: v.end };
  }
  return { channel, window, paused: v.paused };
}

/** Channel, window and pause inputs, prefilled; `submit` gets the change (already checked). */
function policyForm(
  initial: { channel: string; window: { start: string; end: string } | null; paused: boolean },
  label: string,
  submit: (change: UpdatePolicyChange, status: HTMLElement) => Promise<void>,
  extra?: HTMLElement,
): HTMLFormElement & { fill(p: UpdatePolicy): void; touched(): boolean } {
  const channel = h('input', {
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    value: initial.channel,
  });
  channel.value = initial.channel;
  const windowOn = h('input', { type: 'checkbox' });
  windowOn.checked = initial.window !== null;
  const start = h('input', { type: 'time', value: initial.window?.start ?? '22:00' });
  const end = h('input', { type: 'time', value: initial.window?.end ?? '05:00' });
  const paused = h('input', { type: 'checkbox' });
  paused.checked = initial.paused;
  const syncWindow = () => {
    start.disabled = !windowOn.checked;
    end.disabled = !windowOn.checked;
  };
  windowOn.addEventListener('change', syncWindow);
  syncWindow();
  const windowId = uid('w');
  const pausedId = uid('p');
  windowOn.id = windowId;
  paused.id = pausedId;
  const status = h('div', { class: 'save-status' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary' }, label);
  const form = h(
    'form',
    { class: 'update-policy' },
    extra ?? null,
    field('Channel', channel, 'stable for the fleet, canary (or any ring name) to try a release first.'),
    h(
      'div',
      { class: 'checkbox' },
      windowOn,
      h('label', { for: windowId }, 'Only install in a maintenance window'),
    ),
    h('div', { class: 'row' }, field('From', start), field('Until', end)),
    h(
      'p',
      { class: 'hint' },
      'Device local time; a window may cross midnight (22:00 until 05:00). Updates also wait for a meeting to end.',
    ),
    h('div', { class: 'checkbox' }, paused, h('label', { for: pausedId }, 'Pause updates')),
    h('div', { class: 'row' }, save),
    status,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const change = policyFromForm({
      channel: channel.value,
      windowOn: windowOn.checked,
      start: start.value,
      end: end.value,
      paused: paused.checked,
    });
    if ('error' in change) {
      mount(status, notice(change.error));
      return;
    }
    save.disabled = true;
    mount(status, loading('Saving…'));
    try {
      await submit(change, status);
    } catch (err) {
      mount(status, notice(`Not saved: ${(err as Error).message}`));
    } finally {
      save.disabled = false;
    }
  });
  /** Show another policy (e.g. after another site was picked). */
  const fill = (p: UpdatePolicy) => {
    channel.value = p.channel;
    windowOn.checked = p.window !== null;
    if (p.window) {
      start.value = p.window.start;
      end.value = p.window.end;
    }
    paused.checked = p.paused;
    syncWindow();
    status.replaceChildren();
  };
  let touched = false;
  form.addEventListener('input', () => {
    touched = true;
  });
  return Object.assign(form, { fill, touched: () => touched });
}

// ── the device page's card ──────────────────────────────────────────────────────────────────

function reportedFacts(u: DeviceUpdate): HTMLElement {
  const r = u.reported;
  if (!r) return h('p', { class: 'muted' }, 'The device has not reported an update state yet.');
  const rows: [string, Node | string][] = [
    ['State', stateBadge(r.state)],
    ['Running', h('span', { class: 'mono' }, r.current)],
  ];
  if (r.target) rows.push(['Target', h('span', { class: 'mono' }, r.target)]);
  if (r.progress !== null && BUSY.has(r.state)) {
    const pct = Math.round(r.progress * 100);
    rows.push([
      'Progress',
      h(
        'span',
        { class: 'update-progress' },
        h('progress', { max: '100', value: String(pct), 'aria-label': `Download ${pct} percent` }),
        ` ${pct} %`,
      ),
    ]);
  }
  if (r.error) rows.push(['Error', h('span', { class: 'break' }, r.error)]);
  rows.push(['Reported', timeEl(r.at)]);
  return h(
    'dl',
    { class: 'facts' },
    rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
  );
}

function assignedFacts(u: DeviceUpdate): HTMLElement {
  return h(
    'dl',
    { class: 'facts' },
    h('dt', null, 'Channel'),
    h(
      'dd',
      null,
      h('span', { class: 'mono' }, u.channel),
      u.channelPending ? [' ', badge('Not applied yet', 'info')] : null,
    ),
    h('dt', null, 'Window'),
    h('dd', null, u.window ? `${u.window.start}–${u.window.end} (device time)` : 'any time'),
    h('dt', null, 'Updates'),
    h('dd', null, u.paused ? badge('Paused', 'warn') : 'on'),
  );
}

/** The Update card of a device page; refreshes itself while an update is under way. */
export function updateCard(d: DeviceDetail, canEdit: boolean, ctx: PageContext): HTMLElement {
  const headingId = uid('h');
  const body = h('div', { class: 'update-body' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  ctx.signal.addEventListener('abort', () => clearTimeout(timer));
  const show = (u: DeviceUpdate | undefined) => {
    if (!u) {
      mount(body, h('p', { class: 'muted' }, 'This service does not report updates.'));
      return;
    }
    mount(
      body,
      reportedFacts(u),
      h('h3', null, 'Assigned'),
      assignedFacts(u),
      canEdit
        ? h(
            'details',
            { class: 'update-edit' },
            h('summary', null, 'Change for this device'),
            policyForm(u, 'Save for this device', async (change, status) => {
              await api(`/v1/devices/${encodeURIComponent(d.id)}/update-policy`, {
                method: 'PUT',
                body: change,
              });
              mount(status, notice('Saved: the device gets it with its next heartbeat.', 'ok'));
              await refresh(false);
            }),
          )
        : null,
    );
    clearTimeout(timer);
    if (u.reported && BUSY.has(u.reported.state) && !ctx.signal.aborted)
      timer = setTimeout(() => void refresh(true), POLL_MS);
  };
  const refresh = async (whole: boolean) => {
    try {
      const fresh = await api<DeviceDetail>(`/v1/devices/${encodeURIComponent(d.id)}`);
      if (ctx.signal.aborted) return;
      if (whole) show(fresh.update);
      else {
        // Keep the open form and its status; only the facts change.
        const facts = body.querySelectorAll('dl.facts');
        if (fresh.update && facts.length === 2) {
          facts[0]!.replaceWith(reportedFacts(fresh.update));
          facts[1]!.replaceWith(assignedFacts(fresh.update));
        }
      }
    } catch {
      // the next refresh (or a reload) tries again
      if (!ctx.signal.aborted) timer = setTimeout(() => void refresh(true), POLL_MS);
    }
  };
  show(d.update);
  return h(
    'section',
    { class: 'card', 'aria-labelledby': headingId, 'data-testid': 'update-card' },
    h('h2', { id: headingId }, 'Update'),
    body,
  );
}

// ── the Rollout page ────────────────────────────────────────────────────────────────────────

const counts = (m: Record<string, number>) =>
  Object.entries(m).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));

export async function render(root: HTMLElement, params: URLSearchParams, ctx: PageContext): Promise<void> {
  const title = pageTitle('Updates');
  mount(root, title, loading('Loading the rollout…'));
  const site = params.get('site') ?? '';
  let rollout: Rollout;
  let sites: string[] = [];
  try {
    [rollout, sites] = await Promise.all([
      api<Rollout>(`/v1/fleet/updates${query({ site })}`),
      api<{ items: { site: string }[] }>('/v1/sites').then((r) => r.items.map((s) => s.site)),
    ]);
  } catch (err) {
    mount(root, title, notice(`The rollout could not be loaded: ${(err as Error).message}`));
    return;
  }
  if (ctx.signal.aborted) return;

  const siteSelect = h(
    'select',
    null,
    h('option', { value: '' }, 'All sites'),
    sites.map((s) => h('option', { value: s, selected: s === site }, s)),
  );
  siteSelect.addEventListener('change', () => {
    location.hash = `#/updates${query({ site: siteSelect.value })}`;
  });

  const channels = rollout.channels.length
    ? dataTable(
        { class: 'table' },
        'Devices per update channel',
        ['Channel', 'Devices', 'Newest release', 'Running', 'Update state', 'Paused'],
        rollout.channels.map((c) =>
          h(
            'tr',
            { 'data-channel': c.channel },
            h('th', { scope: 'row' }, h('span', { class: 'mono' }, c.channel)),
            h('td', { class: 'num' }, String(c.devices)),
            h(
              'td',
              null,
              Object.entries(c.latest).length
                ? Object.entries(c.latest).map(([arch, v]) =>
                    h(
                      'div',
                      null,
                      h('span', { class: 'mono' }, v),
                      h('span', { class: 'muted' }, ` ${arch}`),
                    ),
                  )
                : h('span', { class: 'muted' }, '—'),
            ),
            h(
              'td',
              null,
              counts(c.versions).map(([v, n]) => h('div', null, h('span', { class: 'mono' }, v), ` × ${n}`)),
            ),
            h(
              'td',
              null,
              h(
                'span',
                { class: 'badges' },
                counts(c.states).map(([s, n]) => h('span', null, stateBadge(s), ` ${n}`)),
              ),
              c.channelPending ? h('div', { class: 'muted' }, `${c.channelPending} not switched yet`) : null,
            ),
            h('td', { class: 'num' }, c.paused ? badge(String(c.paused), 'warn') : '0'),
          ),
        ),
      )
    : h('p', { class: 'muted' }, 'No active devices and no published releases yet.');

  const problems = rollout.problems.length
    ? dataTable(
        { class: 'table' },
        'Devices whose update failed or rolled back',
        ['Room', 'State', 'Running', 'Target', 'Error', 'When'],
        rollout.problems.map((p) =>
          h(
            'tr',
            { class: 'row-missing', 'data-problem': p.deviceId },
            h(
              'th',
              { scope: 'row' },
              h('a', { href: `#/devices/${encodeURIComponent(p.deviceId)}` }, p.roomName ?? p.deviceId),
              p.site ? h('div', { class: 'muted' }, p.site) : null,
            ),
            h('td', null, stateBadge(p.state)),
            h('td', null, h('span', { class: 'mono' }, p.current)),
            h('td', null, p.target ? h('span', { class: 'mono' }, p.target) : '—'),
            h('td', { class: 'break' }, p.error ?? '—'),
            h('td', null, timeEl(p.at)),
          ),
        ),
      )
    : h('p', { class: 'muted' }, 'No device failed or rolled back an update.');

  const section = (heading: string, ...children: (Node | null)[]) => {
    const id = uid('h');
    return h('section', { class: 'card wide', 'aria-labelledby': id }, h('h2', { id }, heading), children);
  };

  let assign: HTMLElement | null = null;
  if (ctx.me.role === 'admin') {
    const target = h(
      'select',
      { required: true },
      sites.map((s) => h('option', { value: s, selected: s === site }, s)),
    );
    const siteForm = policyForm(
      { channel: 'stable', window: null, paused: false },
      'Save for the site',
      async (change, status) => {
        const r = await api<{ devicesChanged: number }>(
          `/v1/sites/${encodeURIComponent(target.value)}/update-policy`,
          { method: 'PUT', body: change },
        );
        mount(
          status,
          notice(
            `Saved for ${target.value}: ${r.devicesChanged} device${r.devicesChanged === 1 ? '' : 's'} get a new configuration with their next heartbeat.`,
            'ok',
          ),
        );
      },
      field('Site', target),
    );
    // The form shows what the picked site has now (its profile's `update` key, or the defaults).
    const loadSite = async (first: boolean) => {
      const picked = target.value;
      // The first load never overwrites what someone already started typing.
      const ok = () => target.value === picked && !ctx.signal.aborted && !(first && siteForm.touched());
      if (!picked) return;
      try {
        const p = await api<{ config: Record<string, unknown> }>(
          `/v1/sites/${encodeURIComponent(picked)}/profile`,
        );
        if (ok()) siteForm.fill(policyOf(p.config));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404 && ok()) siteForm.fill(policyOf(undefined));
      }
    };
    target.addEventListener('change', () => void loadSite(false));
    void loadSite(true);
    assign = sites.length
      ? section(
          "Assign a site's channel",
          h(
            'p',
            { class: 'muted' },
            "Changes the site profile's update settings; a device's own setting (on its page) wins over its site's.",
          ),
          siteForm,
        )
      : null;
  }

  mount(
    root,
    title,
    h('div', { class: 'row filters', 'data-testid': 'rollout' }, field('Site', siteSelect)),
    section('Channels', channels),
    section('Needs attention', problems),
    assign,
  );
}
