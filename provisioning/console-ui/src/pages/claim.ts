// Claim page, phone first: IT scans the QR code on a room screen, lands here with the activation code
// in the address (#/claim?code=…), picks the site and names the room. The claim itself is the
// existing POST /v1/claims; the room screen sees it on its next poll and switches to idle.
import { ApiError, api } from '../api.js';
import { field, h, mount, notice, pageTitle } from '../dom.js';
import type { PageContext } from '../router.js';
import type { DeviceDetail } from '../types.js';

interface SiteRow {
  site: string;
  devices: number;
  online: number;
  profileVersion: number | null;
}

// provisioning/activation-code.ts's alphabet (no look-alikes such as 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V).
const CODE_CHARS = /^[ACDEFGHJKMNPQRTWXY34679]{8}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_TEXT = 120;

/** "abcd efgh" / "ABCD-EFGH" → "ABCDEFGH"; null when it cannot be a code (the server re-checks). */
export function normalizeCode(raw: string): string | null {
  const code = raw.replace(/[\s-]/g, '').toUpperCase();
  return CODE_CHARS.test(code) ? code : null;
}

/** "ABCDEFGH" → "ABCD-EFGH", the way the room screen shows it. */
export function displayCode(code: string): string {
  return code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;
}

/** What went wrong, in words for the person holding the phone. */
export function claimErrorText(err: unknown): string {
  if (!(err instanceof ApiError)) return `The claim failed: ${(err as Error).message}`;
  switch (err.status) {
    case 400:
      return `The service refused the details: ${err.message}`;
    case 403:
      return 'Your account may not claim devices: only IT admins can. Ask an admin to claim this room.';
    case 404:
      return 'This activation code is unknown. Check it against the code on the room screen, or scan the QR code again.';
    case 409:
      return /already used/i.test(err.message)
        ? 'This activation code was already used: the device is claimed. Find it in the device list.'
        : `This device cannot be claimed now: ${err.message}.`;
    case 410:
      return 'This activation code has expired. The room screen shows a new code after the device restarts enrollment; scan the new QR code.';
    case 429:
      return 'Too many claims in a short time. Wait a minute and try again.';
    case 0:
      return err.message;
    default:
      return `The claim failed (${err.status}): ${err.message}`;
  }
}

/** Client-side check of a site or room name (the server is the authority). */
function textProblem(label: string, value: string): string | null {
  if (!value) return `${label} is required.`;
  if (value.length > MAX_TEXT) return `${label} is at most ${MAX_TEXT} characters.`;
  if (CONTROL.test(value)) return `${label} cannot contain control characters.`;
  return null;
}

