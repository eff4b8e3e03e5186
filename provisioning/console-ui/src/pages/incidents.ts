// Incidents: what the alert rules opened, newest first. The list follows the service with the
// incidents cursor (GET /v1/incidents?since=…, only what changed since) every 10 s, so an incident
// that resolves or is acknowledged elsewhere updates in place without reloading everything.
import { api } from '../api.js';
import { badge, dataTable, field, h, loading, mount, notice, pageTitle, timeEl } from '../dom.js';
import { type PageContext, replaceHash } from '../router.js';

export interface Incident {
  id: string;
  rule: string;
  deviceId: string;
  roomName: string | null;
  site: string | null;
  status: 'open' | 'acknowledged' | 'resolved';
  summary: string;
  details: unknown;
  openedAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
  updatedAt: string;
}

interface Page {
  items: Incident[];
  cursor: string | null;
}

const POLL_MS = 10_000;
const PAGE = 500; // the API's largest page
// The API lists changes oldest first; the first load pages through them (history of resolved ones
// included) up to this many pages, later polls catch up on the rest.
const MAX_FIRST_PAGES = 20;
// Rows drawn at most (the most urgent first): a fleet-wide outage must not freeze the browser.
const MAX_ROWS = 500;
// Incidents kept in memory at most: past this the longest-unchanged resolved ones are dropped.
const MAX_KEPT = 5000;

export const RULE_NAMES: Record<string, string> = {
  offline: 'Offline',
  'peripheral-missing': 'Peripheral missing',
  temperature: 'Temperature',
  'certificate-expiring': 'Certificate expiring',
  'selftest-failed': 'Self-test failed',
};

const FILTERS = [
  { value: 'unresolved', label: 'Open and acknowledged' },
  { value: 'open', label: 'Open' },
  { value: 'acknowledged', label: 'Acknowledged' },
  { value: 'resolved', label: 'Resolved' },
  { value: 'all', label: 'All' },
] as const;
type Filter = (typeof FILTERS)[number]['value'];

const STATUS_ORDER: Record<Incident['status'], number> = { open: 0, acknowledged: 1, resolved: 2 };

const matches = (filter: Filter, i: Incident) =>
  filter === 'all' || (filter === 'unresolved' ? i.status !== 'resolved' : i.status === filter);

const statusBadge = (s: Incident['status']) =>
  s === 'open'
    ? badge('Open', 'bad')
    : s === 'acknowledged'
      ? badge('Acknowledged', 'warn')
      : badge('Resolved', 'ok');

