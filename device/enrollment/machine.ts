// The device enrollment state machine. Pure: no clock (callers pass now), no I/O. The runner
// (./runner.ts) performs the actions it asks for and feeds back the outcomes as events; the state is
// persisted after every transition so a restart resumes where it stopped.
//
//   unregistered ──registered──▶ awaiting-claim ──certificate──▶ enrolled ──(config|renewed)──▶ enrolled
//        ▲                           │ code expired                 │
//        └───────────────────────────┘                              └──revoked──▶ revoked (terminal)
import type { EnrollmentView } from '../daemon/state.js';

export interface Certificate {
  certPem: string;
  caCertPem: string;
  serial: string;
  notAfter: string;
  roomName: string;
  site: string;
  org: string;
}

export type EnrollmentState =
  | { phase: 'unregistered'; deviceId: string }
  | {
      phase: 'awaiting-claim';
      deviceId: string;
      enrollmentId: string;
      activationCode: string;
      expiresAt: string;
      claimUrl: string;
    }
  | {
      phase: 'enrolled';
      deviceId: string;
      certificate: Certificate;
      config: Record<string, unknown>;
      configVersion: number;
      /** The service asked for a new certificate (same key). */
      renewalDue: boolean;
    }
  | { phase: 'revoked'; deviceId: string; reason: string };

export type EnrollmentEvent =
  | { type: 'registered'; enrollmentId: string; activationCode: string; expiresAt: string; claimUrl: string }
  | { type: 'already-known' }
  /** The service does not know this device (its database was reset): start over. */
  | { type: 'forgotten' }
  | { type: 'certificate'; certificate: Certificate; config: Record<string, unknown>; configVersion: number }
  | { type: 'heartbeat'; config?: Record<string, unknown>; configVersion: number; renewCertificate: boolean }
  | { type: 'revoked'; reason: string };

export type EnrollmentAction = 'register' | 'poll-certificate' | 'heartbeat' | 'renew' | 'none';

export function initialEnrollmentState(deviceId: string): EnrollmentState {
  return { phase: 'unregistered', deviceId };
}

export function nextAction(state: EnrollmentState, now: number): EnrollmentAction {
  switch (state.phase) {
    case 'unregistered':
      return 'register';
    case 'awaiting-claim':
      // An expired code cannot be claimed any more: register again for a fresh one. An empty code
      // means the service already knows us (e.g. state lost after a claim): just fetch the certificate.
      return state.activationCode && Date.parse(state.expiresAt) <= now ? 'register' : 'poll-certificate';
    case 'enrolled':
      return state.renewalDue ? 'renew' : 'heartbeat';
    case 'revoked':
      return 'none';
  }
}

export function reduce(state: EnrollmentState, event: EnrollmentEvent): EnrollmentState {
  const { deviceId } = state;
  switch (event.type) {
    case 'registered':
      return {
        phase: 'awaiting-claim',
        deviceId,
        enrollmentId: event.enrollmentId,
        activationCode: event.activationCode,
        expiresAt: event.expiresAt,
        claimUrl: event.claimUrl,
      };
    case 'forgotten':
      return initialEnrollmentState(deviceId);
    case 'already-known':
      return {
        phase: 'awaiting-claim',
        deviceId,
        enrollmentId: '',
        activationCode: '',
        expiresAt: '',
        claimUrl: '',
      };
    case 'certificate':
      return {
        phase: 'enrolled',
        deviceId,
        certificate: event.certificate,
        config: event.config,
        configVersion: event.configVersion,
        renewalDue: false,
      };
    case 'heartbeat':
      if (state.phase !== 'enrolled') return state;
      return {
        ...state,
        ...(event.config !== undefined ? { config: event.config, configVersion: event.configVersion } : {}),
        renewalDue: event.renewCertificate,
      };
    case 'revoked':
      return { phase: 'revoked', deviceId, reason: event.reason };
  }
}

/** Exponential backoff with full jitter: 0..min(max, base·2^attempt). `random` in [0, 1). */
export function backoffDelay(attempt: number, random: number, baseMs = 1000, maxMs = 60_000): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(baseMs / 2, Math.floor(random * cap));
}

/** What the kiosk shows for this state (the daemon's EnrollmentView). */
export function toView(state: EnrollmentState, problem?: string): EnrollmentView {
  switch (state.phase) {
    case 'unregistered':
      return { status: problem ? 'error' : 'registering', ...(problem ? { message: problem } : {}) };
    case 'awaiting-claim':
      if (!state.activationCode)
        return { status: 'fetching-certificate', ...(problem ? { message: problem } : {}) };
      return {
        status: 'awaiting-claim',
        activationCode: state.activationCode,
        expiresAt: state.expiresAt,
        claimUrl: state.claimUrl,
        ...(problem ? { message: problem } : {}),
      };
    case 'enrolled':
      return { status: 'enrolled', ...(problem ? { message: problem } : {}) };
    case 'revoked':
      return { status: 'error', message: `This device was revoked by IT (${state.reason}).` };
  }
}
