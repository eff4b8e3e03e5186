// Echo cancellation with real workers: room A sends a 440 Hz tone; room B's simulated room (test
// profile echo loop: B's speaker output comes back into B's microphone after a delay and a gain, as a
// loudspeaker heard by the room's microphone) sends A's own tone back to A. Measured at A's speaker:
// how much of A's 440 Hz returns with B's echo cancellation off and on, and that B's own tone (the
// near-end talker stand-in) still reaches A while A talks (double talk).
import { afterAll, describe, expect, it } from 'vitest';
import type { SettingsPatch } from '../device/media/ipc.js';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import { link, meetingKeys, newMeetingKey, speakerPcm, waitFor, worker } from './media-harness.js';

const running: MediaSupervisor[] = [];
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop()));
});

const FAR_TONE = 440; // A talks
const NEAR_TONE = 1000; // B's own talker
/** The simulated room at B: 60 ms from speaker to microphone, −6 dB. */
const ROOM: SettingsPatch = { echoLoopDelayMs: 60, echoLoopGainDb: -6 };

/** Goertzel amplitude of `freq` in mono S16LE at 48 kHz, as a fraction of full scale (a full-scale sine → 1). */
function toneAmplitude(pcm: Buffer, freq: number): number {
  const n = Math.floor(pcm.length / 2);
  const w = (2 * Math.PI * freq) / 48000;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = pcm.readInt16LE(i * 2) / 32768 + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return n > 0 ? (2 * Math.sqrt(Math.max(power, 0))) / n : 0;
}

const db = (ratio: number) => 20 * Math.log10(Math.max(ratio, 1e-9));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Levels {
  /** A's own tone coming back, dBFS at A's speaker. */
  echoDb: number;
  /** B's own tone at A's speaker, dBFS. */
  nearDb: number;
}

/** How far B's own voice stands above A's returned echo at A's speaker, dB. */
const separation = (l: Levels) => l.nearDb - l.echoDb;

/**
 * Levels at A's speaker over `windows` one-second snapshots, 1.1 s apart (the probe keeps the last
 * second), median per tone; waits `settleMs` first (pipelines rebuilt, the canceller converging).
 */
async function measureAtA(a: MediaSupervisor, settleMs: number, windows = 5): Promise<Levels> {
  await sleep(settleMs);
  const echo: number[] = [];
  const near: number[] = [];
  for (let i = 0; i < windows; i++) {
    const pcm = await waitFor('a full second at A’s speaker', async () => {
      const p = await speakerPcm(a);
      return p && p.length >= 96000 ? p : undefined;
    });
    echo.push(db(toneAmplitude(pcm, FAR_TONE)));
    near.push(db(toneAmplitude(pcm, NEAR_TONE)));
    await sleep(1100);
  }
  return { echoDb: median(echo), nearDb: median(near) };
}

/**
 * Levels at A once B's canceller has converged: measured again (up to four times) while A's echo
 * still falls by more than 1 dB against B's own voice, since an adaptive filter converges slower on a
 * busy machine (5 s sufficed alone; under a second test suite's load the first window was still 11 dB
 * short). Tracked on the separation rather than the echo alone: the noise suppressor takes its
 * ~13 dB off both tones within a second, so the echo level settles long before the canceller's own
 * part does (a clean-clone run under load stopped at a 3.7 dB separation gain).
 */
async function convergedAtA(a: MediaSupervisor): Promise<Levels> {
  let levels = await measureAtA(a, 5000);
  for (let i = 0; i < 4; i++) {
    const next = await measureAtA(a, 0, 3);
    const improved = separation(next) - separation(levels) > 1 || levels.echoDb - next.echoDb > 1;
    levels = next;
    if (!improved) break;
  }
  return levels;
}

const MIN_ERLE_DB = 15;
const MIN_SEPARATION_GAIN_DB = 4;

/**
 * Echo cancellation on at B, levels at A once converged. On a starved box the simulated room's
 * real-time echo path (interaudio, see pipelines/test.json) sometimes comes up unsteady after a
 * rebuild and the canceller then converges short (a clean-clone run: 3.7 dB separation gain, idle
 * 17–20 dB); such a phase is rebuilt (off, on) at most twice more. A canceller that does not work
 * misses every time: its gain stays near 0 dB.
 */
