// The pure parts of alerting: rule functions, params validation, the incident state machine, the
// webhook signature and the e-mail text. Property-tested: whatever a device reports, a rule answers
// on/off/unknown and never throws.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  nextAttempt,
  SIGNATURE_TOLERANCE_S,
  signWebhook,
  verifyWebhook,
} from '../provisioning/alerts/deliveries.js';
import { mailBody, mailSubject } from '../provisioning/alerts/email.js';
import { acknowledge, step } from '../provisioning/alerts/incidents.js';
import {
  DEFAULT_PARAMS,
  evaluateCertificate,
  evaluateHealthRule,
  evaluateOffline,
  evaluatePeripherals,
  evaluateSelfTest,
  evaluateTemperature,
  expiryCutoff,
  HEALTH_RULES,
  offlineCutoff,
  PARAM_BOUNDS,
  parseParams,
  RULE_KINDS,
} from '../provisioning/alerts/rules.js';
import type { Incident } from '../provisioning/store/alerts-store.js';

const now = new Date('2026-12-04T12:00:00.000Z');
const dev = { id: 'sr-aaaaaaaaaaaaaaaaaaaa', status: 'active', roomName: 'Fjord', site: 'Oslo' };

describe('rules', () => {
  it('offline: only an active device seen at least once, silent for `minutes` or longer', () => {
    const p = { minutes: 10 };
    const at = (minAgo: number) => new Date(now.getTime() - minAgo * 60_000).toISOString();
    expect(evaluateOffline(p, { ...dev, lastSeenAt: at(9.99) }, now).state).toBe('off');
    const on = evaluateOffline(p, { ...dev, lastSeenAt: at(10) }, now);
    expect(on).toMatchObject({ state: 'on', summary: 'Fjord (Oslo) offline for 10 min' });
    expect(evaluateOffline(p, { ...dev, lastSeenAt: null }, now).state).toBe('off');
    expect(evaluateOffline(p, { ...dev, status: 'revoked', lastSeenAt: at(60) }, now).state).toBe('off');
    expect(evaluateOffline(p, { ...dev, status: 'pending', lastSeenAt: at(60) }, now).state).toBe('off');
    expect(evaluateOffline(p, { ...dev, lastSeenAt: 'yesterday-ish' }, now).state).toBe('unknown');
  });

  it('offline agrees with the SQL cutoff the engine uses (last_seen_at < cutoff ⇔ on)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_080 }),
        fc.integer({ min: 0, max: 20 * 86_400_000 }),
        (m, ago) => {
          const lastSeenAt = new Date(now.getTime() - ago).toISOString();
          const on = evaluateOffline({ minutes: m }, { ...dev, lastSeenAt }, now).state === 'on';
          // The SQL picks strictly older rows; the rule also counts "exactly N minutes" (one round later).
          expect(lastSeenAt < offlineCutoff({ minutes: m }, now) ? on : true).toBe(true);
          expect(on).toBe(ago >= m * 60_000);
        },
      ),
    );
  });

  it('certificate-expiring: within `days`, expired too; not for inactive devices', () => {
    const p = { days: 14 };
    const inDays = (d: number) => new Date(now.getTime() + d * 86_400_000).toISOString();
    expect(evaluateCertificate(p, { ...dev, certNotAfter: inDays(14) }, now).state).toBe('off');
    expect(evaluateCertificate(p, { ...dev, certNotAfter: inDays(13.5) }, now)).toMatchObject({
      state: 'on',
      summary: 'Fjord (Oslo) certificate expires in 13 days',
    });
    expect(evaluateCertificate(p, { ...dev, certNotAfter: inDays(-1) }, now)).toMatchObject({
      state: 'on',
      summary: 'Fjord (Oslo) certificate expired',
    });
    expect(
      evaluateCertificate(p, { ...dev, status: 'decommissioned', certNotAfter: inDays(1) }, now).state,
    ).toBe('off');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 365 }), fc.integer({ min: -400, max: 400 }), (days, left) => {
        const certNotAfter = inDays(left);
        const on = evaluateCertificate({ days }, { ...dev, certNotAfter }, now).state === 'on';
        expect(on).toBe(left < days);
        expect(on).toBe(certNotAfter < expiryCutoff({ days }, now));
      }),
    );
  });

  it('temperature: strictly above the threshold; no or absurd temperature says nothing', () => {
    const p = { celsius: 80 };
    expect(evaluateTemperature(p, dev, { temperatureC: 80 }).state).toBe('off');
    expect(evaluateTemperature(p, dev, { temperatureC: 80.25 })).toMatchObject({
      state: 'on',
      summary: 'Fjord (Oslo) at 80.3 °C (above 80 °C)',
    });
    for (const t of [null, '95', Number.NaN, Number.POSITIVE_INFINITY, 1e308, -1e308, [], {}])
      expect(evaluateTemperature(p, dev, { temperatureC: t }).state).toBe('unknown');
    expect(evaluateTemperature(p, dev, undefined).state).toBe('unknown');
  });

  it('peripheral-missing: known kinds, each once; unknown kinds ignored, malformed lists say nothing', () => {
    expect(evaluatePeripherals(dev, { peripherals: { present: [], missing: [] } }).state).toBe('off');
    const c = evaluatePeripherals(dev, {
      peripherals: { present: ['display'], missing: ['speaker', 'camera', 'camera', 'toaster'] },
    });
    expect(c).toMatchObject({ state: 'on', summary: 'Fjord (Oslo): camera, speaker missing' });
    // A list with non-strings is malformed: it neither opens nor clears.
    expect(evaluatePeripherals(dev, { peripherals: { missing: ['camera', 7, null] } }).state).toBe('unknown');
    expect(evaluatePeripherals(dev, { peripherals: { missing: [{}] } }).state).toBe('unknown');
    expect(evaluatePeripherals(dev, { peripherals: { missing: ['toaster'] } }).state).toBe('off');
    expect(evaluatePeripherals(dev, { peripherals: 'camera' }).state).toBe('unknown');
    expect(evaluatePeripherals(dev, {}).state).toBe('unknown');
  });

  it('selftest-failed: ok=false opens with the failed checks, ok=true clears, anything else is unknown', () => {
    expect(evaluateSelfTest(dev, { selfTest: { ok: true, failed: [] } }).state).toBe('off');
    expect(
      evaluateSelfTest(dev, {
        selfTest: { ok: false, failed: ['camera', 'tpm\u0007\r\nX-Evil: 1'], at: now.toISOString() },
      }),
    ).toMatchObject({ state: 'on', summary: 'Fjord (Oslo) self-test failed: camera, tpm X-Evil: 1' });
    expect(evaluateSelfTest(dev, { selfTest: { ok: 'false' } }).state).toBe('unknown');
  });

  it('a health rule never throws and answers a valid condition, whatever the device sends', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HEALTH_RULES),
        fc.oneof(
          fc.anything(),
          fc.record({
            temperatureC: fc.oneof(fc.double(), fc.string(), fc.anything()),
            peripherals: fc.oneof(fc.anything(), fc.record({ missing: fc.array(fc.anything()) })),
            selfTest: fc.oneof(fc.anything(), fc.record({ ok: fc.anything(), failed: fc.anything() })),
          }),
        ),
        fc.oneof(fc.string(), fc.constant(null)),
        (kind, health, room) => {
          const c = evaluateHealthRule(kind, DEFAULT_PARAMS[kind], { ...dev, roomName: room }, health);
          expect(['on', 'off', 'unknown']).toContain(c.state);
          if (c.state === 'on') {
            expect(c.summary.length).toBeLessThan(2000);
            expect(c.summary).not.toMatch(/[\u0000-\u001f]/);
            expect(() => JSON.stringify(c.details)).not.toThrow();
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('params: only the kind’s own keys, in bounds; anything else is a message, never a throw', () => {
    expect(parseParams('offline', { minutes: 5 })).toEqual({ minutes: 5 });
    expect(parseParams('offline', {})).toEqual({ minutes: 10 });
    expect(parseParams('offline', { minutes: 0 })).toMatch(/from 1/);
    expect(parseParams('offline', { minutes: 2.5 })).toMatch(/integer/);
    expect(parseParams('offline', { minuets: 5 })).toMatch(/only minutes/);
    expect(parseParams('temperature', { celsius: 71.5 })).toEqual({ celsius: 71.5 });
    expect(parseParams('selftest-failed', { x: 1 })).toMatch(/no params/);
    expect(parseParams('temperature', [])).toMatch(/object/);
    fc.assert(
      fc.property(fc.constantFrom(...RULE_KINDS), fc.anything(), (kind, input) => {
        const p = parseParams(kind, input);
        if (typeof p === 'string') return;
        const bounds =
          (PARAM_BOUNDS as Record<string, Record<string, { min: number; max: number }>>)[kind] ?? {};
        expect(Object.keys(p).sort()).toEqual(Object.keys(bounds).sort());
        for (const [k, b] of Object.entries(bounds)) {
          const v = (p as Record<string, number>)[k]!;
          expect(v >= b.min && v <= b.max).toBe(true);
        }
      }),
    );
  });
});

