// Alert settings: the five rules (on/off and their threshold), where incidents are delivered
// (webhooks signed with a per-target secret, e-mail) and the deliveries that gave up (dead letters)
// with a Retry. Helpdesk sees all of it read-only.
import { api } from '../api.js';
import {
  badge,
  confirmDialog,
  dataTable,
  field,
  h,
  loading,
  mount,
  notice,
  pageTitle,
  timeEl,
  uid,
} from '../dom.js';
import type { PageContext } from '../router.js';
import { type Incident, RULE_NAMES } from './incidents.js';

interface Rule {
  id: string;
  kind: string;
  params: Record<string, unknown>;
  enabled: boolean;
  updatedAt: string;
}

interface Target {
  id: string;
  kind: 'webhook' | 'email';
  name: string;
  url?: string | null;
  email?: string | null;
  enabled?: boolean;
  createdAt?: string;
}

interface Delivery {
  id: string;
  targetId: string;
  incidentId: string;
  event: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

/** The one number each rule takes, with the service's bounds (rules.ts PARAM_BOUNDS; it re-checks). */
export const RULE_PARAMS: Record<
  string,
  { key: string; label: string; unit: string; min: number; max: number; integer: boolean }
> = {
  offline: {
    key: 'minutes',
    label: 'Offline for at least',
    unit: 'minutes',
    min: 1,
    max: 10_080,
    integer: true,
  },
  temperature: { key: 'celsius', label: 'Temperature above', unit: '°C', min: -40, max: 200, integer: false },
  'certificate-expiring': {
    key: 'days',
    label: 'Certificate expires within',
    unit: 'days',
    min: 1,
    max: 365,
    integer: true,
  },
};

const EVENT_WORDS: Record<string, string> = {
  'incident.opened': 'Opened',
  'incident.acknowledged': 'Acknowledged',
  'incident.resolved': 'Resolved',
};

const RULE_HELP: Record<string, string> = {
  offline: 'A device sent no heartbeat for this long.',
  'peripheral-missing': 'A camera, microphone, speaker, display or HID the device had is gone.',
  temperature: 'The device reports a temperature above this.',
  'certificate-expiring': 'The device certificate expires soon and was not renewed.',
  'selftest-failed': 'The self-test at boot reported failures.',
};

/** http(s) URL without credentials, as the service requires; returns a message when not. */
export function webhookUrlProblem(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'Enter a full URL such as https://hooks.example.org/sealroom.';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'Webhook URLs use https:// (or http://).';
  if (url.username || url.password)
    return 'Put no user name or password in the URL: the secret signs each request.';
  return null;
}

export async function render(root: HTMLElement, _params: URLSearchParams, ctx: PageContext): Promise<void> {
  const admin = ctx.me.role === 'admin';
  const title = pageTitle('Alerts');
  const rules = h('section', { class: 'card', 'aria-labelledby': 'alerts-rules' });
  const targets = h('section', { class: 'card', 'aria-labelledby': 'alerts-targets' });
  const dead = h('section', { class: 'card', 'aria-labelledby': 'alerts-dead' });
  mount(
    root,
    title,
    admin ? null : notice('Read only: the helpdesk role sees alert settings but cannot change them.', 'info'),
    rules,
    targets,
    dead,
  );
  await Promise.all([drawRules(rules, ctx), drawTargets(targets, ctx), drawDead(dead, ctx)]);
}

/**
 * Shows `heading` and a loading line in `section`, then runs `load`: its result, or undefined when
 * it failed (the section then says why) or the page was left meanwhile.
 */
async function loadInto<T>(
  section: HTMLElement,
  heading: HTMLElement,
  what: string,
  ctx: PageContext,
  load: () => Promise<T>,
): Promise<T | undefined> {
  mount(section, heading, loading());
  try {
    const value = await load();
    return ctx.signal.aborted ? undefined : value;
  } catch (err) {
    mount(section, heading, notice(`The ${what} could not be loaded: ${(err as Error).message}`));
    return undefined;
  }
}

// ---- rules ----

async function drawRules(section: HTMLElement, ctx: PageContext): Promise<void> {
  const heading = h('h2', { id: 'alerts-rules' }, 'Rules');
  const items = await loadInto(
    section,
    heading,
    'rules',
    ctx,
    async () => (await api<{ items: Rule[] }>('/v1/alerts/rules')).items,
  );
  if (!items) return;
  mount(
    section,
    heading,
    h(
      'div',
      { class: 'grid rules' },
      items.map((r) => ruleForm(r, ctx)),
    ),
  );
}

function ruleForm(rule: Rule, ctx: PageContext): HTMLFormElement {
  const admin = ctx.me.role === 'admin';
  const name = RULE_NAMES[rule.id] ?? rule.id;
  const spec = RULE_PARAMS[rule.id];
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: rule.enabled, disabled: !admin });
  const enabledId = uid('rule');
  enabled.id = enabledId;
  const number = spec
    ? h('input', {
        type: 'number',
        name: spec.key,
        min: String(spec.min),
        max: String(spec.max),
        step: spec.integer ? '1' : 'any',
        required: true,
        inputmode: spec.integer ? 'numeric' : 'decimal',
        value: String(rule.params[spec.key] ?? ''),
        disabled: !admin,
      })
    : null;
  const status = h('div', { class: 'rule-status' });
  const save = h('button', { type: 'submit', class: 'btn', 'aria-label': `Save the ${name} rule` }, 'Save');
  const form = h(
    'form',
    { class: 'rule', 'data-rule': rule.id, novalidate: true },
    h('h3', null, name, ' ', rule.enabled ? badge('On', 'ok') : badge('Off', 'muted')),
    h('p', { class: 'hint' }, RULE_HELP[rule.id] ?? ''),
    h(
      'div',
      { class: 'checkbox' },
      enabled,
      h('label', { for: enabledId }, `Raise ${name.toLowerCase()} incidents`),
    ),
    number && spec ? field(`${spec.label} (${spec.unit})`, number) : null,
    admin ? save : null,
    status,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!admin) return;
    const body: { enabled: boolean; params?: Record<string, number> } = { enabled: enabled.checked };
    if (number && spec) {
      const v = Number(number.value);
      const bad =
        number.value.trim() === '' ||
        !Number.isFinite(v) ||
        (spec.integer && !Number.isInteger(v)) ||
        v < spec.min ||
        v > spec.max;
      if (bad) {
        number.setAttribute('aria-invalid', 'true');
        const kind = spec.integer ? 'a whole number' : 'a number';
        status.replaceChildren(
          notice(`${spec.label}: ${kind} from ${spec.min} to ${spec.max} ${spec.unit}.`),
        );
        number.focus();
        return;
      }
      number.removeAttribute('aria-invalid');
      body.params = { ...(rule.params as Record<string, number>), [spec.key]: v };
    }
    save.disabled = true;
    try {
      const saved = await api<Rule>(`/v1/alerts/rules/${encodeURIComponent(rule.id)}`, {
        method: 'PUT',
        body,
      });
      if (ctx.signal.aborted) return;
      const next =
        saved && typeof saved === 'object' && 'enabled' in saved
          ? saved
          : { ...rule, ...body, params: body.params ?? rule.params };
      const fresh = ruleForm(next as Rule, ctx);
      form.replaceWith(fresh);
      fresh.querySelector('.rule-status')?.replaceChildren(notice(`Saved the ${name} rule.`, 'ok'));
      fresh.querySelector<HTMLButtonElement>('button[type=submit]')?.focus();
    } catch (err) {
      if (ctx.signal.aborted) return;
      save.disabled = false;
      status.replaceChildren(notice(`Not saved: ${(err as Error).message}`));
    }
  });
  return form;
}

