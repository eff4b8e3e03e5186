// What a device says to the provisioning service. Every call after enrollment is signed with the
// identity key (provisioning/device-auth.ts). Used by device/enrollment's runner, tests and the bench.
// Devices pass a pinned fetch (createPinnedFetch of the service TLS CA pinned by ./tls-pin.ts).
import type { KeyObject } from 'node:crypto';
import { signDeviceRequest } from '../device-auth.js';
import { requestJson } from './http.js';

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

export class DeviceProvisioningClient {
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

  async heartbeat(body: {
    softwareVersion: string;
    configVersion: number;
    health: Record<string, unknown>;
  }): Promise<HeartbeatResponse> {
    return (await this.#signed<HeartbeatResponse>('POST', `/v1/devices/${this.deviceId}/heartbeat`, body))
      .body;
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
