// Attack 4 ("forged media") at the frame level, through the very objects the media worker uses
// (MediaKeyState, the authenticated seal/open of sender-auth.ts): a member holding the group key
// sends under another member's KID, or pushes that KID's counter far ahead.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameAuthSender } from '../../src/core/frame-auth/node.js';
import { SFrameReceiver, SFrameSender, plausibleCounter } from '../../src/core/sframe/index.js';
import { type WireKeys, MediaKeyState } from './key-state.js';
import {
  failureCause,
  openAuthenticated,
  openH264Authenticated,
  sealAuthenticated,
  sealH264Authenticated,
} from './sender-auth.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const rnd = () => new Uint8Array(randomBytes(32));
const kid = (epoch: number, s: number) => (BigInt(epoch) << 16n) | BigInt(s);

/** One meeting: a group key per sender, a pairwise key per ordered pair. */
function meeting(members: number[]) {
  const base = new Map(members.map((m) => [m, rnd()]));
  const pair = new Map<string, Uint8Array>();
  const auth = (s: number, r: number) => {
    const id = `${s}>${r}`;
    if (!pair.has(id)) pair.set(id, rnd());
    return pair.get(id) as Uint8Array;
  };
  const keysFor = (self: number, epoch = 1, sending = true): WireKeys => ({
    epoch,
    sendKid: kid(epoch, self).toString(),
    sendKey: b64(base.get(self) as Uint8Array),
    receiveKeys: members.map((m) => ({ kid: kid(epoch, m).toString(), key: b64(base.get(m) as Uint8Array) })),
    sending,
    auth: members
      .filter((m) => m !== self)
      .map((m) => ({ peerIndex: m, send: b64(auth(self, m)), receive: b64(auth(m, self)) })),
  });
  return { base, auth, keysFor };
}

const state = (k: WireKeys) => {
  const s = new MediaKeyState(
    new SFrameReceiver({ replayWindow: 256, plausibleCounter }),
    (kid, baseKey, initialCounter) => new SFrameSender({ kid, baseKey, initialCounter }),
  );
  s.set(k);
  return s;
};

function cause(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return failureCause(err);
  }
}

// An access unit as x264 emits it: SPS, PPS, IDR slice (first_mb 0, slice_type 7, pps 0).
const SPS = Uint8Array.of(0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8);
const PPS = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
const idr = () => Uint8Array.from([0x65, 0xb8, ...randomBytes(3000), 0, 0, 2, 0, 0, 3, 7]);
const annexB = (nals: Uint8Array[]) => Buffer.concat(nals.flatMap((n) => [Buffer.of(0, 0, 0, 1), n]));

