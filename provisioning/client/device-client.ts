// What a device says to the provisioning service. Every call after enrollment is signed with the
// identity key (provisioning/device-auth.ts). Used by device/enrollment's runner, tests and the bench.
// Devices pass a pinned fetch (createPinnedFetch of the service TLS CA pinned by ./tls-pin.ts).
import type { KeyObject } from 'node:crypto';
import { signDeviceRequest } from '../device-auth.js';
import { HEARTBEAT_KEY_REFRESH_MS, macHeartbeatRequest, parseHeartbeatKeyId } from '../heartbeat-key.js';
import { ProvisioningHttpError, requestJson } from './http.js';

export interface EnrollResponse {
  enrollmentId: string;
  deviceId: string;
  activationCode: string;
  expiresAt: string;
  claimUrl: string;
}

export interface CertificateResponse {
  status: 'pending' | 'active' | 'revoked' | 'decommissioned';
  deviceId: string;
  certPem?: string;
  caCertPem?: string;
  serial?: string;
  notAfter?: string;
  roomName?: string;
  site?: string;
  org: string;
  config?: Record<string, unknown>;
  configVersion: number;
}

export interface HeartbeatResponse {
  status: string;
  configVersion: number;
  config?: Record<string, unknown>;
  renewCertificate: boolean;
  serverTime: string;
  /** Remote actions IT queued for this device (untrusted shape: the runner validates and bounds it). */
  actions?: unknown;
}

/** What the device reports for one remote action (POST /v1/devices/:id/actions/:actionId/result). */
export interface ActionResult {
  status: 'done' | 'failed';
  /** ≤ 2000 characters. */
  message?: string;
  /** collect-logs: the gzip log bundle (≤ 8 MiB), sent base64-encoded. */
  bundle?: Uint8Array;
}

/** POST /v1/devices/:id/heartbeat-key. */
export interface HeartbeatKeyResponse {
  keyId: string;
  /** base64 */
  key: string;
  expiresAt: string;
}

export class DeviceProvisioningClient {
  /** The heartbeat MAC key: in memory only (never on disk, never logged); refetched when near expiry. */
  #heartbeatKey: { keyId: string; key: Buffer; expiresMs: number } | undefined;
  /** After a 404 on the key route (an older service): sign heartbeats until then. */
  #noKeyRouteUntil = 0;

  constructor(
    readonly baseUrl: string,
    readonly deviceId: string,
    private readonly privateKey: KeyObject,
    private readonly now: () => number = Date.now,
    /** Aborts requests in flight (the runner's stop()). */
    private readonly signal?: AbortSignal,
    /** The device's pinned fetch (createPinnedFetch of the service TLS CA); global fetch otherwise. */
    private readonly fetchImpl?: typeof fetch,
  ) {}

  async enroll(body: { csr: string; softwareVersion: string; inventory: Record<string, unknown> }) {
    return (
      await requestJson<EnrollResponse>(`${this.baseUrl}/v1/enrollments`, {
        method: 'POST',
        body: JSON.stringify(body),
        signal: this.signal,
        ...(this.fetchImpl ? { fetch: this.fetchImpl } : {}),
      })
    ).body;
  }