// ---- targets ----

type Created = Target & { secret: string };

/** Draws the targets; `created` is a webhook just added, whose secret is shown this once. */
async function drawTargets(section: HTMLElement, ctx: PageContext, created?: Created): Promise<void> {
  const admin = ctx.me.role === 'admin';
  const heading = h('h2', { id: 'alerts-targets' }, 'Delivery targets');
  const items = await loadInto(
    section,
    heading,
    'targets',
    ctx,
    async () => (await api<{ items: Target[] }>('/v1/alerts/targets')).items,
  );
  if (!items) return;
  const secretBox = h('div', { class: 'secret-box' });
  const message = h('div', { class: 'targets-message' });
  const redraw = (made?: Created) => drawTargets(section, ctx, made);

  const table =
    items.length === 0
      ? notice('No targets: incidents show here in the console only.', 'info')
      : h(
          'div',
          { class: 'table-wrap' },
          dataTable(
            { class: 'table', 'data-testid': 'targets' },
            'Delivery targets',
            ['Name', 'Kind', 'Destination', 'Added', ...(admin ? ['Action'] : [])],
            items.map((t) =>
              h(
                'tr',
                { 'data-target': t.id },
                h('th', { scope: 'row' }, t.name),
                h('td', null, t.kind === 'webhook' ? 'Webhook' : 'E-mail'),
                h('td', { class: 'break' }, (t.kind === 'webhook' ? t.url : t.email) ?? '—'),
                h('td', null, timeEl(t.createdAt ?? null)),
                admin
                  ? h(
                      'td',
                      null,
                      h(
                        'button',
                        {
                          type: 'button',
                          class: 'btn btn-danger',
                          'aria-label': `Delete the target ${t.name}`,
                          onclick: () => void remove(t),
                        },
                        'Delete',
                      ),
                    )
                  : null,
              ),
            ),
          ),
        );

  async function remove(t: Target): Promise<void> {
    const ok = await confirmDialog({
      title: `Delete ${t.name}?`,
      message: `Incidents will no longer be delivered to ${(t.kind === 'webhook' ? t.url : t.email) ?? t.name}. Pending deliveries to it are dropped.`,
      confirmLabel: 'Delete target',
      danger: true,
    });
    if (!ok || ctx.signal.aborted) return;
    try {
      await api(`/v1/alerts/targets/${encodeURIComponent(t.id)}`, { method: 'DELETE' });
      await drawTargets(section, ctx);
      section.querySelector('.targets-message')?.replaceChildren(notice(`Deleted ${t.name}.`, 'ok'));
    } catch (err) {
      message.replaceChildren(notice(`Not deleted: ${(err as Error).message}`));
    }
  }

  mount(
    section,
    heading,
    message,
    secretBox,
    table,
    admin ? h('div', { class: 'grid' }, webhookForm(ctx, redraw), emailForm(ctx, redraw)) : null,
  );
  if (created) showSecret(secretBox, created);
}

