// The frame around every page: skip link, header (product, navigation, who is signed in, sign
// out) and the <main> landmark pages render into.
import { api, ApiError, forgetMe, type Me } from './api.js';
import { h, mount, notice } from './dom.js';
import type { Route } from './router.js';

const NAV: { section: Route['section']; label: string; href: string }[] = [
  { section: 'devices', label: 'Devices', href: '#/devices' },
  { section: 'profiles', label: 'Profiles', href: '#/profiles' },
  { section: 'updates', label: 'Updates', href: '#/updates' },
  { section: 'incidents', label: 'Incidents', href: '#/incidents' },
  { section: 'alerts', label: 'Alerts', href: '#/alerts' },
];

export interface Shell {
  main: HTMLElement;
  /** Mark the current section in the navigation. */
  setSection(section: Route['section']): void;
}

export function renderShell(app: HTMLElement, me: Me): Shell {
  const links = NAV.map((n) => ({ ...n, el: h('a', { href: n.href, class: 'nav-link' }, n.label) }));
  const main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  const signOut = h('button', { type: 'button', class: 'btn btn-quiet signout' }, 'Sign out');
  const signOutError = h('div', { class: 'signout-error' });
  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    try {
      await api<void>('/console/auth/logout', { method: 'POST', noRedirect: true });
      forgetMe();
      showSignedOut(app);
    } catch (err) {
      signOut.disabled = false;
      // An ended session is as good as signed out.
      if (err instanceof ApiError && err.status === 401) showSignedOut(app);
      else mount(signOutError, notice(`Sign-out failed: ${(err as Error).message}`));
    }
  });
  const header = h(
    'header',
    { class: 'topbar' },
    h(
      'div',
      { class: 'topbar-inner' },
      h(
        'a',
        { href: '#/devices', class: 'brand' },
        h('span', { class: 'brand-mark', 'aria-hidden': 'true' }),
        'Sealroom',
        h('span', { class: 'brand-sub' }, me.org ? `IT console · ${me.org}` : 'IT console'),
      ),
      h(
        'nav',
        { class: 'nav', 'aria-label': 'Main' },
        h(
          'ul',
          null,
          links.map((l) => h('li', null, l.el)),
        ),
      ),
      h(
        'div',
        { class: 'user' },
        h(
          'span',
          { class: 'user-who' },
          h('span', { class: 'user-name', title: me.email }, me.name || me.email),
          h(
            'span',
            { class: `role role-${me.role}` },
            me.role === 'admin' ? 'Admin' : 'Helpdesk (read-only)',
          ),
        ),
        signOut,
      ),
    ),
    signOutError,
  );
  mount(app, h('a', { href: '#main', class: 'skip-link' }, 'Skip to content'), header, main);
  // The skip link must not change the route: move focus instead.
  app.querySelector('.skip-link')!.addEventListener('click', (ev) => {
    ev.preventDefault();
    main.focus();
  });
  return {
    main,
    setSection(section) {
      for (const l of links) {
        if (l.section === section) l.el.setAttribute('aria-current', 'page');
        else l.el.removeAttribute('aria-current');
      }
    },
  };
}

export function showSignedOut(app: HTMLElement): void {
  document.title = 'Signed out · Sealroom console';
  mount(
    app,
    h(
      'main',
      { class: 'main narrow', id: 'main' },
      h('h1', null, 'You are signed out'),
      h('p', null, 'Your console session has ended on this browser.'),
      h(
        'p',
        null,
        h(
          'a',
          { href: '/console/auth/login?return=%2Fconsole%2F', class: 'btn btn-primary' },
          'Sign in again',
        ),
      ),
    ),
  );
}
