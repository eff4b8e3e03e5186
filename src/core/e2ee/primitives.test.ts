import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../test/e2ee-helpers.js';
import { createBinding, verifyBinding } from './binding.js';
import { fromBase64Url, toBase64Url } from './bytes.js';
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import { EphemeralKeyPair, IdentityKeyPair } from './keys.js';
import { openMeetingKey, sealMeetingKey, SharedSecretCache, type WrapContext } from './meeting-key.js';
import { formatSecurityCode, securityCode, securityCodeDigits } from './security-code.js';
import { deriveSenderBaseKey, makeKid, MAX_EPOCH, MAX_SENDER_INDEX, parseKid } from './sender-keys.js';

const random = seededRandom('primitives');
const flip = (bytes: Uint8Array, index: number, mask: number): Uint8Array => {
  const copy = new Uint8Array(bytes);
  copy[index % copy.length]! ^= mask;
  return copy;
};
const expectCode = (fn: () => unknown, code: string) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(E2eeError);
    expect((error as E2eeError).code).toBe(code);
    return;
  }
  throw new Error(`expected E2eeError ${code}`);
};

describe('canonical encoding', () => {
  it('is injective: different field lists never encode to the same bytes', () => {
    const field = fc.oneof(fc.string({ maxLength: 6 }), fc.nat(), fc.uint8Array({ maxLength: 6 }));
    fc.assert(
      fc.property(fc.array(field, { maxLength: 4 }), fc.array(field, { maxLength: 4 }), (a, b) => {
        const ea = Buffer.from(encodeCanonical('label', ...a));
        const eb = Buffer.from(encodeCanonical('label', ...b));
        const same = JSON.stringify(a.map(norm)) === JSON.stringify(b.map(norm));
        expect(ea.equals(eb)).toBe(same);
      }),
    );
  });

  it('refuses integers outside u64', () => {
    expectCode(() => encodeCanonical('l', -1), 'malformed');
    expectCode(() => encodeCanonical('l', 2n ** 64n), 'malformed');
  });
});

// Encodings are typed by position, so compare by encoded bytes of each field.
function norm(f: string | number | Uint8Array): string {
  return Buffer.from(encodeCanonical('', f)).toString('hex');
}

describe('base64url', () => {
  it('round-trips and rejects padding, other alphabets and non-canonical tails', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        expect(fromBase64Url(toBase64Url(bytes))).toEqual(bytes);
      }),
    );
    expectCode(() => fromBase64Url('AA=='), 'malformed');
    expectCode(() => fromBase64Url('A+/A'), 'malformed');
    expectCode(() => fromBase64Url('AB'), 'malformed'); // 'B' sets a bit beyond the byte
    expectCode(() => fromBase64Url('AA', 2), 'malformed');
  });
});

describe('key binding', () => {
  const identity = IdentityKeyPair.generate(random);
  const ephemeral = EphemeralKeyPair.generate(random);
  const binding = createBinding('meeting-1', 'room-a', identity, ephemeral);

  it('verifies for its meeting', () => {
    expect(() => verifyBinding(binding, 'meeting-1')).not.toThrow();
  });

  it('rejects any tampered byte of keys or signature', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('identityKey', 'ephemeralKey', 'signature' as const),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (field, index, mask) => {
          const tampered = { ...binding, [field]: flip(binding[field], index, mask) };
          expect(() => verifyBinding(tampered, 'meeting-1')).toThrow(E2eeError);
        },
      ),
    );
  });

  it('rejects another participant id, a replay into another meeting, and a foreign signer', () => {
    expectCode(() => verifyBinding({ ...binding, participantId: 'room-b' }, 'meeting-1'), 'bad-signature');
    expectCode(() => verifyBinding(binding, 'meeting-2'), 'wrong-meeting');
    expectCode(() => verifyBinding({ ...binding, meetingId: 'meeting-2' }, 'meeting-2'), 'bad-signature');
    const mallory = IdentityKeyPair.generate(random);
    const forged = createBinding('meeting-1', 'room-a', mallory, ephemeral);
    expectCode(
      () => verifyBinding({ ...forged, identityKey: identity.publicKey }, 'meeting-1'),
      'bad-signature',
    );
  });
});

