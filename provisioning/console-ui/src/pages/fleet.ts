// The fleet: summary tiles, search and filters, and one page of devices at a time. Paging is
// server-side with the keyset cursor (GET /v1/devices → nextCursor); "Previous" pops a stack of the
// cursors we came through. The filters and the current cursor live in the hash so a reload or a
// shared link shows the same page.
import { api, query } from '../api.js';
import { badge, dataTable, field, h, loading, mount, notice, pageTitle, timeEl } from '../dom.js';
import { hashOf, type PageContext, replaceHash } from '../router.js';
import type { DeviceList, DeviceSummary, FleetSummary } from '../types.js';

const PAGE_SIZES = ['25', '50', '100', '200'];
const REFRESH_MS = 30_000;

interface Filters {
  q: string;
  site: string;
  status: string;
  online: string;
  inMeeting: string;
  limit: string;
}

const filtersOf = (p: URLSearchParams): Filters => ({
  q: (p.get('q') ?? '').slice(0, 120),
  site: (p.get('site') ?? '').slice(0, 120),
  status: ['pending', 'active', 'revoked', 'decommissioned'].includes(p.get('status') ?? '')
    ? p.get('status')!
    : '',
  online: ['true', 'false'].includes(p.get('online') ?? '') ? p.get('online')! : '',
  inMeeting: p.get('inMeeting') === 'true' ? 'true' : '',
  limit: PAGE_SIZES.includes(p.get('limit') ?? '') ? p.get('limit')! : '50',
});

/** Badges that say at a glance what state a device is in. */
export function deviceBadges(d: DeviceSummary): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (d.status === 'active') {
    if (d.online) out.push(badge('Online', 'ok'));
    else out.push(badge(d.lastSeenAt ? 'Offline' : 'Never seen', 'bad'));
  } else {
    const tone = d.status === 'pending' ? 'info' : d.status === 'revoked' ? 'bad' : 'muted';
    out.push(
      badge(d.status === 'pending' ? 'Not claimed' : d.status[0]!.toUpperCase() + d.status.slice(1), tone),
    );
  }
  if (d.inMeeting) out.push(badge('In meeting', 'info'));
  if (d.configPending) out.push(badge('Config pending', 'warn'));
  if (d.openIncidents > 0)
    out.push(badge(`${d.openIncidents} open incident${d.openIncidents === 1 ? '' : 's'}`, 'bad'));
  return out;
}

