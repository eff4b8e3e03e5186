// One device: identity and status, peripherals (missing/changed flagged), certificate expiry,
// health charts, configuration (effective + the per-device override), remote actions with their
// progress, revoke/decommission behind a typed confirmation, and the audit trail. Helpdesk sees
// everything but no button that changes anything (the service refuses those anyway).
import { api, ApiError, query } from '../api.js';
import { lineChart, type Series } from '../charts.js';
import {
  badge,
  bytes,
  confirmDialog,
  dataTable,
  dateTime,
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
import type {
  ActionKind,
  AuditEntry,
  DeviceAction,
  DeviceDetail,
  HealthSample,
  Peripheral,
} from '../types.js';
import { deviceBadges } from './fleet.js';
import { updateCard } from './updates.js';

const CERT_WARN_DAYS = 14;
const POLL_MS = 2000;

export async function render(root: HTMLElement, params: URLSearchParams, ctx: PageContext): Promise<void> {
  const id = params.get('id') ?? '';
  const back = h('p', { class: 'back' }, h('a', { href: '#/devices' }, '← All devices'));
  mount(root, back, loading('Loading the device…'));
  let d: DeviceDetail;
  try {
    d = await api<DeviceDetail>(`/v1/devices/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
      mount(root, back, pageTitle('Device not found'), notice(`There is no device with id “${id}”.`));
      return;
    }
    throw err;
  }
  if (ctx.signal.aborted) return;
  const admin = ctx.me.role === 'admin';
  const active = d.status === 'active';
  const name = d.roomName ?? d.id;

  mount(
    root,
    back,
    h('div', { class: 'device-head' }, pageTitle(name), h('span', { class: 'badges' }, deviceBadges(d))),
    h('p', { class: 'muted device-sub' }, [d.site ? `${d.site} · ` : '', h('span', { class: 'mono' }, d.id)]),
    h(
      'div',
      { class: 'grid' },
      identityCard(d),
      certificateCard(d),
      peripheralsCard(d.peripherals ?? [], d.selfTest ?? null),
      updateCard(d, admin && active, ctx),
    ),
    healthSection(d, ctx),
    configSection(d, admin && active),
    admin && active ? actionsSection(d, ctx) : actionsReadOnly(d, ctx),
    admin && (d.status === 'active' || d.status === 'revoked') ? dangerSection(d, root, params, ctx) : null,
    auditSection(d, ctx),
  );
}

function card(title: string, ...children: (Node | null)[]): HTMLElement {
  const headingId = uid('h');
  return h(
    'section',
    { class: 'card', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, title),
    children,
  );
}

function dl(rows: [string, Node | string][]): HTMLDListElement {
  return h(
    'dl',
    { class: 'facts' },
    rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
  );
}

function identityCard(d: DeviceDetail): HTMLElement {
  return card(
    'Identity',
    dl([
      ['Room', d.roomName ?? '—'],
      ['Site', d.site ?? '—'],
      ['Device id', h('span', { class: 'mono' }, d.id)],
      ['Status', d.status],
      ['Software', h('span', { class: 'mono' }, d.softwareVersion)],
      ['Last seen', timeEl(d.lastSeenAt)],
      ['Meeting', d.inMeeting ? (d.meetingState ?? 'in a meeting') : 'not in a meeting'],
      ['Claimed', d.claimedAt ? `${dateTime(d.claimedAt)} by ${d.claimedBy ?? 'unknown'}` : 'not claimed'],
      ...(d.revokedAt ? ([['Revoked', dateTime(d.revokedAt)]] as [string, string][]) : []),
    ]),
  );
}

function certificateCard(d: DeviceDetail): HTMLElement {
  const c =
    d.certificate ??
    (d.certNotAfter
      ? {
          serial: d.certSerial ?? '—',
          notBefore: '',
          notAfter: d.certNotAfter,
          daysLeft: Math.floor((Date.parse(d.certNotAfter) - Date.now()) / 86_400_000),
        }
      : null);
  if (!c) return card('Certificate', h('p', { class: 'muted' }, 'No certificate issued.'));
  const state =
    c.daysLeft < 0
      ? badge('Expired', 'bad')
      : c.daysLeft < CERT_WARN_DAYS
        ? badge(`Expires in ${c.daysLeft} day${c.daysLeft === 1 ? '' : 's'}`, 'warn')
        : badge(`Valid for ${c.daysLeft} days`, 'ok');
  return card(
    'Certificate',
    h('p', { class: 'cert-state' }, state),
    dl([
      ['Serial', h('span', { class: 'mono break' }, c.serial)],
      ...(c.notBefore ? ([['Valid from', dateTime(c.notBefore)]] as [string, string][]) : []),
      ['Expires', dateTime(c.notAfter)],
    ]),
  );
}

const KIND_LABEL: Record<Peripheral['kind'], string> = {
  camera: 'Camera',
  microphone: 'Microphone',
  speaker: 'Speaker',
  display: 'Display',
  hid: 'Buttons (HID)',
};

function peripheralsCard(list: Peripheral[], selfTest: DeviceDetail['selfTest']): HTMLElement {
  const stateBadge = (p: Peripheral) =>
    p.state === 'ok'
      ? badge('OK', 'ok')
      : p.state === 'missing'
        ? badge('Missing', 'bad')
        : p.state === 'changed'
          ? badge('Changed', 'warn')
          : badge('New', 'info');
  const table = list.length
    ? dataTable(
        { class: 'table compact' },
        'Peripherals',
        ['Kind', 'Device', 'State'],
        list.map((p) =>
          h(
            'tr',
            { class: p.state === 'ok' ? '' : `row-${p.state}` },
            h('th', { scope: 'row' }, KIND_LABEL[p.kind] ?? p.kind),
            h(
              'td',
              null,
              p.name ?? h('span', { class: 'muted' }, '—'),
              p.state === 'changed' && p.expected
                ? h('span', { class: 'expected' }, `expected ${p.expected}`)
                : null,
              p.state === 'missing' && p.expected
                ? h('span', { class: 'expected' }, `was ${p.expected}`)
                : null,
            ),
            h('td', null, stateBadge(p)),
          ),
        ),
      )
    : h('p', { class: 'muted' }, 'No peripheral report yet.');
  const st = selfTest
    ? h(
        'p',
        { class: 'selftest' },
        selfTest.ok ? badge('Self-test passed', 'ok') : badge('Self-test failed', 'bad'),
        ' ',
        selfTest.ok ? '' : selfTest.failed.join(', '),
        h('span', { class: 'muted' }, ` (at boot, ${dateTime(selfTest.at)})`),
      )
    : null;
  return card('Peripherals', table, st);
}

function healthSection(d: DeviceDetail, ctx: PageContext): HTMLElement {
  const hours = h(
    'select',
    null,
    [
      ['24', 'Last 24 hours'],
      ['72', 'Last 3 days'],
      ['168', 'Last 7 days'],
    ].map(([v, t]) => h('option', { value: v! }, t!)),
  );
  const body = h('div', { class: 'charts' });
  const charts: { destroy(): void }[] = [];
  const clear = () => {
    for (const c of charts.splice(0)) c.destroy();
  };
  ctx.signal.addEventListener('abort', clear);
  const load = async () => {
    clear();
    mount(body, loading('Loading health…'));
    let samples: HealthSample[];
    const requestedAt = Date.now();
    try {
      samples = (
        await api<{ samples: HealthSample[] }>(
          `/v1/devices/${encodeURIComponent(d.id)}/health${query({ hours: hours.value })}`,
        )
      ).samples;
    } catch (err) {
      mount(body, notice(`Health history unavailable: ${(err as Error).message}`));
      return;
    }
    if (ctx.signal.aborted) return;
    if (!samples.length) {
      mount(body, h('p', { class: 'muted' }, 'No health samples in this period.'));
      return;
    }
    const series = (
      label: string,
      unit: string,
      colour: string,
      pick: (s: HealthSample) => number | null,
      max?: number,
    ): Series => ({
      label,
      unit,
      colour,
      max,
      from: requestedAt - Number(hours.value) * 3_600_000,
      to: requestedAt,
      points: samples.flatMap((s) => {
        const y = pick(s);
        return y === null || !Number.isFinite(y) ? [] : [{ x: Date.parse(s.at), y }];
      }),
    });
    const pct = (used: number | null, total: number | null) =>
      used !== null && total ? (used / total) * 100 : null;
    const all: (Series & { detail: (s: HealthSample) => string })[] = [
      {
        ...series('CPU load', '%', '#1d4ed8', (s) => s.loadPercent, 100),
        detail: (s) => `${s.loadPercent?.toFixed(0)}%`,
      },
      {
        ...series('Temperature', '°C', '#b91c1c', (s) => s.temperatureC),
        detail: (s) => `${s.temperatureC?.toFixed(1)} °C`,
      },
      {
        ...series('Memory used', '%', '#047857', (s) => pct(s.memoryUsedBytes, s.memoryTotalBytes), 100),
        detail: (s) => `${bytes(s.memoryUsedBytes)} of ${bytes(s.memoryTotalBytes)}`,
      },
      {
        ...series('Disk used', '%', '#7c3aed', (s) => pct(s.diskUsedBytes, s.diskTotalBytes), 100),
        detail: (s) => `${bytes(s.diskUsedBytes)} of ${bytes(s.diskTotalBytes)}`,
      },
    ];
    const last = samples[samples.length - 1]!;
    body.replaceChildren();
    for (const s of all) {
      const latest = s.points.length ? s.detail(last) : 'no data';
      const canvas = h('canvas', {
        role: 'img',
        'aria-label': `${s.label} over the ${hours.selectedOptions[0]?.textContent?.toLowerCase() ?? 'period'}: ${s.points.length} samples, latest ${latest}`,
      });
      const fig = h(
        'figure',
        { class: 'chart' },
        h(
          'figcaption',
          null,
          h('span', { class: 'chart-title' }, s.label),
          h('span', { class: 'chart-latest' }, `latest ${latest}`),
        ),
        h('div', { class: 'chart-box' }, canvas),
      );
      body.append(fig);
      if (s.points.length) charts.push(lineChart(canvas, s));
    }
  };
  hours.addEventListener('change', () => void load());
  void load();
  const headingId = uid('h');
  return h(
    'section',
    { class: 'card wide', 'aria-labelledby': headingId },
    h('div', { class: 'card-head' }, h('h2', { id: headingId }, 'Health'), field('Period', hours)),
    body,
  );
}

const json = (v: unknown) => JSON.stringify(v ?? {}, null, 2);

function configSection(d: DeviceDetail, canEdit: boolean): HTMLElement {
  const pending = d.configPending
    ? notice(
        `Configuration version ${d.configVersion} is waiting for the device (it runs ${d.reportedConfigVersion ?? 'none yet'}); it is delivered at the next heartbeat.`,
        'info',
      )
    : h('p', { class: 'muted' }, `The device runs configuration version ${d.configVersion}.`);
  const effective = h(
    'pre',
    { class: 'code', tabindex: '0', 'aria-label': 'Effective configuration' },
    json(d.config),
  );
  const status = h('div', { class: 'save-status' });
  let editor: HTMLElement;
  if (canEdit) {
    const area = h('textarea', { rows: '8', spellcheck: 'false', class: 'code-input' });
    area.value = json(d.configOverride);
    const save = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save override');
    const form = h(
      'form',
      { class: 'override' },
      field('Override for this device (JSON, merged over the site profile)', area, 'Use {} for no override.'),
      h('div', { class: 'row' }, save),
      status,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let config: unknown;
      try {
        config = JSON.parse(area.value || '{}');
      } catch (err) {
        mount(status, notice(`Not valid JSON: ${(err as Error).message}`));
        return;
      }
      if (typeof config !== 'object' || config === null || Array.isArray(config)) {
        mount(status, notice('The override must be a JSON object.'));
        return;
      }
      save.disabled = true;
      try {
        const r = await api<{ configVersion: number }>(`/v1/devices/${encodeURIComponent(d.id)}/config`, {
          method: 'PUT',
          body: { config },
        });
        const fresh = await api<DeviceDetail>(`/v1/devices/${encodeURIComponent(d.id)}`);
        effective.textContent = json(fresh.config);
        mount(
          status,
          notice(
            `Saved: configuration version ${r.configVersion}. The device picks it up at its next heartbeat.`,
            'ok',
          ),
        );
      } catch (err) {
        mount(status, notice(`Not saved: ${(err as Error).message}`));
      } finally {
        save.disabled = false;
      }
    });
    editor = form;
  } else {
    editor = h(
      'div',
      null,
      h('h3', null, 'Override for this device'),
      h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Device override' }, json(d.configOverride)),
    );
  }
  const profile =
    d.profileVersion !== undefined && d.profileVersion !== null
      ? h(
          'p',
          { class: 'muted' },
          `Site profile version ${d.profileVersion}. `,
          h('a', { href: '#/profiles' }, 'Edit profiles'),
        )
      : null;
  return card('Configuration', pending, profile, h('h3', null, 'Effective configuration'), effective, editor);
}

const ACTION_LABEL: Record<ActionKind, string> = {
  restart: 'Restart daemon',
  'renew-certificate': 'Renew certificate',
  'collect-logs': 'Collect logs',
};

function actionRows(list: DeviceAction[]): HTMLElement {
  if (!list.length) return h('p', { class: 'muted' }, 'No actions yet.');
  const tone = (s: DeviceAction['status']) =>
    s === 'done' ? 'ok' : s === 'failed' || s === 'expired' ? 'bad' : s === 'sent' ? 'info' : 'muted';
  return dataTable(
    { class: 'table compact stack actions-table' },
    'Recent actions',
    ['Action', 'Status', 'Requested', 'Result'],
    list.map((a) =>
      h(
        'tr',
        { 'data-action-id': a.id },
        h('th', { scope: 'row' }, ACTION_LABEL[a.kind] ?? a.kind),
        h('td', { 'data-label': 'Status' }, badge(a.status, tone(a.status))),
        h(
          'td',
          { 'data-label': 'Requested' },
          timeEl(a.createdAt),
          h('span', { class: 'muted' }, ` by ${a.createdBy}`),
        ),
        h(
          'td',
          { 'data-label': 'Result' },
          a.result?.message ?? '',
          a.kind === 'collect-logs' && a.status === 'done'
            ? h(
                'a',
                {
                  href: `/v1/actions/${encodeURIComponent(a.id)}/bundle`,
                  download: true,
                  class: 'download',
                },
                `Download log bundle${a.result?.bundleBytes ? ` (${bytes(a.result.bundleBytes)})` : ''}`,
              )
            : null,
        ),
      ),
    ),
  );
}

/** Keeps the action list fresh: polls while something is queued or sent, stops on navigation. */
function actionList(d: DeviceDetail, ctx: PageContext): { el: HTMLElement; refresh: () => Promise<void> } {
  const el = h('div', { class: 'action-list', 'aria-live': 'polite' }, loading('Loading actions…'));
  let timer: number | undefined;
  ctx.signal.addEventListener('abort', () => clearTimeout(timer));
  const refresh = async (): Promise<void> => {
    clearTimeout(timer);
    try {
      const { items } = await api<{ items: DeviceAction[] }>(
        `/v1/devices/${encodeURIComponent(d.id)}/actions`,
      );
      if (ctx.signal.aborted) return;
      mount(el, actionRows(items));
      if (items.some((a) => a.status === 'queued' || a.status === 'sent')) {
        timer = window.setTimeout(() => void refresh(), POLL_MS);
      }
    } catch (err) {
      if (!ctx.signal.aborted) mount(el, notice(`Actions unavailable: ${(err as Error).message}`));
    }
  };
  void refresh();
  return { el, refresh };
}

function actionsSection(d: DeviceDetail, ctx: PageContext): HTMLElement {
  const list = actionList(d, ctx);
  const status = h('div', null);
  const buttons = (Object.keys(ACTION_LABEL) as ActionKind[]).map((kind) => {
    const b = h('button', { type: 'button', class: 'btn', 'data-action': kind }, ACTION_LABEL[kind]);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api<DeviceAction>(`/v1/devices/${encodeURIComponent(d.id)}/actions`, {
          method: 'POST',
          body: { kind },
        });
        mount(
          status,
          notice(
            `${ACTION_LABEL[kind]}: queued. ${d.online ? 'The device gets it at its next heartbeat.' : 'The device is offline: it runs when it comes back.'}`,
            'ok',
          ),
        );
        await list.refresh();
      } catch (err) {
        mount(status, notice(`${ACTION_LABEL[kind]} refused: ${(err as Error).message}`));
      } finally {
        b.disabled = false;
      }
    });
    return b;
  });
  return card('Remote actions', h('div', { class: 'row actions' }, buttons), status, list.el);
}

function actionsReadOnly(d: DeviceDetail, ctx: PageContext): HTMLElement {
  return card('Remote actions', actionList(d, ctx).el);
}

function dangerSection(
  d: DeviceDetail,
  root: HTMLElement,
  params: URLSearchParams,
  ctx: PageContext,
): HTMLElement {
  const name = d.roomName ?? d.id;
  const status = h('div', null);
  const mk = (kind: 'revoke' | 'decommission', label: string, message: string) => {
    const b = h('button', { type: 'button', class: 'btn btn-danger', 'data-action': kind }, label);
    b.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: `${label}: ${name}`,
        message,
        confirmLabel: label,
        danger: true,
        typeToConfirm: name,
      });
      if (!ok) {
        b.focus();
        return;
      }
      b.disabled = true;
      try {
        await api(`/v1/devices/${encodeURIComponent(d.id)}/${kind}`, {
          method: 'POST',
          body: { reason: 'from the IT console' },
        });
        await render(root, params, ctx);
      } catch (err) {
        b.disabled = false;
        mount(status, notice(`${label} failed: ${(err as Error).message}`));
      }
    });
    return b;
  };
  return card(
    'Revoke or decommission',
    h(
      'p',
      null,
      'Revoking cuts the device off at once (its certificates go on the revocation list). Decommissioning also retires it.',
    ),
    h(
      'div',
      { class: 'row' },
      d.status === 'active'
        ? mk(
            'revoke',
            'Revoke',
            `The room screen “${name}” stops working immediately and must be enrolled again to come back.`,
          )
        : null,
      mk('decommission', 'Decommission', `“${name}” is revoked and retired from the fleet for good.`),
    ),
    status,
  );
}

function auditSection(d: DeviceDetail, ctx: PageContext): HTMLElement {
  const body = h('div', null, loading('Loading the audit trail…'));
  void api<AuditEntry[] | { items: AuditEntry[] }>(`/v1/audit${query({ deviceId: d.id, limit: 50 })}`).then(
    (r) => {
      if (ctx.signal.aborted) return;
      const items = Array.isArray(r) ? r : r.items;
      mount(
        body,
        items.length
          ? h(
              'div',
              { class: 'table-wrap' },
              dataTable(
                { class: 'table compact stack audit' },
                'Audit trail',
                ['When', 'Who', 'What', 'Details'],
                items.map((e) =>
                  h(
                    'tr',
                    null,
                    h('td', { 'data-label': 'When' }, timeEl(e.at)),
                    h('td', { 'data-label': 'Who', class: 'break' }, e.actor),
                    h('td', { 'data-label': 'What', class: 'mono' }, e.action),
                    h(
                      'td',
                      { 'data-label': 'Details', class: 'mono small break' },
                      Object.keys(e.details).length ? JSON.stringify(e.details) : '',
                    ),
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'Nothing recorded yet.'),
      );
    },
    (err: Error) => mount(body, notice(`Audit trail unavailable: ${err.message}`)),
  );
  return card('Audit trail', body);
}