describe('incident state machine', () => {
  it('open → (acknowledged) → resolved; a condition back after resolve opens a NEW incident', () => {
    type Model = { id: string; status: 'open' | 'acknowledged' | 'resolved' }[];
    fc.assert(
      fc.property(
        fc.array(
          fc.constantFrom('on', 'off', 'unknown', 'ack') as fc.Arbitrary<'on' | 'off' | 'unknown' | 'ack'>,
          {
            maxLength: 60,
          },
        ),
        (events) => {
          const incidents: Model = [];
          let lastCondition: 'on' | 'off' | null = null;
          for (const e of events) {
            const current = incidents.find((i) => i.status !== 'resolved');
            if (e === 'ack') {
              if (current && acknowledge(current.status) === 'acknowledge') current.status = 'acknowledged';
              continue;
            }
            const c =
              e === 'on'
                ? ({ state: 'on', summary: 's', details: {} } as const)
                : e === 'off'
                  ? ({ state: 'off' } as const)
                  : ({ state: 'unknown' } as const);
            const s = step(current, c);
            if (s.do === 'open') incidents.push({ id: `i${incidents.length}`, status: 'open' });
            if (s.do === 'resolve') incidents.find((i) => i.id === s.id)!.status = 'resolved';
            if (e !== 'unknown') lastCondition = e;
            // Invariants: at most one unresolved; it exists exactly when the last known condition is on.
            const unresolved = incidents.filter((i) => i.status !== 'resolved');
            expect(unresolved.length).toBeLessThanOrEqual(1);
            expect(unresolved.length === 1).toBe(lastCondition === 'on');
          }
          // Each "off → on" edge opened a new incident.
          const edges = events.filter((e) => e !== 'unknown' && e !== 'ack');
          let opens = 0;
          let prev: string | null = null;
          for (const e of edges) {
            if (e === 'on' && prev !== 'on') opens++;
            prev = e;
          }
          expect(incidents.length).toBe(opens);
        },
      ),
    );
    expect(acknowledge('acknowledged')).toBe('already');
    expect(acknowledge('resolved')).toBe('resolved');
  });
});