async function switchOn(a: MediaSupervisor, b: MediaSupervisor, off: Levels): Promise<Levels> {
  let on: Levels | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) {
      await b.updateSettings({ echoCancel: false });
      await sleep(1000);
    }
    await b.updateSettings({ echoCancel: true });
    on = await convergedAtA(a);
    const ok =
      off.echoDb - on.echoDb >= MIN_ERLE_DB && separation(on) - separation(off) >= MIN_SEPARATION_GAIN_DB;
    if (ok) break;
    console.log(
      `echo cancellation attempt ${attempt} converged short: ${JSON.stringify(on)} (off ${JSON.stringify(off)})`,
    );
  }
  return on as Levels;
}

describe('echo cancellation (webrtcdsp) in a simulated room', () => {
  it('cuts A’s echo returned by B’s room while B’s own voice still reaches A', async () => {
    const mk = newMeetingKey();
    const a = worker({ codec: 'h264', pattern: 'red', toneHz: FAR_TONE, echoCancel: false });
    const b = worker({ codec: 'h264', pattern: 'blue', toneHz: NEAR_TONE, echoCancel: false, ...ROOM });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
    b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
    link(a, b);
    await waitFor(
      'B’s tone and A’s echo at A',
      async () => {
        const pcm = await speakerPcm(a);
        return pcm && pcm.length >= 96000 && toneAmplitude(pcm, NEAR_TONE) > 0.05 ? pcm : undefined;
      },
      30_000,
    );

    // Off, on, off, on on the same connection: each switch rebuilds B's audio pipelines.
    const off1 = await measureAtA(a, 3000);
    const on1 = await switchOn(a, b, off1);
    await b.updateSettings({ echoCancel: false });
    const off2 = await measureAtA(a, 3000);
    const on2 = await switchOn(a, b, off2);
    const offs = [off1, off2];
    const ons = [on1, on2];
    // Echo return loss enhancement: how much less of A's own voice comes back (worst pair).
    const erle = Math.min(...offs.map((o) => o.echoDb)) - Math.max(...ons.map((o) => o.echoDb));
    // The same relative to B's own voice (separation): what the noise suppressor does to steady tones cancels out.
    const gain = Math.min(...ons.map(separation)) - Math.max(...offs.map(separation));
    const round = (l: Levels) => ({ echoDb: +l.echoDb.toFixed(1), nearDb: +l.nearDb.toFixed(1) });
    console.log(
      `echo ${JSON.stringify({ off1: round(off1), on1: round(on1), off2: round(off2), on2: round(on2), erleDb: +erle.toFixed(1), separationGainDb: +gain.toFixed(1) })}`,
    );

    // Without cancellation the simulated room returns A's tone: −6 dB loop on B's speaker level, about
    // 10 dB under B’s own tone (measured −22.8…−25.8 vs −12.4 dBFS).
    for (const off of offs) {
      expect(off.echoDb).toBeGreaterThan(-30);
      expect(separation(off)).toBeLessThan(15);
    }
    // With it A hears far less of itself. Measured (2-core box shared with other work): ERLE 29.8 dB
    // idle, 19.1–24 dB at load average 11–22; separation gain (the part that is not the noise
    // suppressor) 17–20 dB idle, 6.0–10.9 dB under that load.
    expect(erle).toBeGreaterThanOrEqual(MIN_ERLE_DB);
    expect(gain).toBeGreaterThanOrEqual(MIN_SEPARATION_GAIN_DB);
    // Double talk: B's own tone still reaches A, well above what is left of the echo (the noise
    // suppressor takes ~13 dB off a steady tone — speech is not steady; measured −25.4 dBFS and
    // 19–30 dB above the echo).
    for (const on of ons) {
      expect(on.nearDb).toBeGreaterThan(-32);
      expect(separation(on)).toBeGreaterThan(15);
    }
    await Promise.all([a.stop(), b.stop()]);
  }, 420_000);
});