export async function render(root: HTMLElement, params: URLSearchParams, ctx: PageContext): Promise<void> {
  const f = filtersOf(params);
  // Cursors of the pages before the current one ('' = first page).
  const stack: string[] = [];
  let cursor = params.get('cursor') ?? '';
  if (cursor) stack.push(''); // came in on a later page: Previous goes back to the start

  const tiles = h(
    'section',
    { class: 'tiles', 'aria-label': 'Fleet summary' },
    loading('Loading the summary…'),
  );
  const q = h('input', {
    type: 'search',
    name: 'q',
    value: f.q,
    autocomplete: 'off',
    placeholder: 'Room name or device id',
    maxlength: '120',
  });
  const site = h('select', { name: 'site' }, h('option', { value: '' }, 'All sites'));
  const status = h(
    'select',
    { name: 'status' },
    [
      ['', 'Any status'],
      ['active', 'Active'],
      ['pending', 'Not claimed'],
      ['revoked', 'Revoked'],
      ['decommissioned', 'Decommissioned'],
    ].map(([v, t]) => h('option', { value: v!, selected: f.status === v }, t!)),
  );
  const online = h(
    'select',
    { name: 'online' },
    [
      ['', 'Any'],
      ['true', 'Online'],
      ['false', 'Offline'],
    ].map(([v, t]) => h('option', { value: v!, selected: f.online === v }, t!)),
  );
  const inMeeting = h('input', {
    type: 'checkbox',
    name: 'inMeeting',
    id: 'f-inmeeting',
    checked: f.inMeeting === 'true',
  });
  const limit = h(
    'select',
    { name: 'limit' },
    PAGE_SIZES.map((v) => h('option', { value: v, selected: f.limit === v }, v)),
  );
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Find devices' },
    field('Search', q),
    field('Site', site),
    field('Status', status),
    field('Connection', online),
    h('div', { class: 'field field-check' }, inMeeting, h('label', { for: 'f-inmeeting' }, 'In a meeting')),
    field('Per page', limit),
  );
  const results = h('section', { class: 'results', 'aria-label': 'Devices' });
  const liveCount = h('p', { class: 'count', role: 'status', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn', disabled: true }, 'Previous');
  const next = h('button', { type: 'button', class: 'btn', disabled: true }, 'Next');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, next);
  mount(root, pageTitle('Devices'), tiles, form, liveCount, results, pager);

  let nextCursor: string | null = null;
  let seq = 0;

  const current = (): Filters => ({
    q: q.value.trim(),
    site: site.value,
    status: status.value,
    online: online.value,
    inMeeting: inMeeting.checked ? 'true' : '',
    limit: limit.value,
  });

  /** Fetch and show the current page; `quiet` (the periodic refresh) keeps the buttons as they are. */
  const load = async (quiet = false): Promise<void> => {
    const my = ++seq;
    const c = current();
    replaceHash(hashOf('/devices', { ...c, limit: c.limit === '50' ? '' : c.limit, cursor }));
    if (!quiet) {
      results.setAttribute('aria-busy', 'true');
      prev.disabled = true;
      next.disabled = true;
    }
    try {
      const list = await api<DeviceList>(
        `/v1/devices${query({ q: c.q, site: c.site, status: c.status, online: c.online, inMeeting: c.inMeeting, limit: c.limit, cursor })}`,
      );
      if (my !== seq || ctx.signal.aborted) return;
      nextCursor = list.nextCursor;
      const start = stack.length * Number(c.limit);
      const count =
        list.items.length === 0
          ? 'No devices match.'
          : `Showing ${start + 1}–${start + list.items.length} of ${list.total} device${list.total === 1 ? '' : 's'}`;
      // Same text again would be announced again by some screen readers on every refresh.
      if (liveCount.textContent !== count) liveCount.textContent = count;
      mount(results, list.items.length ? deviceTable(list.items) : null);
      prev.disabled = stack.length === 0;
      next.disabled = !nextCursor;
    } catch (err) {
      if (my !== seq) return;
      mount(results, notice((err as Error).message));
      prev.disabled = stack.length === 0;
    } finally {
      if (my === seq) results.removeAttribute('aria-busy');
    }
  };

  const restart = (): void => {
    stack.length = 0;
    cursor = '';
    void load();
  };
  let debounce: number | undefined;
  q.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = window.setTimeout(restart, 300);
  });
  for (const el of [site, status, online, inMeeting, limit]) el.addEventListener('change', restart);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearTimeout(debounce);
    restart();
  });
  ctx.signal.addEventListener('abort', () => clearTimeout(debounce));
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    stack.push(cursor);
    cursor = nextCursor;
    void load().then(() => liveCount.focus());
  });
  prev.addEventListener('click', () => {
    if (!stack.length) return;
    cursor = stack.pop()!;
    void load().then(() => liveCount.focus());
  });
  liveCount.tabIndex = -1;

  const loadSummary = () =>
    api<FleetSummary>('/v1/fleet/summary').then(
      (s) => {
        if (ctx.signal.aborted) return;
        mount(tiles, summaryTiles(s));
        // Keep the chosen site even if it has no device any more (the list then says "No devices match").
        const chosen = site.value;
        const sites = [...new Set([...s.sites, ...(chosen ? [chosen] : [])])].sort();
        site.replaceChildren(
          h('option', { value: '' }, 'All sites'),
          ...sites.map((name) => h('option', { value: name, selected: chosen === name }, name)),
        );
      },
      (err: Error) => mount(tiles, notice(`Summary unavailable: ${err.message}`)),
    );
  if (f.site) site.append(h('option', { value: f.site, selected: true }, f.site));

  // Online/offline changes by itself: refresh the tiles and this page every 30 s, unless the
  // tab is hidden or someone is working in the list (a redraw would take their focus away).
  const timer = window.setInterval(() => {
    if (document.visibilityState !== 'visible' || results.contains(document.activeElement)) return;
    void loadSummary();
    void load(true);
  }, REFRESH_MS);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
  await Promise.all([load(), loadSummary()]);
}

function summaryTiles(s: FleetSummary): HTMLElement {
  const tile = (label: string, value: number, href: string, tone = '') =>
    h(
      'li',
      { class: `tile ${tone}` },
      h(
        'a',
        { href },
        h('span', { class: 'tile-value' }, value.toLocaleString()),
        h('span', { class: 'tile-label' }, label),
      ),
    );
  return h(
    'ul',
    { class: 'tile-list' },
    tile('Active devices', s.devices, '#/devices?status=active'),
    tile('Online', s.online, '#/devices?online=true', 'tile-ok'),
    tile('Offline', s.offline, '#/devices?online=false&status=active', s.offline ? 'tile-bad' : ''),
    tile('In a meeting', s.inMeeting, '#/devices?inMeeting=true', 'tile-info'),
    tile('Waiting for claim', s.pending, '#/devices?status=pending', s.pending ? 'tile-warn' : ''),
    tile('Open incidents', s.openIncidents, '#/incidents', s.openIncidents ? 'tile-bad' : ''),
  );
}

function deviceTable(items: DeviceSummary[]): HTMLElement {
  const rows = items.map((d) =>
    h(
      'tr',
      null,
      h(
        'th',
        { scope: 'row', 'data-label': 'Room' },
        h(
          'a',
          { href: `#/devices/${encodeURIComponent(d.id)}`, class: 'room-link' },
          d.roomName ?? 'Unnamed room',
        ),
        h('span', { class: 'device-id mono' }, d.id),
      ),
      h('td', { 'data-label': 'Site' }, d.site ?? h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Status' }, h('span', { class: 'badges' }, deviceBadges(d))),
      h('td', { 'data-label': 'Version', class: 'mono' }, d.softwareVersion),
      h('td', { 'data-label': 'Last seen' }, timeEl(d.lastSeenAt)),
    ),
  );
  return h(
    'div',
    { class: 'table-wrap' },
    dataTable(
      { class: 'table stack devices' },
      'Devices, sorted by room name',
      ['Room', 'Site', 'Status', 'Version', 'Last seen'],
      rows,
    ),
  );
}