function webhookForm(ctx: PageContext, redraw: (made?: Created) => Promise<void>): HTMLFormElement {
  const name = h('input', {
    type: 'text',
    name: 'name',
    required: true,
    maxlength: '120',
    autocomplete: 'off',
  });
  const url = h('input', {
    type: 'url',
    name: 'url',
    required: true,
    maxlength: '2000',
    autocomplete: 'off',
    placeholder: 'https://hooks.example.org/sealroom',
  });
  const problem = h('div');
  const form = h(
    'form',
    { class: 'target-form', novalidate: true, 'aria-labelledby': 'add-webhook' },
    h('h3', { id: 'add-webhook' }, 'Add a webhook'),
    field('Name', name),
    field('URL', url, 'Each request is signed (x-sealroom-signature, HMAC-SHA256) with a secret shown once.'),
    problem,
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add webhook'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const n = name.value.trim();
    const u = url.value.trim();
    if (!n) return fieldError(problem, name, 'Give the webhook a name.');
    const bad = webhookUrlProblem(u);
    if (bad) return fieldError(problem, url, bad);
    try {
      const created = await api<Created>('/v1/alerts/targets', {
        method: 'POST',
        body: { kind: 'webhook', name: n, url: u },
      });
      if (ctx.signal.aborted) return;
      // The secret lives only in this closure and the box it is shown in; a reload loses it for good.
      await redraw(created);
    } catch (err) {
      problem.replaceChildren(notice(`Not added: ${(err as Error).message}`));
    }
  });
  return form;
}

function showSecret(box: HTMLElement, created: Created): void {
  const input = h('input', {
    type: 'text',
    readonly: true,
    class: 'secret',
    spellcheck: 'false',
    'data-testid': 'webhook-secret',
    value: created.secret,
  });
  const copied = h('span', { class: 'copy-status', role: 'status' });
  const copy = h('button', { type: 'button', class: 'btn btn-primary' }, 'Copy secret');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(created.secret);
      copied.textContent = 'Copied.';
    } catch {
      // No clipboard permission (http, old browser): select it so Ctrl+C / long-press works.
      input.select();
      copied.textContent = 'Selected: copy it with Ctrl+C.';
    }
  });
  const done = h('button', { type: 'button', class: 'btn' }, 'Done, I stored it');
  done.addEventListener('click', () => box.replaceChildren());
  const heading = h('h3', { tabindex: '-1' }, `Signing secret of ${created.name}`);
  box.replaceChildren(
    h(
      'div',
      { class: 'notice notice-info' },
      heading,
      h(
        'p',
        null,
        'Copy this secret into the receiver now: it is shown only this once. The receiver checks each request’s x-sealroom-signature with it.',
      ),
      field('Secret', input),
      h('div', { class: 'toolbar' }, copy, done, copied),
    ),
  );
  heading.focus();
}

