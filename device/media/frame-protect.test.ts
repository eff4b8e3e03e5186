import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { openWholeFrame, sealWholeFrame } from './frame-protect.js';

const kid = 0x10002n;
const key = randomBytes(32);

describe('whole-frame protection (Opus)', () => {
  it('round-trips and refuses a replayed frame and a wrong key', () => {
    const sender = new SFrameSender({ kid, baseKey: key });
    const receiver = new SFrameReceiver();
    receiver.setKey(kid, key);
    const frame = randomBytes(500);
    const sealed = sealWholeFrame(sender, frame);
    expect(Buffer.from(openWholeFrame(receiver, sealed).frame).equals(frame)).toBe(true);
    expect(() => openWholeFrame(receiver, sealed)).toThrow();
    const other = new SFrameReceiver();
    other.setKey(kid, randomBytes(32));
    expect(() => openWholeFrame(other, sealWholeFrame(sender, frame))).toThrow();
  });
});
