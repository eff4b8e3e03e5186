// The two VP8 frame formats of the browser participant: the clear-prefix format (what the media worker
// sends, device/media/vp8-protect.ts) and the former whole-frame SFrame (docs/interop.md), each
// interoperating with the media worker's own node:crypto code.
import { describe, expect, it } from 'vitest';
import { openWholeFrame, sealWholeFrame } from '../../device/media/frame-protect.js';
import { openVp8Frame, sealVp8Frame } from '../../device/media/vp8-protect.js';
import { makeKid } from '../../src/core/e2ee/sender-keys.js';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { WebSFrameReceiver, WebSFrameSender } from '../../src/web/media/sframe-webcrypto.js';
import { Vp8FormatError, openVp8, sealVp8, vp8ClearBytes } from '../../src/web/media/vp8-protect.js';

const kid = makeKid(3, 9);
const baseKey = new Uint8Array(32).fill(0x5a);
// A VP8 keyframe starts: frame tag (P=0), start code 9d 01 2a, width 320, height 240 (LE 14-bit).
const keyframe = Uint8Array.from([
  0x50,
  0x42,
  0x00,
  0x9d,
  0x01,
  0x2a,
  0x40,
  0x01,
  0xf0,
  0x00,
  ...new Array(200).fill(7),
]);
const deltaFrame = Uint8Array.from([0x31, 0x05, 0x00, ...new Array(80).fill(9)]);

function pair() {
  const sender = new WebSFrameSender({ kid, baseKey });
  const receiver = new WebSFrameReceiver();
  receiver.setKey(kid, baseKey);
  return { sender, receiver };
}

describe('VP8 frame formats', () => {
  it('clear-prefix: the media worker opens what the browser seals, and the reverse, byte for byte', async () => {
    const { sender, receiver } = pair();
    const node = new SFrameReceiver();
    node.setKey(kid, baseKey);
    const workerSender = new SFrameSender({ kid, baseKey, initialCounter: 300n });
    const browserSender = new WebSFrameSender({ kid, baseKey, initialCounter: 300n });
    for (const frame of [keyframe, deltaFrame]) {
      const fromBrowser = await sealVp8(sender, frame, 'clear-prefix');
      expect(openVp8Frame(node, fromBrowser).frame).toEqual(frame);
      const fromWorker = sealVp8Frame(workerSender, frame);
      expect(await openVp8(receiver, fromWorker, 'clear-prefix')).toEqual(frame);
      // Same key, KID and CTR: both implementations put the same bytes on the wire.
      expect(await sealVp8(browserSender, frame, 'clear-prefix')).toEqual(fromWorker);
    }
  });

  it('whole-frame: the media worker opens what the browser seals, and the reverse', async () => {
    const { sender, receiver } = pair();
    const node = new SFrameReceiver();
    node.setKey(kid, baseKey);
    const fromBrowser = await sealVp8(sender, keyframe, 'whole-frame');
    expect(Buffer.from(openWholeFrame(node, fromBrowser).frame)).toEqual(Buffer.from(keyframe));
    const fromWorker = sealWholeFrame(new SFrameSender({ kid, baseKey }), deltaFrame);
    expect(await openVp8(receiver, fromWorker, 'whole-frame')).toEqual(deltaFrame);
  });

  it('whole-frame: the first byte on the wire is the SFrame header, so its bit 0 says nothing about the frame type', async () => {
    const sender = new WebSFrameSender({ kid, baseKey, initialCounter: 300n });
    const sealed = await sealVp8(sender, keyframe, 'whole-frame');
    // X=1 K=2 (3-byte KID), Y=1 C=1 (2-byte CTR): 0xa9, bit 0 set — "delta" to a VP8 depacketiser.
    expect(sealed[0]).toBe(0xa9);
  });

  it('clear-prefix: 10 clear bytes on keyframes, 3 on delta frames, authenticated as metadata', async () => {
    const { sender, receiver } = pair();
    for (const frame of [keyframe, deltaFrame]) {
      const n = vp8ClearBytes(frame);
      expect(n).toBe(frame === keyframe ? 10 : 3);
      const sealed = await sealVp8(sender, frame, 'clear-prefix');
      expect(sealed.subarray(0, n)).toEqual(frame.subarray(0, n));
      expect(sealed.length).toBe(frame.length + 4 + 16); // 4-byte SFrame header (CTR < 8), 16-byte tag
      expect(await openVp8(receiver, sealed, 'clear-prefix')).toEqual(frame);
    }
  });

  it('clear-prefix: a changed clear byte fails authentication; too-short frames are refused', async () => {
    const { sender, receiver } = pair();
    const sealed = await sealVp8(sender, keyframe, 'clear-prefix');
    for (const at of [1, 6, 9, 10, sealed.length - 1]) {
      const bad = Uint8Array.from(sealed);
      bad[at] = (bad[at] as number) ^ 0x02;
      await expect(openVp8(receiver, bad, 'clear-prefix')).rejects.toThrow();
    }
    await expect(openVp8(receiver, sealed, 'clear-prefix')).resolves.toEqual(keyframe);
    await expect(sealVp8(sender, keyframe.subarray(0, 6), 'clear-prefix')).rejects.toBeInstanceOf(
      Vp8FormatError,
    );
    await expect(openVp8(receiver, keyframe.subarray(0, 10), 'clear-prefix')).rejects.toBeInstanceOf(
      Vp8FormatError,
    );
  });
});