export async function render(root: HTMLElement, params: URLSearchParams, ctx: PageContext): Promise<void> {
  const fromUrl = params.get('code') ?? '';
  const initial = normalizeCode(fromUrl);
  const title = pageTitle('Claim a room device');
  const codeLine = initial
    ? h(
        'p',
        { class: 'claim-code-line' },
        'Activation code ',
        h('strong', { class: 'claim-code', 'data-testid': 'claim-code' }, displayCode(initial)),
      )
    : null;

  if (ctx.me.role !== 'admin') {
    mount(
      root,
      h(
        'section',
        { class: 'claim-page card' },
        title,
        codeLine,
        notice(
          `You are signed in as ${ctx.me.name} with the helpdesk role, which can look but not change anything. ` +
            'Only an IT admin can claim a device: ask one to scan the QR code on the room screen.',
          'info',
        ),
      ),
    );
    return;
  }

  const codeInput = h('input', {
    type: 'text',
    name: 'code',
    required: true,
    autocomplete: 'off',
    autocapitalize: 'characters',
    spellcheck: 'false',
    inputmode: 'text',
    maxlength: '32',
    value: initial ? displayCode(initial) : fromUrl.slice(0, 32),
  });
  const siteList = h('datalist', { id: 'claim-sites' });
  const siteInput = h('input', {
    type: 'text',
    name: 'site',
    required: true,
    list: 'claim-sites',
    autocomplete: 'off',
    maxlength: String(MAX_TEXT),
  });
  const roomInput = h('input', {
    type: 'text',
    name: 'room',
    required: true,
    autocomplete: 'off',
    maxlength: String(MAX_TEXT),
    placeholder: 'e.g. Boardroom',
  });
  // The notice inside carries role=alert: screen readers announce it when it appears.
  const errorBox = h('div', { class: 'claim-error' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Claim');
  const form = h(
    'form',
    { class: 'claim-form', novalidate: true, 'aria-label': 'Room details' },
    // The code is editable only when the address did not carry a valid one (typed by hand).
    initial ? null : field('Activation code', codeInput, 'The 8 characters shown on the room screen.'),
    field('Site', siteInput, 'Where the room is; pick an existing site or type a new one.'),
    field('Room name', roomInput, 'Shown on the room screen and in the device list.'),
    errorBox,
    submit,
  );
  mount(
    root,
    h(
      'section',
      { class: 'claim-page card' },
      title,
      codeLine ?? h('p', { class: 'hint' }, 'Type the activation code shown on the room screen.'),
      form,
      siteList,
    ),
  );

  // Existing sites for the datalist; a failure only loses the suggestions.
  void api<{ items: SiteRow[] }>('/v1/sites')
    .then((res) => {
      siteList.replaceChildren(...res.items.map((s) => h('option', { value: s.site })));
      if (res.items.length === 1 && !siteInput.value) siteInput.value = res.items[0]!.site;
    })
    .catch(() => {});

  const showError = (message: string, input?: HTMLInputElement) => {
    for (const el of [codeInput, siteInput, roomInput]) el.removeAttribute('aria-invalid');
    const box = notice(message, 'error');
    box.tabIndex = -1;
    errorBox.replaceChildren(box);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } else box.focus();
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = initial ?? normalizeCode(codeInput.value);
    if (!code) {
      showError('An activation code is 8 letters and digits, like K7PX-M3QD.', codeInput);
      return;
    }
    const site = siteInput.value.trim();
    const roomName = roomInput.value.trim();
    const siteProblem = textProblem('Site', site);
    if (siteProblem) return showError(siteProblem, siteInput);
    const roomProblem = textProblem('Room name', roomName);
    if (roomProblem) return showError(roomProblem, roomInput);

    errorBox.replaceChildren();
    submit.disabled = true;
    submit.textContent = 'Claiming…';
    try {
      const device = await api<DeviceDetail>('/v1/claims', {
        method: 'POST',
        body: { activationCode: code, site, roomName },
      });
      if (ctx.signal.aborted) return;
      renderDone(root, device, roomName);
    } catch (err) {
      if (ctx.signal.aborted) return;
      submit.disabled = false;
      submit.textContent = 'Claim';
      const status = err instanceof ApiError ? err.status : -1;
      // Code problems point at the code field when there is one; else the message takes focus.
      showError(claimErrorText(err), !initial && [404, 409, 410].includes(status) ? codeInput : undefined);
      // The code came from the address: offer a way to type the one on the screen instead.
      if (initial && (status === 404 || status === 410)) {
        errorBox.append(
          h('p', null, h('a', { href: '#/claim' }, 'Type the code from the room screen instead')),
        );
      }
    }
  });

  (initial ? siteInput : codeInput).focus();
}

function renderDone(root: HTMLElement, device: DeviceDetail, roomName: string): void {
  const heading = h(
    'h1',
    { class: 'page-title', tabindex: '-1', 'data-testid': 'claim-done' },
    `${roomName} is enrolled`,
  );
  document.title = `${roomName} enrolled · Sealroom console`;
  mount(
    root,
    h(
      'section',
      { class: 'claim-page card' },
      heading,
      notice(`${roomName} is enrolled; its screen switches to idle in a few seconds.`, 'ok'),
      h(
        'p',
        null,
        'Site ',
        h('strong', null, device.site ?? '—'),
        '. The device fetches its certificate and configuration on its next check-in.',
      ),
      h(
        'p',
        { class: 'toolbar' },
        h(
          'a',
          { class: 'btn btn-primary', href: `#/devices/${encodeURIComponent(device.id)}` },
          'Open the device',
        ),
        h('a', { class: 'btn', href: '#/devices' }, 'All devices'),
      ),
    ),
  );
  heading.focus();
}
