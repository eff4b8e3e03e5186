// Boot-time known-answer tests of the E2EE core (run by `sealroom selftest`). The primitive vectors
// are from RFC 8032 (Ed25519) and RFC 7748 (X25519); the Sealroom derivations were computed by an
// independent Python implementation (pyca/cryptography + a hand-written HChaCha20) from
// docs/protocol.md, not by this code.
import type { KnownAnswerTest } from '../selftest.js';
import { bytesEqual } from './bytes.js';
import { encodeCanonical } from './canonical.js';
import { EphemeralKeyPair, IdentityKeyPair, verifyEd25519 } from './keys.js';
import { deriveWrapKey, openMeetingKey, sealMeetingKey } from './meeting-key.js';
import { securityCodeDigits } from './security-code.js';
import { deriveSenderBaseKey, makeKid, parseKid } from './sender-keys.js';

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function expectHex(what: string, actual: Uint8Array, expected: string): void {
  if (toHex(actual) !== expected) throw new Error(`${what}: got ${toHex(actual)}, expected ${expected}`);
}

const RFC8032_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC8032_SIG_EMPTY =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
const RFC7748_ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const RFC7748_ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const RFC7748_BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const RFC7748_SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
const MEETING_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

const wrapContext = {
  meetingId: 'meeting-kat',
  leaderId: 'leader',
  recipientId: 'bob',
  epoch: 5,
  leaderEphemeralKey: hex(RFC7748_ALICE_PUBLIC),
  recipientEphemeralKey: hex(RFC7748_BOB_PUBLIC),
};

export const e2eeKnownAnswerTests: KnownAnswerTest[] = [
  {
    name: 'e2ee: Ed25519 identity key (RFC 8032 test 1)',
    run() {
      const identity = IdentityKeyPair.fromSeed(hex(RFC8032_SEED));
      expectHex('public key', identity.publicKey, RFC8032_PUBLIC);
      expectHex('signature', identity.sign(new Uint8Array(0)), RFC8032_SIG_EMPTY);
      if (!verifyEd25519(identity.publicKey, new Uint8Array(0), hex(RFC8032_SIG_EMPTY))) {
        throw new Error('signature does not verify');
      }
      if (verifyEd25519(identity.publicKey, new Uint8Array(1), hex(RFC8032_SIG_EMPTY))) {
        throw new Error('signature verifies for another message');
      }
    },
  },
  {
    name: 'e2ee: X25519 agreement (RFC 7748 §6.1)',
    run() {
      const alice = EphemeralKeyPair.fromSeed(hex(RFC7748_ALICE_PRIVATE));
      expectHex('public key', alice.publicKey, RFC7748_ALICE_PUBLIC);
      expectHex('shared secret', alice.agree(hex(RFC7748_BOB_PUBLIC)), RFC7748_SHARED);
    },
  },
  {
    name: 'e2ee: canonical encoding',
    run() {
      expectHex(
        'encoding',
        encodeCanonical('sealroom/v1/binding', 'm', 1, hex('ab')),
        '000000137365616c726f6f6d2f76312f62696e64696e67000000016d00000008000000000000000100000001ab',
      );
    },
  },
  {
    name: 'e2ee: security code derivation',
    run() {
      const digits = securityCodeDigits({
        meetingId: 'meeting-kat',
        leaderIdentityKey: hex(RFC8032_PUBLIC),
        creationNonce: MEETING_KEY,
      });
      if (digits !== '5705667967650148992888357835842010124099') throw new Error(`got ${digits}`);
    },
  },
  {
    name: 'e2ee: sender base key derivation',
    run() {
      expectHex(
        'sender key',
        deriveSenderBaseKey(MEETING_KEY, 7, 3),
        '1c6a7fe8ed7b64a28dd23d592286ba11b19d9f1a8471b7e8698eddabdbd5794c',
      );
    },
  },
  {
    name: 'e2ee: KID layout',
    run() {
      if (makeKid(7, 3) !== 0x70003n) throw new Error(`makeKid(7, 3) = ${makeKid(7, 3)}`);
      const parsed = parseKid(0x1_0000_ffffn);
      if (parsed.epoch !== 0x10000 || parsed.senderIndex !== 0xffff) throw new Error('parseKid mismatch');
    },
  },
  {
    name: 'e2ee: meeting-key wrap and unwrap',
    run() {
      const shared = hex(RFC7748_SHARED);
      expectHex(
        'wrap key',
        deriveWrapKey(shared, wrapContext),
        '4184e2a30c68d0e9daf53ce0a860289e4f551c7c0e95843713cd55639494b07f',
      );
      const wrapped = sealMeetingKey(shared, wrapContext, MEETING_KEY, new Uint8Array(24).fill(0x24));
      expectHex(
        'wrapped key',
        wrapped.ciphertext,
        '2058623e259986d3679fda95d8fab2e799c27cbb1acb485134321da90af71e2ddb3de2689d752ecb659e50c874f546a6',
      );
      if (!bytesEqual(openMeetingKey(shared, wrapContext, wrapped), MEETING_KEY))
        throw new Error('unwrap mismatch');
      let refused = false;
      try {
        openMeetingKey(shared, { ...wrapContext, recipientId: 'mallory' }, wrapped);
      } catch {
        refused = true;
      }
      if (!refused) throw new Error('unwrap for another recipient was accepted');
    },
  },
];
