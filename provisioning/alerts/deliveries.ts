// Delivering the outbox: webhooks (HMAC-SHA256 signed, Stripe-like) and e-mail. Each due row is
// leased (attempt counted, next_attempt_at moved past the attempt's timeout) so that several
// instances never send it at the same time; a failure is retried after retryBackoffMs[n], and after
// the last one the row is 'dead' (the dead-letter list; POST …/retry gives it one more attempt).
// Webhook redirects are refused (a redirect could lead the signed body somewhere else), and a
// receiver's response body is kept only as a short error.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { request } from 'undici';
import {
  type DueDelivery,
  dueDeliveries,
  leaseDelivery,
  markDelivered,
  markFailed,
  targetSecret,
} from '../store/alerts-store.js';
import type { Db } from '../store/db.js';
import type { Mailer } from './email.js';

export const DEFAULT_BACKOFF_MS = [10_000, 30_000, 120_000, 600_000, 3_600_000];
/** Receivers should refuse signatures older than this (docs/alerts.md). */
export const SIGNATURE_TOLERANCE_S = 300;

/** `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** The receiver's check (also what docs/alerts.md shows): signature valid and `t` recent. */
export function verifyWebhook(
  secret: string,
  body: string,
  header: string | undefined,
  nowSeconds: number,
  toleranceSeconds = SIGNATURE_TOLERANCE_S,
): 'ok' | 'malformed' | 'old' | 'bad-signature' {
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return 'malformed';
  const t = Number(m[1]);
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return 'old';
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(want, Buffer.from(m[2]!, 'hex')) ? 'ok' : 'bad-signature';
}

/** When attempt `attempts` (1-based, just failed) is retried; null: no more, the row is dead. */
export function nextAttempt(attempts: number, backoffMs: readonly number[], now: Date): string | null {
  if (attempts < 1 || attempts > backoffMs.length) return null;
  return new Date(now.getTime() + backoffMs[attempts - 1]!).toISOString();
}

export interface DeliveryContext {
  db: Db;
  now: () => Date;
  backoffMs: readonly number[];
  timeoutMs: number;
  mailer?: Mailer;
  log?: { warn(obj: unknown, msg: string): void };
  /** Attempts at once per round. */
  concurrency?: number;
}

const ERROR_MAX = 300;

const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').slice(0, ERROR_MAX);

/** Reads at most `max` bytes of a response body for the error text, then drops the rest. */
async function snippet(body: AsyncIterable<Buffer> & { destroy(): void }, max = 200): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      parts.push(chunk);
      n += chunk.length;
      if (n >= max) break;
    }
  } catch {
    // a broken body is not worth more than what we have
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}

/** One webhook POST; resolves to null on 2xx, else the error text. */
export async function postWebhook(
  d: DueDelivery,
  secret: string,
  sentAt: Date,
  timeoutMs: number,
): Promise<string | null> {
  const body = JSON.stringify({
    id: d.id,
    event: d.event,
    sentAt: sentAt.toISOString(),
    incident: d.payload,
  });
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(d.target.url!, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Sealroom-Alerts/1',
        'x-sealroom-delivery': d.id,
        'x-sealroom-signature': signWebhook(secret, body, Math.floor(sentAt.getTime() / 1000)),
      },
      body,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (res.statusCode >= 200 && res.statusCode < 300) {
      await snippet(res.body, 0);
      return null;
    }
    if (res.statusCode >= 300 && res.statusCode < 400) {
      await snippet(res.body, 0);
      return `HTTP ${res.statusCode}: redirects are refused (set the final URL on the target)`;
    }
    const text = await snippet(res.body);
    return `HTTP ${res.statusCode}${text ? `: ${text}` : ''}`;
  } catch (err) {
    if (signal.aborted) return `timed out after ${timeoutMs} ms`;
    const e = err as { code?: string; message?: string };
    return `${e.code ?? 'error'}: ${e.message ?? String(err)}`;
  }
}

async function attempt(ctx: DeliveryContext, d: DueDelivery): Promise<void> {
  const now = ctx.now();
  // Lease past the attempt's own timeout, so a crash here only delays it.
  const leaseUntil = new Date(now.getTime() + ctx.timeoutMs + 5000).toISOString();
  if (!(await leaseDelivery(ctx.db, d, leaseUntil))) return;
  const attempts = d.attempts + 1;
  let error: string | null;
  if (d.target.kind === 'webhook') {
    const secret = await targetSecret(ctx.db, d.targetId);
    error =
      secret && d.target.url
        ? await postWebhook(d, secret, now, ctx.timeoutMs)
        : 'target has no URL or secret';
  } else if (ctx.mailer && d.target.email) {
    try {
      await ctx.mailer.send(d.target.email, d.event, d.payload);
      error = null;
    } catch (err) {
      const e = err as { code?: string; message?: string; responseCode?: number };
      error = `${e.code ?? 'smtp'}${e.responseCode ? ` ${e.responseCode}` : ''}: ${e.message ?? String(err)}`;
    }
  } else {
    error = 'no SMTP server configured (--smtp-url)';
  }
  const done = ctx.now();
  if (error === null) {
    await markDelivered(ctx.db, d.id, done.toISOString());
    return;
  }
  const next = nextAttempt(attempts, ctx.backoffMs, done);
  await markFailed(ctx.db, d.id, printable(error), next);
  ctx.log?.warn(
    { delivery: d.id, target: d.targetId, attempts, dead: next === null, error: printable(error) },
    'alert delivery failed',
  );
}

/** One round: every due delivery (up to `limit`), `concurrency` at a time. Returns how many were due. */
export async function deliverDue(ctx: DeliveryContext, limit = 200): Promise<number> {
  const due = await dueDeliveries(ctx.db, ctx.now().toISOString(), Boolean(ctx.mailer), limit);
  let i = 0;
  const worker = async () => {
    while (i < due.length) {
      const d = due[i++]!;
      try {
        await attempt(ctx, d);
      } catch (err) {
        ctx.log?.warn({ err, delivery: d.id }, 'alert delivery round failed');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ctx.concurrency ?? 8, due.length) }, worker));
  return due.length;
}