describe('webhook signature and retries', () => {
  const secret = 'whsec_test';
  const body = JSON.stringify({ id: 'dlv_1', event: 'incident.opened' });
  it('verifies, refuses other bodies, other secrets, malformed headers and old timestamps', () => {
    const t = 1_800_000_000;
    const h = signWebhook(secret, body, t);
    expect(h).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(secret, body, h, t + 10)).toBe('ok');
    expect(verifyWebhook(secret, `${body} `, h, t)).toBe('bad-signature');
    expect(verifyWebhook('whsec_other', body, h, t)).toBe('bad-signature');
    expect(verifyWebhook(secret, body, h, t + SIGNATURE_TOLERANCE_S + 1)).toBe('old');
    expect(verifyWebhook(secret, body, undefined, t)).toBe('malformed');
    expect(verifyWebhook(secret, body, `${h},v0=00`, t)).toBe('malformed');
    fc.assert(
      fc.property(fc.string(), (header) => {
        expect(['malformed', 'old', 'bad-signature']).toContain(verifyWebhook(secret, body, header, t));
      }),
    );
  });

  it('the receiver example in docs/alerts.md accepts our signature and refuses tampering and old ones', async () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'alerts.md'), 'utf8');
    const code = /```js\n([\s\S]*?export function verify[\s\S]*?)```/.exec(doc)?.[1];
    expect(code).toBeDefined();
    const { verify } = (await import(`data:text/javascript,${encodeURIComponent(code!)}`)) as {
      verify: (secret: string, body: string, header: string | undefined) => boolean;
    };
    const t = Math.floor(Date.now() / 1000);
    expect(verify(secret, body, signWebhook(secret, body, t))).toBe(true);
    expect(verify(secret, `${body}x`, signWebhook(secret, body, t))).toBe(false);
    expect(verify(secret, body, signWebhook(secret, body, t - 301))).toBe(false);
    expect(verify(secret, body, undefined)).toBe(false);
  });

  it('retries follow the backoff list, then dead', () => {
    const backoff = [10_000, 30_000, 120_000, 600_000, 3_600_000];
    expect(nextAttempt(1, backoff, now)).toBe(new Date(now.getTime() + 10_000).toISOString());
    expect(nextAttempt(5, backoff, now)).toBe(new Date(now.getTime() + 3_600_000).toISOString());
    expect(nextAttempt(6, backoff, now)).toBeNull();
  });
});

describe('e-mail text', () => {
  const incident: Incident = {
    id: 'inc_x',
    rule: 'temperature',
    deviceId: dev.id,
    roomName: 'Fjord',
    site: 'Oslo',
    status: 'open',
    summary: 'Fjord (Oslo) at 91 °C\r\nBcc: evil@example.org',
    details: {},
    openedAt: now.toISOString(),
    acknowledgedAt: null,
    acknowledgedBy: null,
    resolvedAt: null,
    updatedAt: now.toISOString(),
  };
  it('subject on one line; body names room, site, rule, times and the console link', () => {
    expect(mailSubject('incident.opened', incident)).toBe(
      '[Sealroom] OPENED: Fjord (Oslo) at 91 °C Bcc: evil@example.org',
    );
    const text = mailBody('incident.opened', incident, 'https://it.example.org');
    expect(text).toContain('Room:         Fjord');
    expect(text).toContain('Site:         Oslo');
    expect(text).toContain('Rule:         temperature');
    expect(text).toContain(`Opened:       ${now.toISOString()}`);
    expect(text).toContain('Console: https://it.example.org/console/#/incidents');
  });
});
