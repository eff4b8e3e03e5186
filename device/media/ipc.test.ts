import { describe, expect, it } from 'vitest';
import { keyFromWire, keyToWire, kidFromWire, kidToWire, parseFromWorker, parseToWorker } from './ipc.js';

describe('media IPC protocol', () => {
  it('accepts a keys message with KIDs beyond 2^53 and 32-byte keys, and round-trips them', () => {
    const kid = (2n ** 47n - 1n) << 16n;
    const key = new Uint8Array(32).fill(9);
    const msg = {
      type: 'keys',
      epoch: 3,
      sendKid: kidToWire(kid),
      sendKey: keyToWire(key),
      receiveKeys: [{ kid: kidToWire(kid), key: keyToWire(key) }],
      sending: true,
      auth: [{ peerIndex: 2, send: keyToWire(key), receive: keyToWire(key) }],
    };
    const parsed = parseToWorker(JSON.parse(JSON.stringify(msg)));
    expect(parsed.ok).toBe(true);
    expect(kidFromWire(msg.sendKid)).toBe(kid);
    expect([...keyFromWire(msg.sendKey)]).toEqual([...key]);
  });

  it('rejects malformed commands with a path to the problem', () => {
    const bad = parseToWorker({ type: 'keys', epoch: 1, sendKid: '12x', sendKey: 'AAAA', receiveKeys: [] });
    expect(bad.ok).toBe(false);
    expect(parseToWorker({ type: 'start', settings: { profile: '../etc' } }).ok).toBe(false);
    expect(parseToWorker({ type: 'nope' }).ok).toBe(false);
    // Keys without `sending` and `auth` (the worker must know both) are refused.
    const key = keyToWire(new Uint8Array(32));
    expect(
      parseToWorker({ type: 'keys', epoch: 1, sendKid: '65537', sendKey: key, receiveKeys: [] }).ok,
    ).toBe(false);
    expect(parseToWorker({ type: 'clear-keys' }).ok).toBe(true);
    expect(parseFromWorker({ type: 'pong', id: 'x' }).ok).toBe(false);
  });

  it('carries relay signalling payloads unchanged', () => {
    const payload = {
      kind: 'candidate',
      candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host',
      sdpMid: '0',
      sdpMLineIndex: 0,
    };
    expect(parseToWorker({ type: 'signal', payload }).ok).toBe(true);
    expect(parseFromWorker({ type: 'signal', payload }).ok).toBe(true);
  });
});
