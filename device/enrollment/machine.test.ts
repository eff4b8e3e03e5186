import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, initialEnrollmentState, nextAction, reduce, toView } from './machine.js';

const cert = {
  certPem: 'c',
  caCertPem: 'ca',
  serial: '0a',
  notAfter: '2030-01-01T00:00:00.000Z',
  roomName: 'R',
  site: 'S',
  org: 'O',
};

describe('enrollment state machine', () => {
  it('walks register → awaiting claim → enrolled → revoked', () => {
    let s = initialEnrollmentState('sr-x');
    expect(nextAction(s, 0)).toBe('register');
    s = reduce(s, {
      type: 'registered',
      enrollmentId: 'e',
      activationCode: 'AAAA-CCCC',
      expiresAt: '2026-01-01T00:15:00.000Z',
      claimUrl: 'u',
    });
    expect(nextAction(s, Date.parse('2026-01-01T00:10:00.000Z'))).toBe('poll-certificate');
    expect(toView(s)).toMatchObject({ status: 'awaiting-claim', activationCode: 'AAAA-CCCC', claimUrl: 'u' });
    // The code expired on screen: get a new one.
    expect(nextAction(s, Date.parse('2026-01-01T00:15:00.000Z'))).toBe('register');
    s = reduce(s, { type: 'certificate', certificate: cert, config: { a: 1 }, configVersion: 1 });
    expect(nextAction(s, 0)).toBe('heartbeat');
    s = reduce(s, { type: 'heartbeat', config: { a: 2 }, configVersion: 2, renewCertificate: true });
    expect(s).toMatchObject({ phase: 'enrolled', config: { a: 2 }, configVersion: 2 });
    expect(nextAction(s, 0)).toBe('renew');
    s = reduce(s, { type: 'heartbeat', configVersion: 2, renewCertificate: false });
    expect(s).toMatchObject({ config: { a: 2 }, renewalDue: false });
    s = reduce(s, { type: 'revoked', reason: 'stolen' });
    expect(nextAction(s, 0)).toBe('none');
    expect(toView(s).status).toBe('error');
  });

  it('starts over when the service has forgotten the device', () => {
    const s = reduce(reduce(initialEnrollmentState('sr-x'), { type: 'already-known' }), {
      type: 'forgotten',
    });
    expect(s).toEqual({ phase: 'unregistered', deviceId: 'sr-x' });
    expect(nextAction(s, 0)).toBe('register');
  });

  it('after "already known" it only polls for the certificate', () => {
    const s = reduce(initialEnrollmentState('sr-x'), { type: 'already-known' });
    expect(nextAction(s, Number.MAX_SAFE_INTEGER)).toBe('poll-certificate');
    expect(toView(s).status).toBe('fetching-certificate');
  });

  it('backs off exponentially with jitter, within [base/2, max]', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, r, 1000, 60_000);
        return d >= 500 && d <= Math.min(60_000, 1000 * 2 ** attempt);
      }),
    );
    expect(backoffDelay(0, 0.999, 1000, 60_000)).toBe(999);
    expect(backoffDelay(3, 0.999, 1000, 60_000)).toBe(7992);
    expect(backoffDelay(20, 0.999, 1000, 60_000)).toBe(59_940);
  });
});