describe('meeting-key wrap', () => {
  const leader = EphemeralKeyPair.generate(random);
  const recipient = EphemeralKeyPair.generate(random);
  const context: WrapContext = {
    meetingId: 'meeting-1',
    leaderId: 'leader',
    recipientId: 'room-a',
    epoch: 3,
    leaderEphemeralKey: leader.publicKey,
    recipientEphemeralKey: recipient.publicKey,
  };
  const meetingKey = random(32);
  const wrapped = sealMeetingKey(leader.agree(recipient.publicKey), context, meetingKey, random(24));
  const recipientShared = recipient.agree(leader.publicKey);

  it('round-trips for the recipient', () => {
    expect(openMeetingKey(recipientShared, context, wrapped)).toEqual(meetingKey);
  });

  it('rejects any tampered byte of nonce or ciphertext', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('nonce', 'ciphertext' as const),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (field, index, mask) => {
          const tampered = { ...wrapped, [field]: flip(wrapped[field], index, mask) };
          expectCode(() => openMeetingKey(recipientShared, context, tampered), 'unwrap-failed');
        },
      ),
    );
  });

  it('binds meeting, leader, recipient and epoch: changing any one fails', () => {
    const variants: Partial<WrapContext>[] = [
      { meetingId: 'meeting-2' },
      { leaderId: 'someone' },
      { recipientId: 'room-b' },
      { epoch: 4 },
    ];
    for (const change of variants) {
      const changed = { ...context, ...change };
      expectCode(
        () => openMeetingKey(recipientShared, changed, { ...wrapped, epoch: changed.epoch }),
        'unwrap-failed',
      );
    }
  });

  it('cannot be opened with another participant’s ephemeral key', () => {
    const other = EphemeralKeyPair.generate(random);
    expectCode(
      () =>
        openMeetingKey(
          other.agree(leader.publicKey),
          { ...context, recipientEphemeralKey: other.publicKey },
          wrapped,
        ),
      'unwrap-failed',
    );
  });

  it('caches one agreement per peer key', () => {
    const cache = new SharedSecretCache(leader);
    const a = cache.get(recipient.publicKey);
    expect(cache.get(recipient.publicKey)).toBe(a);
    expect(a).toEqual(recipientShared);
    expect(cache.size).toBe(1);
    cache.forget(recipient.publicKey);
    expect(cache.size).toBe(0);
  });

  it('refuses low-order peer keys', () => {
    expect(() => leader.agree(new Uint8Array(32))).toThrow(E2eeError);
  });
});

describe('KID layout and sender keys', () => {
  it('makeKid/parseKid round-trip over the whole range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_EPOCH }),
        fc.integer({ min: 0, max: MAX_SENDER_INDEX }),
        (e, s) => {
          const kid = makeKid(e, s);
          expect(kid).toBeLessThan(2n ** 63n);
          expect(parseKid(kid)).toEqual({ epoch: e, senderIndex: s });
        },
      ),
    );
    expectCode(() => makeKid(1, MAX_SENDER_INDEX + 1), 'malformed');
    expectCode(() => makeKid(MAX_EPOCH + 1, 0), 'malformed');
    expectCode(() => parseKid(-1n), 'malformed');
  });

  it('gives every (epoch, sender) its own key', () => {
    const meetingKey = random(32);
    const meeting = { meetingId: 'm', creationNonce: random(32) };
    const seen = new Set<string>();
    for (let e = 1; e <= 4; e++) {
      for (let s = 0; s < 8; s++) seen.add(toBase64Url(deriveSenderBaseKey(meetingKey, e, s, meeting)));
    }
    expect(seen.size).toBe(32);
    expect(deriveSenderBaseKey(random(32), 1, 0, meeting)).not.toEqual(
      deriveSenderBaseKey(meetingKey, 1, 0, meeting),
    );
  });

  it('binds keys to the meeting: the same key and KID in another meeting is another key', () => {
    const meetingKey = random(32);
    const nonce = random(32);
    const key = deriveSenderBaseKey(meetingKey, 1, 0, { meetingId: 'm', creationNonce: nonce });
    expect(deriveSenderBaseKey(meetingKey, 1, 0, { meetingId: 'm2', creationNonce: nonce })).not.toEqual(key);
    expect(deriveSenderBaseKey(meetingKey, 1, 0, { meetingId: 'm', creationNonce: random(32) })).not.toEqual(
      key,
    );
    expect(() =>
      deriveSenderBaseKey(meetingKey, 1, 0, { meetingId: 'm', creationNonce: new Uint8Array(0) }),
    ).toThrow(E2eeError);
  });
});

describe('security code', () => {
  const input = { meetingId: 'meeting-1', leaderIdentityKey: random(32), creationNonce: random(32) };

  it('is 8 groups of 5 digits, deterministic', () => {
    const code = securityCode(input);
    expect(code).toMatch(/^\d{5}( \d{5}){7}$/);
    expect(securityCode({ ...input })).toBe(code);
    expect(formatSecurityCode(securityCodeDigits(input))).toBe(code);
  });

  it('changes with the leader key, the meeting and the creation nonce', () => {
    const code = securityCode(input);
    expect(securityCode({ ...input, leaderIdentityKey: random(32) })).not.toBe(code);
    expect(securityCode({ ...input, meetingId: 'meeting-2' })).not.toBe(code);
    expect(securityCode({ ...input, creationNonce: random(32) })).not.toBe(code);
  });

  it('digits are close to uniform (rejection sampling keeps 0-5 from being favoured)', () => {
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 1500; i++) {
      for (const d of securityCodeDigits({ ...input, meetingId: `m${i}` })) counts[Number(d)]++;
    }
    // 60 000 digits, 6 000 expected per digit; chi-square with 9 d.o.f. below 27.9 (p = 0.001).
    const chi = counts.reduce((sum, c) => sum + (c - 6000) ** 2 / 6000, 0);
    expect(chi).toBeLessThan(27.9);
  });
});
