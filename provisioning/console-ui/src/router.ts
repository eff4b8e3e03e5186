// Hash routing (the service serves one index.html at /console/, the CSP allows only our script):
// `#/devices?site=…`, `#/devices/<id>`, `#/claim?code=…`, `#/profiles`, `#/updates?site=…`,
// `#/incidents`, `#/alerts`.
// Each page module exports `render(root, params, ctx)`; the router calls it on every hash change
// and aborts the previous page's signal so its timers and polls stop.
import type { Me } from './api.js';
import * as alerts from './pages/alerts.js';
import * as claim from './pages/claim.js';
import * as device from './pages/device.js';
import * as fleet from './pages/fleet.js';
import * as incidents from './pages/incidents.js';
import * as profiles from './pages/profiles.js';
import * as updates from './pages/updates.js';

export interface PageContext {
  me: Me;
  /** Aborted when the person navigates away: stop polling, clear timers. */
  signal: AbortSignal;
}

export type Render = (root: HTMLElement, params: URLSearchParams, ctx: PageContext) => Promise<void>;

export interface Route {
  /** Nav section this page belongs to (highlighted in the header). */
  section: 'devices' | 'profiles' | 'updates' | 'incidents' | 'alerts' | 'claim';
  render: Render;
  params: URLSearchParams;
}

/** Route for a hash such as `#/devices/abc?x=1`; unknown hashes fall back to the device list. */
export function resolve(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const qi = raw.indexOf('?');
  const path = qi === -1 ? raw : raw.slice(0, qi);
  const params = new URLSearchParams(qi === -1 ? '' : raw.slice(qi + 1));
  const parts = path.split('/').filter(Boolean);
  switch (parts[0]) {
    case 'devices':
      if (parts.length === 2) {
        let id = parts[1]!;
        try {
          id = decodeURIComponent(id);
        } catch {
          // a malformed escape: keep it raw, the API answers 404
        }
        params.set('id', id);
        return { section: 'devices', render: device.render, params };
      }
      return { section: 'devices', render: fleet.render, params };
    case 'claim':
      return { section: 'claim', render: claim.render, params };
    case 'profiles':
      return { section: 'profiles', render: profiles.render, params };
    case 'updates':
      return { section: 'updates', render: updates.render, params };
    case 'incidents':
      return { section: 'incidents', render: incidents.render, params };
    case 'alerts':
      return { section: 'alerts', render: alerts.render, params };
    default:
      return { section: 'devices', render: fleet.render, params: new URLSearchParams() };
  }
}

/** Hash for a path and its non-empty params: `hashOf('/devices', {site: 'HQ'})` → `#/devices?site=HQ`. */
export function hashOf(path: string, params?: Record<string, string | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

/**
 * Record a page's state (filters, cursor) in the address without re-rendering it: the page
 * already shows that state, and a reload or shared link brings it back.
 */
export function replaceHash(hash: string): void {
  if (location.hash === hash) return;
  history.replaceState(history.state, '', `${location.pathname}${location.search}${hash}`);
}