function emailForm(ctx: PageContext, redraw: () => Promise<void>): HTMLFormElement {
  const name = h('input', {
    type: 'text',
    name: 'name',
    required: true,
    maxlength: '120',
    autocomplete: 'off',
  });
  const email = h('input', {
    type: 'email',
    name: 'email',
    required: true,
    maxlength: '254',
    autocomplete: 'email',
  });
  const problem = h('div');
  const form = h(
    'form',
    { class: 'target-form', novalidate: true, 'aria-labelledby': 'add-email' },
    h('h3', { id: 'add-email' }, 'Add an e-mail address'),
    field('Name', name),
    field('E-mail', email),
    problem,
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add e-mail'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const n = name.value.trim();
    const e = email.value.trim();
    if (!n) return fieldError(problem, name, 'Give the address a name.');
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e) || e.length > 254) {
      return fieldError(problem, email, 'Enter an e-mail address such as it-oncall@example.org.');
    }
    try {
      await api('/v1/alerts/targets', { method: 'POST', body: { kind: 'email', name: n, email: e } });
      if (ctx.signal.aborted) return;
      await redraw();
    } catch (err) {
      problem.replaceChildren(notice(`Not added: ${(err as Error).message}`));
    }
  });
  return form;
}

function fieldError(box: HTMLElement, input: HTMLInputElement, text: string): void {
  input.setAttribute('aria-invalid', 'true');
  box.replaceChildren(notice(text));
  input.focus();
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
}

// ---- dead letters ----

async function drawDead(section: HTMLElement, ctx: PageContext): Promise<void> {
  const admin = ctx.me.role === 'admin';
  const heading = h('h2', { id: 'alerts-dead' }, 'Failed deliveries');
  const loaded = await loadInto(section, heading, 'deliveries', ctx, () =>
    Promise.all([
      api<{ items: Delivery[] }>('/v1/alerts/deliveries?status=dead').then((r) => r.items),
      api<{ items: Target[] }>('/v1/alerts/targets').then((r) => r.items),
    ]),
  );
  if (!loaded) return;
  const [items, targets] = loaded;
  const nameOf = new Map(targets.map((t) => [t.id, t.name]));
  // What each failed delivery was about: its incident's summary (a few lookups; dead letters are rare).
  const incidentIds = [...new Set(items.map((d) => d.incidentId))].slice(0, 50);
  const incidents = new Map(
    await Promise.all(
      incidentIds.map(async (id) => {
        const i = await api<Incident>(`/v1/incidents/${encodeURIComponent(id)}`).catch(() => null);
        return [id, i] as const;
      }),
    ),
  );
  if (ctx.signal.aborted) return;
  const message = h('div', { class: 'dead-message' });
  const hint = h(
    'p',
    { class: 'hint' },
    'Deliveries that failed every retry. Fix the receiver, then retry: the delivery starts again now.',
  );
  if (items.length === 0) {
    mount(section, heading, hint, message, notice('No failed deliveries.', 'ok'));
    return;
  }
  const retry = async (d: Delivery, button: HTMLButtonElement) => {
    button.disabled = true;
    try {
      await api(`/v1/alerts/deliveries/${encodeURIComponent(d.id)}/retry`, { method: 'POST', body: {} });
      if (ctx.signal.aborted) return;
      await drawDead(section, ctx);
      section
        .querySelector('.dead-message')
        ?.replaceChildren(notice(`Retrying the delivery to ${nameOf.get(d.targetId) ?? d.targetId}.`, 'ok'));
      section.querySelector<HTMLElement>('h2')?.focus();
    } catch (err) {
      button.disabled = false;
      message.replaceChildren(notice(`Not retried: ${(err as Error).message}`));
    }
  };
  heading.tabIndex = -1;
  mount(
    section,
    heading,
    hint,
    message,
    h(
      'div',
      { class: 'table-wrap' },
      dataTable(
        { class: 'table', 'data-testid': 'dead-letters' },
        'Failed deliveries',
        ['Target', 'Event', 'Incident', 'Attempts', 'Last error', 'Created', ...(admin ? ['Action'] : [])],
        items.map((d) =>
          h(
            'tr',
            { 'data-delivery': d.id },
            h('th', { scope: 'row' }, nameOf.get(d.targetId) ?? d.targetId),
            h('td', null, EVENT_WORDS[d.event] ?? d.event),
            h('td', null, incidents.get(d.incidentId)?.summary ?? d.incidentId),
            h('td', { class: 'num' }, String(d.attempts)),
            h('td', { class: 'break' }, d.lastError ?? '—'),
            h('td', null, timeEl(d.createdAt)),
            admin
              ? h(
                  'td',
                  null,
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'btn',
                      'aria-label': `Retry the ${(EVENT_WORDS[d.event] ?? d.event).toLowerCase()} delivery to ${nameOf.get(d.targetId) ?? d.targetId}`,
                      onclick: (ev: Event) => void retry(d, ev.currentTarget as HTMLButtonElement),
                    },
                    'Retry',
                  ),
                )
              : null,
          ),
        ),
      ),
    ),
  );
}