  async #signed<T>(
    method: string,
    path: string,
    payload?: unknown,
    timeoutMs?: number,
  ): Promise<{ status: number; body: T }> {
    const body = payload === undefined ? '' : JSON.stringify(payload);
    const headers = signDeviceRequest({
      privateKey: this.privateKey,
      deviceId: this.deviceId,
      method,
      path,
      body,
      now: this.now(),
    });
    return requestJson<T>(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: payload === undefined ? undefined : body,
      signal: this.signal,
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(this.fetchImpl ? { fetch: this.fetchImpl } : {}),
    });
  }

  async fetchCertificate(): Promise<CertificateResponse> {
    return (await this.#signed<CertificateResponse>('GET', `/v1/devices/${this.deviceId}/certificate`)).body;
  }

  /**
   * A heartbeat, MAC'd with the heartbeat key (fetched with a signed request when there is none or it
   * expires within 10 min). When the service refuses the MAC (401: key expired, secret rotated…) the
   * key is dropped and the heartbeat is sent once more, signed; a service without heartbeat keys
   * (404 on the key route) gets signed heartbeats.
   */
  async heartbeat(body: {
    softwareVersion: string;
    configVersion: number;
    health: Record<string, unknown>;
  }): Promise<HeartbeatResponse> {
    const path = `/v1/devices/${this.deviceId}/heartbeat`;
    const key = await this.#currentHeartbeatKey();
    if (key) {
      const text = JSON.stringify(body);
      try {
        return (
          await requestJson<HeartbeatResponse>(`${this.baseUrl}${path}`, {
            method: 'POST',
            headers: macHeartbeatRequest({ ...key, method: 'POST', path, body: text, now: this.now() }),
            body: text,
            signal: this.signal,
            ...(this.fetchImpl ? { fetch: this.fetchImpl } : {}),
          })
        ).body;
      } catch (err) {
        if (!(err instanceof ProvisioningHttpError && err.status === 401)) throw err;
        this.#heartbeatKey = undefined;
      }
    }
    return (await this.#signed<HeartbeatResponse>('POST', path, body)).body;
  }

  /** Forget the heartbeat key (the next heartbeat fetches a new one). */
  dropHeartbeatKey(): void {
    this.#heartbeatKey = undefined;
  }

  /** The key material as text, for log-bundle scrubbing (empty without a key). */
  heartbeatKeySecrets(): string[] {
    const k = this.#heartbeatKey?.key;
    return k ? [k.toString('base64'), k.toString('base64url')] : [];
  }

  async #currentHeartbeatKey(): Promise<{ keyId: string; key: Buffer } | undefined> {
    const k = this.#heartbeatKey;
    if (k && k.expiresMs - this.now() > HEARTBEAT_KEY_REFRESH_MS) return k;
    this.#heartbeatKey = undefined;
    if (this.now() < this.#noKeyRouteUntil) return undefined;
    let r: HeartbeatKeyResponse;
    try {
      r = (await this.#signed<HeartbeatKeyResponse>('POST', `/v1/devices/${this.deviceId}/heartbeat-key`))
        .body;
    } catch (err) {
      // An older service has no key route: sign heartbeats. Other refusals (revoked, unknown device)
      // are the heartbeat's to report, so the signed heartbeat goes out and gets them.
      if (err instanceof ProvisioningHttpError) {
        if (err.status === 404) this.#noKeyRouteUntil = this.now() + 3600_000;
        return undefined;
      }
      throw err;
    }
    const id = typeof r?.keyId === 'string' ? parseHeartbeatKeyId(r.keyId) : undefined;
    const key = typeof r?.key === 'string' ? Buffer.from(r.key, 'base64') : undefined;
    if (!id || id.deviceId !== this.deviceId || !key || key.length !== 32) return undefined;
    // The keyId's expiry is the service's clock; the refresh margin (10 min) exceeds the allowed skew.
    this.#heartbeatKey = { keyId: r.keyId, key, expiresMs: id.expiresUnixS * 1000 };
    return this.#heartbeatKey;
  }

  /** Reports an action's outcome. A bundle makes the body large: the timeout grows with it. */
  async reportActionResult(actionId: string, result: ActionResult): Promise<void> {
    const body: { status: string; message?: string; bundle?: string } = { status: result.status };
    if (result.message !== undefined) body.message = result.message.slice(0, 2000);
    if (result.bundle) body.bundle = Buffer.from(result.bundle).toString('base64');
    await this.#signed(
      'POST',
      `/v1/devices/${this.deviceId}/actions/${encodeURIComponent(actionId)}/result`,
      body,
      result.bundle ? 60_000 : undefined,
    );
  }

  async renew(csr: string): Promise<CertificateResponse> {
    return (
      await this.#signed<CertificateResponse>('POST', `/v1/devices/${this.deviceId}/certificate/renewal`, {
        csr,
      })
    ).body;
  }
}
