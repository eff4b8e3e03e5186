// npm run bench:sframe — SFrame encrypt+decrypt per frame against the limit of this machine.
// Three contenders do the same work per frame (one AES-256-GCM encryption and one decryption, a fresh
// nonce each): our SFrameSender/SFrameReceiver (suite 0x0005), raw node:crypto AES-256-GCM with a
// KeyObject (OpenSSL, AES-NI: the limit), and @noble/ciphers gcm (pure JS). Rounds interleave the
// contenders (rotating order) after a warm-up; each figure is the median over rounds. The ratio is the
// median of per-round ratios (ours and raw measured back to back), which cancels most of the drift
// of a machine shared with other work.
// Last line: {"bench":"sframe","ratio_vs_raw":{...},"us_per_frame":{...}} with ratio = our throughput
// / raw throughput (= raw µs / our µs).

import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';

const SIZES = [120, 1200, 12_000, 100_000] as const;
const ROUNDS = Number(process.env.SFRAME_BENCH_ROUNDS ?? 301);
/** Wall time each contender gets per round (noble included: it just does fewer frames, at least one). */
const BATCH_MS = Number(process.env.SFRAME_BENCH_BATCH_MS ?? 1);
const WARM_UP_MS = 150;

type FrameWork = () => void;

interface Contender {
  name: string;
  /** Builds a closure that encrypts and decrypts one frame of `payload` per call. */
  make(payload: Uint8Array): FrameWork;
}

function ourSFrame(payload: Uint8Array): FrameWork {
  const baseKey = randomBytes(32);
  const sender = new SFrameSender({ kid: 3n, baseKey });
  const receiver = new SFrameReceiver();
  receiver.setKey(3n, baseKey);
  return () => {
    const frame = sender.encrypt(payload);
    const out = receiver.decrypt(frame);
    if (out.plaintext.length !== payload.length) throw new Error('round trip lost bytes');
  };
}

function rawNodeGcm(payload: Uint8Array): FrameWork {
  const key = createSecretKey(randomBytes(32));
  const nonce = Buffer.alloc(12);
  let counter = 0;
  return () => {
    nonce.writeUInt32BE(++counter >>> 0, 8);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const ct = cipher.update(payload);
    cipher.final();
    const tag = cipher.getAuthTag();
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAuthTag(tag);
    const pt = decipher.update(ct);
    decipher.final();
    if (pt.length !== payload.length) throw new Error('round trip lost bytes');
  };
}

function nobleGcm(payload: Uint8Array): FrameWork {
  const key = new Uint8Array(randomBytes(32));
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  let counter = 0;
  return () => {
    view.setUint32(8, ++counter >>> 0);
    const sealed = gcm(key, nonce).encrypt(payload);
    const pt = gcm(key, nonce).decrypt(sealed);
    if (pt.length !== payload.length) throw new Error('round trip lost bytes');
  };
}

const CONTENDERS: Contender[] = [
  { name: 'sframe (ours)', make: ourSFrame },
  { name: 'node:crypto raw', make: rawNodeGcm },
  { name: '@noble/ciphers', make: nobleGcm },
];

const maybeGc = (globalThis as { gc?: () => void }).gc;

/**
 * µs per frame over `frames` calls of `work`, wall time. Batches are short (about a millisecond) so a
 * batch interrupted by the scheduler or another process is an outlier the median drops.
 */
function timeFrames(work: FrameWork, frames: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < frames; i++) work();
  return Number(process.hrtime.bigint() - start) / 1000 / frames;
}

/** Runs `work` for `ms` (JIT warm-up, OpenSSL contexts, caches) and returns its µs per frame. */
function warmUp(work: FrameWork, ms: number): number {
  let frames = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < deadline || frames < 3) {
    work();
    frames++;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1000 / frames;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

const ratioVsRaw: Record<string, number> = {};
const usPerFrame: Record<string, number> = {};

console.log(
  `SFrame encrypt+decrypt per frame, suite 0x0005 AES_256_GCM_SHA512_128 (node ${process.version})`,
);
console.log(`${ROUNDS} interleaved rounds of ~${BATCH_MS} ms per contender after a warm-up; medians.`);
console.log('ratio = median over rounds of (raw µs / our µs), i.e. our throughput relative to raw.');
console.log(
  'Short batches and medians keep out most interference from other load; still expect some noise.\n',
);
console.log(
  `${'frame'.padStart(8)}  ${'contender'.padEnd(16)} ${'µs/frame'.padStart(10)} ${'MB/s'.padStart(9)}`,
);

for (const size of SIZES) {
  const payload = new Uint8Array(randomBytes(size));
  const works = CONTENDERS.map((c) => c.make(payload));
  const warmUs = works.map((work) => warmUp(work, WARM_UP_MS));
  const batchFrames = warmUs.map((us) => Math.max(1, Math.round((BATCH_MS * 1000) / us)));
  maybeGc?.(); // start every size from the same heap
  const samples: number[][] = CONTENDERS.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < works.length; k++) {
      const i = (k + r) % works.length; // rotate who goes first
      samples[i]!.push(timeFrames(works[i]!, batchFrames[i]!));
    }
  }
  const medians = samples.map(median);
  CONTENDERS.forEach((c, i) => {
    const us = medians[i]!;
    console.log(
      `${String(size).padStart(8)}  ${c.name.padEnd(16)} ${us.toFixed(2).padStart(10)} ${(size / us).toFixed(1).padStart(9)}`,
    );
  });
  const ours = medians[0]!;
  const pairedRatios = samples[0]!.map((oursUs, r) => samples[1]![r]! / oursUs);
  ratioVsRaw[size] = round(median(pairedRatios), 3);
  usPerFrame[size] = round(ours, 2);
  console.log(`${''.padStart(8)}  ratio ours/raw throughput ${ratioVsRaw[size]!.toFixed(3)}\n`);
}

console.log(JSON.stringify({ bench: 'sframe', ratio_vs_raw: ratioVsRaw, us_per_frame: usPerFrame }));
