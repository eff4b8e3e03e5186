// What IT's tools say to the provisioning service, with an admin token. Used by `sealroom admin`.
// Pass `fetch` (createPinnedFetch of the service TLS CA, `--tls-ca`) to trust only that CA.
import { requestJson } from './http.js';

export interface TokenInfo {
  id: string;
  name: string;
  scope: 'read' | 'admin';
  createdAt: string;
  expiresAt: string;
  createdBy: string | null;
  revokedAt: string | null;
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly fetchImpl?: typeof fetch,
  ) {}

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (
      await requestJson<T>(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}` },
        body: body === undefined ? undefined : JSON.stringify(body),
        ...(this.fetchImpl ? { fetch: this.fetchImpl } : {}),
      })
    ).body;
  }

  claim(body: { activationCode: string; roomName: string; site: string; policy?: string; config?: object }) {
    return this.#call<Record<string, unknown>>('POST', '/v1/claims', body);
  }

  listDevices(query: Record<string, string | number | undefined> = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    return this.#call<{ total: number; items: Record<string, unknown>[] }>('GET', `/v1/devices?${qs}`);
  }

  showDevice(id: string) {
    return this.#call<Record<string, unknown>>('GET', `/v1/devices/${encodeURIComponent(id)}`);
  }

  revoke(id: string, reason?: string) {
    return this.#call<Record<string, unknown>>('POST', `/v1/devices/${encodeURIComponent(id)}/revoke`, {
      reason,
    });
  }

  decommission(id: string, reason?: string) {
    return this.#call<Record<string, unknown>>('POST', `/v1/devices/${encodeURIComponent(id)}/decommission`, {
      reason,
    });
  }

  setConfig(id: string, config: Record<string, unknown>) {
    return this.#call<Record<string, unknown>>('PUT', `/v1/devices/${encodeURIComponent(id)}/config`, {
      config,
    });
  }

  /** Channel, window (null: any time) or pause of a site (its profile) or one device (its override). */
  setUpdatePolicy(
    target: { site: string } | { deviceId: string },
    change: { channel?: string; window?: { start: string; end: string } | null; paused?: boolean },
  ) {
    const path =
      'site' in target
        ? `/v1/sites/${encodeURIComponent(target.site)}/update-policy`
        : `/v1/devices/${encodeURIComponent(target.deviceId)}/update-policy`;
    return this.#call<{ update: Record<string, unknown>; version: number; devicesChanged: number }>(
      'PUT',
      path,
      change,
    );
  }

  /** The rollout per channel (GET /v1/fleet/updates). */
  rollout(site?: string) {
    return this.#call<{
      channels: {
        channel: string;
        devices: number;
        paused: number;
        channelPending: number;
        versions: Record<string, number>;
        states: Record<string, number>;
        latest: Record<string, string>;
      }[];
      problems: {
        deviceId: string;
        roomName: string | null;
        site: string | null;
        channel: string;
        state: string;
        current: string;
        target: string | null;
        error: string | null;
        at: string;
      }[];
    }>('GET', `/v1/fleet/updates${site === undefined ? '' : `?site=${encodeURIComponent(site)}`}`);
  }

  audit(query: Record<string, string | number | undefined> = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    return this.#call<Record<string, unknown>[]>('GET', `/v1/audit?${qs}`);
  }

  createToken(name: string, scope: 'read' | 'admin', expiresAt?: string) {
    return this.#call<TokenInfo & { token: string }>('POST', '/v1/tokens', {
      name,
      scope,
      ...(expiresAt ? { expiresAt } : {}),
    });
  }

  listTokens() {
    return this.#call<TokenInfo[]>('GET', '/v1/tokens');
  }

  /** Revokes a token by id or name. */
  revokeToken(idOrName: string) {
    return this.#call<TokenInfo>('DELETE', `/v1/tokens/${encodeURIComponent(idOrName)}`);
  }
}
