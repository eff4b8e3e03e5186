// Entry point of the IT console (served at /console/): find out who is signed in (or send them to
// the organisation's sign-in), draw the shell, then render the page the hash names on every change.
import { ApiError, me, signInUrl } from './api.js';
import { h, mount, notice } from './dom.js';
import { resolve } from './router.js';
import { renderShell } from './shell.js';

const app = document.getElementById('app')!;

async function start(): Promise<void> {
  let user: Awaited<ReturnType<typeof me>>;
  try {
    user = await me();
  } catch (err) {
    mount(
      app,
      h(
        'main',
        { class: 'main narrow', id: 'main' },
        h('h1', null, 'Sealroom console'),
        notice(`The console could not load: ${(err as Error).message}`),
      ),
    );
    return;
  }
  if (!user) {
    mount(
      app,
      h('main', { class: 'main narrow', id: 'main' }, h('p', { role: 'status' }, 'Taking you to sign-in…')),
    );
    location.replace(signInUrl());
    return;
  }
  const signedIn = user;
  const shell = renderShell(app, signedIn);
  let controller: AbortController | undefined;
  let first = true;

  const show = async (): Promise<void> => {
    controller?.abort();
    const ctl = new AbortController();
    controller = ctl;
    const route = resolve(location.hash);
    shell.setSection(route.section);
    shell.main.replaceChildren();
    try {
      await route.render(shell.main, route.params, { me: signedIn, signal: ctl.signal });
    } catch (err) {
      if (ctl.signal.aborted) return;
      const msg = err instanceof ApiError ? err.message : `Something went wrong: ${(err as Error).message}`;
      shell.main.append(notice(msg));
    }
    // Move focus to the new page's heading so keyboard and screen-reader users land on it.
    if (!first && !ctl.signal.aborted) shell.main.querySelector<HTMLElement>('h1')?.focus();
    first = false;
  };
  window.addEventListener('hashchange', () => void show());
  if (!location.hash) history.replaceState(null, '', `${location.pathname}${location.search}#/devices`);
  await show();
}

void start();
