// What a hostile relay operator or member brings besides socket tampering (see ./hostile-relay.ts):
// its own CA and room certificates from it ("Room C / Example Corp"), raw devices that speak the
// relay protocol and E2EE by hand (a ghost participant with a validly signed binding, a member
// posting a binding with a low-order X25519 key), and a squatter claiming ids after a restart.
import { X509Certificate } from 'node:crypto';
import {
  IdentityKeyPair,
  KemKeyPair,
  ParticipantSession,
  bindingStatement,
  secureRandom,
  toBase64Url,
} from '../../src/core/e2ee/index.js';
import type { ServerMessage } from '../../src/core/protocol/relay.js';
import type { CertificateAuthority } from '../../src/pki/index.js';
import {
  createDevelopmentCa,
  type DevelopmentDevice,
  issueDevelopmentDevice,
} from '../../src/relay/dev-pki.js';
import { RelayConnection, RelayRequestError } from '../../device/daemon/relay-connection.js';

/** A CA the relay operator made itself: nothing a device pinned at enrollment. */
export function foreignCa(org = 'Example Corp'): Promise<CertificateAuthority> {
  return createDevelopmentCa(org);
}

/** A room certificate from a foreign CA: "Room C / Example Corp" by default. */
export function forgeRoom(
  ca: CertificateAuthority,
  roomName = 'Room C',
  org = 'Example Corp',
): Promise<DevelopmentDevice> {
  return issueDevelopmentDevice(ca, { roomName, org });
}

export function certificateDer(device: DevelopmentDevice): Uint8Array {
  return new Uint8Array(new X509Certificate(device.certificatePem).raw);
}

/** X25519 public keys of small order (RFC 7748 §7 / libsodium's blocklist), and one non-canonical. */
export const LOW_ORDER_X25519_KEYS: Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => new Uint8Array(Buffer.from(hex, 'hex')));

/**
 * A device driven by hand: an authenticated relay connection and, once in a meeting, a
 * ParticipantSession fed with what the relay routes to it. Records its E2EE events, so a test can
 * prove it never got a key.
 */
export class RawDevice {
  readonly connection: RelayConnection;
  readonly device: DevelopmentDevice;
  readonly events: { type: string; [k: string]: unknown }[] = [];
  readonly messages: ServerMessage[] = [];
  session?: ParticipantSession;
  meetingId?: string;
  participantId?: string;

  private constructor(connection: RelayConnection, device: DevelopmentDevice) {
    this.connection = connection;
    this.device = device;
    connection.on('message', (m) => {
      this.messages.push(m);
      if (m.type === 'e2ee' && this.session) {
        try {
          const out = this.session.handle(m.payload as never);
          this.events.push(...(out.events as { type: string }[]));
          for (const o of out.outgoing)
            connection.send({ type: 'e2ee', ...(o.to ? { to: o.to } : {}), payload: o as never });
        } catch (err) {
          this.events.push({ type: 'threw', message: (err as Error).message });
        }
      }
    });
  }

  static async connect(url: string, device: DevelopmentDevice): Promise<RawDevice> {
    return new RawDevice(
      await RelayConnection.connect(url, {
        certificatePem: device.certificatePem,
        identityKey: device.identityKey,
      }),
      device,
    );
  }

  /** Asks to join and posts a validly signed binding (with its own certificate) to the leader. */
  async joinWithBinding(meetingId: string): Promise<string> {
    const reply = await this.connection.request({ type: 'join', meetingId });
    if (reply.type !== 'meeting') throw new Error('no meeting reply');
    this.meetingId = reply.meetingId;
    this.participantId = reply.participantId;
    this.session = new ParticipantSession({
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      identity: IdentityKeyPair.fromKeyObject(this.device.identityKey),
      // SPEC item 1: the binding carries the certificate (ignored by a core without it).
      ...({ certificate: certificateDer(this.device) } as object),
    });
    for (const o of this.session.start().outgoing)
      this.connection.send({ type: 'e2ee', payload: o as never });
    return reply.participantId;
  }

  /** Joins and posts a binding signed correctly but naming `ephemeralKey` (e.g. of low order). */
  async joinWithEphemeralKey(meetingId: string, ephemeralKey: Uint8Array): Promise<string> {
    const reply = await this.connection.request({ type: 'join', meetingId });
    if (reply.type !== 'meeting') throw new Error('no meeting reply');
    this.meetingId = reply.meetingId;
    this.participantId = reply.participantId;
    this.postBinding(ephemeralKey);
    return reply.participantId;
  }

  /** A protocol v2 binding (valid ML-KEM key, versions [2]) signed correctly, naming `ephemeralKey`. */
  postBinding(ephemeralKey: Uint8Array): void {
    const identity = IdentityKeyPair.fromKeyObject(this.device.identityKey);
    const meetingId = this.meetingId ?? '';
    const participantId = this.participantId ?? '';
    const kemKey = KemKeyPair.generate(secureRandom).publicKey;
    const versions = [2] as const;
    const signature = identity.sign(
      bindingStatement({
        meetingId,
        participantId,
        identityKey: identity.publicKey,
        ephemeralKey,
        kemKey,
        versions,
      }),
    );
    this.connection.send({
      type: 'e2ee',
      payload: {
        v: 2,
        type: 'e2ee.binding',
        meetingId,
        from: participantId,
        binding: {
          participantId,
          identityKey: toBase64Url(identity.publicKey),
          ephemeralKey: toBase64Url(ephemeralKey),
          kemKey: toBase64Url(kemKey),
          versions: [...versions],
          signature: toBase64Url(signature),
          certificate: toBase64Url(certificateDer(this.device)),
        },
      },
    });
  }

  /** Whether any keys event ever reached this device. */
  get keyed(): boolean {
    return this.events.some((e) => e.type === 'keys');
  }

  close(): void {
    this.connection.terminate();
  }
}

/**
 * A squat attempt after a relay restart: `create` with someone else's meeting id, or `join` with
 * someone else's participant id. Resolves with the relay's error code, or 'accepted'.
 */
export async function squat(
  url: string,
  device: DevelopmentDevice,
  claim: { meetingId: string; participantId?: string; as: 'leader' | 'participant' },
): Promise<string> {
  const connection = await RelayConnection.connect(url, {
    certificatePem: device.certificatePem,
    identityKey: device.identityKey,
  });
  try {
    await connection.request(
      claim.as === 'leader'
        ? {
            type: 'create',
            meetingId: claim.meetingId,
            ...(claim.participantId ? { participantId: claim.participantId } : {}),
          }
        : {
            type: 'join',
            meetingId: claim.meetingId,
            ...(claim.participantId ? { participantId: claim.participantId } : {}),
          },
    );
    return 'accepted';
  } catch (err) {
    if (err instanceof RelayRequestError) return err.code;
    throw err;
  } finally {
    connection.terminate();
  }
}
