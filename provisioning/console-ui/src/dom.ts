// A tiny element builder (same as kiosk-ui/src/dom.ts) plus the few widgets every console page
// needs. No framework: pages are small, and the CSP forbids inline styles and script anyway, so
// everything is elements, classes and listeners.
type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | undefined | null | ((ev: Event) => void)>;

/** `h('button', {class: 'x', onclick: fn}, 'Text')`. `style` is refused: the CSP blocks inline styles. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'style') throw new Error('inline styles are blocked by the CSP: use a class');
    if (typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === 'class') el.className = String(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: (Child | Child[])[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else if (child !== null && child !== undefined && child !== false)
      el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace an element's content. */
export function mount(root: Element, ...children: (Child | Child[])[]): void {
  root.replaceChildren();
  append(root, children);
}

/** A table: `props` on <table>, a caption for screen readers, one header row of column headings. */
export function dataTable(
  props: Props,
  caption: Child | Child[],
  columns: string[],
  rows: Child | Child[],
): HTMLTableElement {
  return h(
    'table',
    props,
    h('caption', { class: 'sr-only' }, caption),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        columns.map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h('tbody', null, rows),
  );
}

let ids = 0;
/** A document-unique id (label `for`, aria-describedby). */
export function uid(prefix = 'c'): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: `<div class="field"><label for>…</label>control</div>`. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLDivElement {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** A status badge; `tone` picks the colour class (ok, warn, bad, info, muted). */
export function badge(
  text: string,
  tone: 'ok' | 'warn' | 'bad' | 'info' | 'muted' = 'muted',
): HTMLSpanElement {
  return h('span', { class: `badge badge-${tone}` }, text);
}

/** An error or notice block that screen readers announce. */
export function notice(message: string, tone: 'error' | 'info' | 'ok' = 'error'): HTMLDivElement {
  return h('div', { class: `notice notice-${tone}`, role: tone === 'error' ? 'alert' : 'status' }, message);
}

/** "Loading…" placeholder with a live region. */
export function loading(what = 'Loading…'): HTMLParagraphElement {
  return h('p', { class: 'loading', role: 'status' }, what);
}

/** Page heading that takes focus after navigation (screen readers hear where they landed). */
export function pageTitle(text: string): HTMLHeadingElement {
  const el = h('h1', { class: 'page-title', tabindex: '-1' }, text);
  document.title = `${text} · Sealroom console`;
  return el;
}

/** "3 min ago", "in 2 days": relative times for last-seen and expiry columns. */
export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'unknown';
  const diff = Math.round((t - now) / 1000);
  const abs = Math.abs(diff);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (abs < 45) return diff <= 0 ? 'just now' : 'in a few seconds';
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
  return rtf.format(Math.round(diff / 86400), 'day');
}

/** Absolute local date-time for tooltips and detail lists. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? '—' : t.toLocaleString();
}

/** A `<time>` element: relative text, exact time in the title and datetime attribute. */
export function timeEl(iso: string | null | undefined): HTMLElement {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: dateTime(iso) }, relativeTime(iso));
}

/** Bytes as "1.2 GiB". */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Modal confirmation dialog (native <dialog>: focus trap and Escape for free). With `typeToConfirm`
 * the confirm button stays disabled until the person types that exact text (e.g. the room name).
 * Resolves true on confirm, false on cancel.
 */
export function confirmDialog(opts: {
  title: string;
  message: string;
  confirmLabel: string;
  danger?: boolean;
  typeToConfirm?: string;
}): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const confirm = h(
      'button',
      { type: 'submit', class: opts.danger ? 'btn btn-danger' : 'btn btn-primary', value: 'confirm' },
      opts.confirmLabel,
    );
    const cancel = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    let input: HTMLInputElement | null = null;
    if (opts.typeToConfirm !== undefined) {
      input = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', class: 'confirm-input' });
      confirm.disabled = true;
      const expected = opts.typeToConfirm;
      input.addEventListener('input', () => {
        confirm.disabled = input!.value.trim() !== expected;
      });
    }
    const form = h(
      'form',
      { method: 'dialog' },
      h('h2', { id: titleId }, opts.title),
      h('p', null, opts.message),
      input ? field(`Type “${opts.typeToConfirm}” to confirm`, input) : null,
      h('div', { class: 'dialog-actions' }, cancel, confirm),
    );
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, form);
    let result = false;
    form.addEventListener('submit', (ev) => {
      if (confirm.disabled) {
        ev.preventDefault();
        return;
      }
      result = true;
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    (input ?? cancel).focus();
  });
}