describe('sender authentication in the media worker’s receive path', () => {
  const VICTIM = 1;
  const RX = 2;
  const ATTACKER = 3;

  for (const kind of ['opus', 'vp8'] as const) {
    it(`${kind}: a member forging the victim's KID is dropped and counted; the victim still decodes`, () => {
      const m = meeting([VICTIM, RX, ATTACKER]);
      const victim = state(m.keysFor(VICTIM));
      const rx = state(m.keysFor(RX));
      // The attacker holds every group key (it is a member): it builds an SFrame sender under the
      // victim's KID and key, with a counter far ahead, and tags with every key it has.
      const forgedSender = new SFrameSender({
        kid: kid(1, VICTIM),
        baseKey: m.base.get(VICTIM) as Uint8Array,
        initialCounter: 100n,
      });
      const attackerAuth = new FrameAuthSender([
        { peerIndex: RX, key: m.auth(ATTACKER, RX) },
        { peerIndex: VICTIM, key: m.auth(ATTACKER, VICTIM) },
      ]);
      const plain = Uint8Array.from([0x30, ...randomBytes(400)]); // VP8 delta-frame-like
      const forged = sealAuthenticated(kind, forgedSender, attackerAuth, plain);
      expect(cause(() => openAuthenticated(kind, rx.receiver, rx.verifier, forged))).toBe('auth');
      // Without a trailer, or with the trailer cut, the same.
      expect(cause(() => openAuthenticated(kind, rx.receiver, rx.verifier, forged.subarray(0, 420)))).toBe(
        'auth',
      );
      // The victim's genuine frames (CTR 0, 1, …: far behind the forged 100) still open.
      const v = victim.sendKeys();
      if (!v) throw new Error('victim cannot send');
      for (let i = 0; i < 5; i++) {
        const wire = sealAuthenticated(kind, v.sender, v.auth, plain);
        const opened = openAuthenticated(kind, rx.receiver, rx.verifier, wire);
        expect(opened.kid).toBe(kid(1, VICTIM));
        expect(Buffer.compare(opened.frame, plain)).toBe(0);
        // Replayed: refused by the window (it moved only for authenticated frames).
        expect(cause(() => openAuthenticated(kind, rx.receiver, rx.verifier, wire))).toBe('decrypt');
      }
    });
  }

  it('h264: forged KID, mixed KIDs in one access unit, and a far-ahead counter never block the victim', () => {
    const m = meeting([VICTIM, RX, ATTACKER]);
    const rx = state(m.keysFor(RX));
    const v = state(m.keysFor(VICTIM)).sendKeys();
    const a = state(m.keysFor(ATTACKER)).sendKeys();
    if (!v || !a) throw new Error('no send keys');
    const au = annexB([SPS, PPS, idr()]);
    // Forged: valid SFrame under the victim's KID, attacker's tags.
    const forgedSender = new SFrameSender({
      kid: kid(1, VICTIM),
      baseKey: m.base.get(VICTIM) as Uint8Array,
      initialCounter: 2n ** 62n,
    });
    const forged = sealH264Authenticated(forgedSender, a.auth, au);
    expect(cause(() => openH264Authenticated(rx.receiver, rx.verifier, forged))).toBe('auth');
    // Mixed: the attacker's own (genuinely tagged) first unit, then victim-KID units behind it.
    const own = sealH264Authenticated(a.sender, a.auth, au);
    const mixedUnits = [own[0] as Uint8Array, ...(forged.slice(1, -1) as Uint8Array[])];
    const mixed = [...mixedUnits, ...sealH264Authenticated(a.sender, a.auth, au).slice(-1)];
    expect(cause(() => openH264Authenticated(rx.receiver, rx.verifier, mixed))).toBe('auth');
    // The victim's genuine access units decode, CTR 0 onwards.
    for (let i = 0; i < 3; i++) {
      const wire = sealH264Authenticated(v.sender, v.auth, au);
      expect(wire.length).toBe(4); // SPS, PPS, IDR, trailer
      const opened = openH264Authenticated(rx.receiver, rx.verifier, wire);
      expect(opened.kid).toBe(kid(1, VICTIM));
      expect(Buffer.compare(opened.frame, au)).toBe(0);
    }
    // Even the victim itself cannot jump its counter to 2^62 (refused, window unmoved).
    const jump = new SFrameSender({
      kid: kid(1, VICTIM),
      baseKey: m.base.get(VICTIM) as Uint8Array,
      initialCounter: 2n ** 62n,
    });
    expect(
      cause(() => openH264Authenticated(rx.receiver, rx.verifier, sealH264Authenticated(jump, v.auth, au))),
    ).toBe('implausible');
    expect(
      openH264Authenticated(rx.receiver, rx.verifier, sealH264Authenticated(v.sender, v.auth, au)).kid,
    ).toBe(kid(1, VICTIM));
  });
});

describe('keys bound to their meeting (attack 3)', () => {
  it('a second meeting with the same KIDs but new keys encrypts under the new keys', () => {
    const first = meeting([1, 2]);
    const second = meeting([1, 2]);
    const tx = state(first.keysFor(1));
    const oldRx = state(first.keysFor(2));
    const before = tx.sendKeys();
    if (!before) throw new Error('no send keys');
    openAuthenticated(
      'opus',
      oldRx.receiver,
      oldRx.verifier,
      sealAuthenticated('opus', before.sender, before.auth, new Uint8Array(50)),
    );
    // The meeting ends, the next begins: same KID (epoch 1, index 1), different key bytes.
    tx.clear();
    expect(tx.sendKeys()).toBeUndefined();
    expect(tx.set(second.keysFor(1)).newSender).toBe(true);
    const newRx = state(second.keysFor(2));
    const after = tx.sendKeys();
    if (!after) throw new Error('no send keys');
    const wire = sealAuthenticated('opus', after.sender, after.auth, new Uint8Array(50));
    expect(openAuthenticated('opus', newRx.receiver, newRx.verifier, wire).kid).toBe(kid(1, 1));
    expect(cause(() => openAuthenticated('opus', oldRx.receiver, oldRx.verifier, wire))).not.toBe('ok');
    // Without clear(), a keys message with new bytes under the same KID also rebuilds the sender.
    const third = meeting([1, 2]);
    expect(tx.set(third.keysFor(1)).newSender).toBe(true);
    expect(tx.set(third.keysFor(1)).newSender).toBe(false);
  });

  it('sends nothing while sending=false; receives on', () => {
    const m = meeting([1, 2]);
    const tx = state(m.keysFor(1, 1, false));
    expect(tx.sendKeys()).toBeUndefined();
    tx.set(m.keysFor(1, 1, true));
    expect(tx.sendKeys()).toBeDefined();
  });
});