export async function render(root: HTMLElement, params: URLSearchParams, ctx: PageContext): Promise<void> {
  const title = pageTitle('Incidents');
  const asked = params.get('status');
  let filter: Filter = FILTERS.some((f) => f.value === asked) ? (asked as Filter) : 'unresolved';
  const known = new Map<string, Incident>();
  let cursor: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let generation = 0; // a filter change discards answers to the previous filter's requests

  const select = h(
    'select',
    { name: 'status' },
    FILTERS.map((f) => h('option', { value: f.value, selected: f.value === filter }, f.label)),
  );
  const updated = h('p', { class: 'muted', 'data-testid': 'incidents-updated' });
  const message = h('div', { class: 'incidents-message' });
  const body = h('div', { class: 'incidents-body' }, loading());
  mount(root, title, h('div', { class: 'toolbar' }, field('Show', select)), updated, message, body);

  ctx.signal.addEventListener('abort', () => clearTimeout(timer));

  const statusParam = () => (filter === 'all' || filter === 'unresolved' ? '' : `&status=${filter}`);

  /** Fetches pages from `since` on; returns false when the page went away or the filter changed. */
  async function pull(since: string | null, statusFilter: string, pages: number): Promise<boolean> {
    const gen = generation;
    for (let n = 0; n < pages; n++) {
      const q = `/v1/incidents?limit=${PAGE}${statusFilter}${since ? `&since=${encodeURIComponent(since)}` : ''}`;
      const page = await api<Page>(q);
      if (ctx.signal.aborted || gen !== generation) return false;
      for (const i of page.items) {
        if (matches(filter, i)) known.set(i.id, i);
        else known.delete(i.id); // e.g. resolved while the list shows open ones
      }
      if (page.cursor) {
        since = page.cursor;
        cursor = page.cursor;
      }
      if (page.items.length < PAGE) break;
    }
    if (known.size > MAX_KEPT) {
      const drop = [...known.values()]
        .filter((i) => i.status === 'resolved')
        .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt))
        .slice(0, known.size - MAX_KEPT);
      for (const i of drop) known.delete(i.id);
    }
    return true;
  }

  async function load(): Promise<void> {
    generation += 1;
    clearTimeout(timer);
    known.clear();
    cursor = null;
    mount(body, loading());
    try {
      if (!(await pull(null, statusParam(), MAX_FIRST_PAGES))) return;
      message.replaceChildren();
      draw();
    } catch (err) {
      mount(body, notice(`The incidents could not be loaded: ${(err as Error).message}`));
    }
    schedule();
  }

  function schedule(): void {
    if (ctx.signal.aborted) return;
    clearTimeout(timer);
    timer = setTimeout(() => void poll(), POLL_MS);
  }

  async function poll(): Promise<void> {
    try {
      // Without a status filter: an incident leaving the shown status must be seen to be removed.
      if (await pull(cursor, '', 5)) {
        message.replaceChildren();
        draw();
      }
    } catch (err) {
      if (!ctx.signal.aborted) {
        message.replaceChildren(notice(`Updating failed, retrying: ${(err as Error).message}`, 'error'));
      }
    }
    schedule();
  }

  function draw(): void {
    // Open first (they need someone), then acknowledged, then resolved; newest first within each.
    const items = [...known.values()].sort(
      (a, b) =>
        STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
        b.openedAt.localeCompare(a.openedAt) ||
        b.id.localeCompare(a.id),
    );
    const shown = items.length > MAX_ROWS ? ` (the first ${MAX_ROWS} shown)` : '';
    updated.textContent = `${items.length} ${items.length === 1 ? 'incident' : 'incidents'}${shown}; updated ${new Date().toLocaleTimeString()}, refreshes every 10 seconds.`;
    if (items.length === 0) {
      mount(body, notice('No incidents to show.', 'info'));
      return;
    }
    // Keep keyboard focus on the same row's button across a redraw.
    const focused = document.activeElement?.getAttribute('data-ack');
    mount(
      body,
      h(
        'div',
        { class: 'table-wrap' },
        dataTable(
          { class: 'table stack', 'data-testid': 'incidents' },
          [FILTERS.find((f) => f.value === filter)!.label, ' incidents'],
          ['Status', 'Rule', 'Room', 'Site', 'Summary', 'Opened', 'Acknowledged', 'Action'],
          items.slice(0, MAX_ROWS).map(row),
        ),
      ),
    );
    if (focused) body.querySelector<HTMLElement>(`[data-ack="${CSS.escape(focused)}"]`)?.focus();
  }

  function row(i: Incident): HTMLTableRowElement {
    const room = i.roomName ?? i.deviceId;
    return h(
      'tr',
      { 'data-incident': i.id },
      h('td', { 'data-label': 'Status' }, statusBadge(i.status)),
      h('td', { 'data-label': 'Rule' }, RULE_NAMES[i.rule] ?? i.rule),
      h(
        'td',
        { 'data-label': 'Room' },
        h('a', { href: `#/devices/${encodeURIComponent(i.deviceId)}` }, room),
      ),
      h('td', { 'data-label': 'Site' }, i.site ?? '—'),
      h('td', { 'data-label': 'Summary' }, i.summary),
      h('td', { 'data-label': 'Opened' }, timeEl(i.openedAt)),
      h(
        'td',
        { 'data-label': 'Acknowledged' },
        i.acknowledgedAt
          ? [timeEl(i.acknowledgedAt), i.acknowledgedBy ? ` by ${i.acknowledgedBy}` : '']
          : '—',
      ),
      h(
        'td',
        { 'data-label': '' },
        ctx.me.role === 'admin' && i.status === 'open'
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn',
                'data-ack': i.id,
                'aria-label': `Acknowledge: ${i.summary} (${room})`,
                onclick: (ev: Event) => void acknowledge(i, ev.currentTarget as HTMLButtonElement),
              },
              'Acknowledge',
            )
          : i.status === 'resolved' && i.resolvedAt
            ? ['Resolved ', timeEl(i.resolvedAt)]
            : '',
      ),
    );
  }

  async function acknowledge(i: Incident, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const next = await api<Incident>(`/v1/incidents/${encodeURIComponent(i.id)}/acknowledge`, {
        method: 'POST',
        body: {},
      });
      if (ctx.signal.aborted) return;
      if (matches(filter, next)) known.set(next.id, next);
      else known.delete(next.id);
      message.replaceChildren(notice(`Acknowledged: ${i.summary}.`, 'ok'));
      draw();
    } catch (err) {
      if (ctx.signal.aborted) return;
      button.disabled = false;
      message.replaceChildren(notice(`Not acknowledged: ${(err as Error).message}`, 'error'));
    }
  }

  select.addEventListener('change', () => {
    filter = select.value as Filter;
    replaceHash(filter === 'unresolved' ? '#/incidents' : `#/incidents?status=${filter}`);
    void load();
  });

  await load();
}
