// STUB (issue 13, owner H-alerts): evaluates alert rules into incidents and delivers them.
import type { FastifyInstance } from 'fastify';
import type { ResolvedOptions } from '../service/app.js';

export interface AlertOptions {
  /** SMTP server for e-mail targets, e.g. smtp://127.0.0.1:2525 (none: e-mail targets stay pending). */
  smtpUrl?: string;
  /** From address of alert e-mails (default "Sealroom alerts <alerts@sealroom.invalid>"). */
  mailFrom?: string;
  /** How often offline and certificate rules are evaluated (default 30 s). */
  evaluateIntervalMs?: number;
  /** How often due deliveries are attempted (default 2 s). */
  deliveryIntervalMs?: number;
  /** Wait before retry n (ms); after the last a delivery goes to the dead-letter list. */
  retryBackoffMs?: number[];
  /** Per-attempt timeout (default 10 s). */
  deliveryTimeoutMs?: number;
}

export interface AlertEngine {
  /** Runs the periodic rules now (tests). */
  evaluateNow(): Promise<void>;
  /** Attempts due deliveries now (tests). */
  deliverNow(): Promise<void>;
  close(): Promise<void>;
}

export function startAlerts(
  _app: FastifyInstance,
  _opts: ResolvedOptions,
  _options: AlertOptions = {},
): AlertEngine {
  return { evaluateNow: async () => {}, deliverNow: async () => {}, close: async () => {} };
}
