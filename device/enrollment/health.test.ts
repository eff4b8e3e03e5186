import { describe, expect, it } from 'vitest';
import { initialState } from '../daemon/state.js';
import {
  collectHealth,
  edidMonitorName,
  type PeripheralKind,
  type PeripheralScan,
  peripheralReport,
  selfTestReport,
} from './health.js';

const scan = (over: Partial<PeripheralScan> = {}): PeripheralScan => ({
  camera: [],
  microphone: [],
  speaker: [],
  display: [],
  hid: [],
  ...over,
});

describe('peripherals', () => {
  it('camera and microphone follow the media worker; the rest is present when found, missing once seen', () => {
    const state = initialState('1');
    state.media.camera = 'missing';
    const seen = new Set<PeripheralKind>();
    const first = peripheralReport(
      scan({
        camera: ['Logitech BRIO'],
        microphone: ['Jabra SPEAK 510'],
        speaker: ['Jabra SPEAK 510'],
        display: ['DELL U2720Q'],
        hid: ['Jabra SPEAK 510 USB'],
      }),
      state,
      seen,
    );
    expect(first).toEqual({
      present: ['microphone', 'speaker', 'display', 'hid'],
      missing: ['camera'],
      names: {
        microphone: 'Jabra SPEAK 510',
        speaker: 'Jabra SPEAK 510',
        display: 'DELL U2720Q',
        hid: 'Jabra SPEAK 510 USB',
      },
    });
    // The display is unplugged: missing (it was there); the never-seen kinds say nothing.
    const later = peripheralReport(scan({ speaker: ['Jabra SPEAK 510'], hid: ['Jabra'] }), state, seen);
    expect(later.missing).toEqual(['camera', 'display']);
    const fresh = peripheralReport(scan(), initialState('1'), new Set());
    expect(fresh).toEqual({ present: ['camera', 'microphone'], missing: [], names: {} });
    // A timed-out scan does not turn seen devices into missing ones.
    expect(peripheralReport(undefined, initialState('1'), seen).missing).toEqual([]);
  });

  it('sanitises names: control characters and length', () => {
    const r = peripheralReport(
      scan({ display: [`Evil\u001b[2J\u0007${'x'.repeat(500)}`] }),
      undefined,
      new Set(),
    );
    expect(r.names.display).toMatch(/^Evil \[2J x+$/);
    expect(r.names.display!.length).toBeLessThanOrEqual(200);
    expect(r.missing).toEqual(['camera']);
  });

  it('reads the monitor name from an EDID', () => {
    const edid = new Uint8Array(128);
    edid.set([0, 0, 0, 0xfc, 0], 72);
    edid.set(Buffer.from('DELL U2720Q\n  '), 77);
    expect(edidMonitorName(edid)).toBe('DELL U2720Q');
    expect(edidMonitorName(new Uint8Array(128))).toBeUndefined();
    expect(edidMonitorName(new Uint8Array(10))).toBeUndefined();
  });
});

describe('self-test', () => {
  it('is reported from the state the daemon set at boot', async () => {
    const state = initialState('1');
    expect(selfTestReport(state)).toBeUndefined();
    state.selfTest = {
      ok: false,
      failed: ['media worker: gst-launch not found\n'],
      at: '2026-01-01T00:00:00.000Z',
    };
    expect(selfTestReport(state)).toEqual({
      ok: false,
      failed: ['media worker: gst-launch not found'],
      at: '2026-01-01T00:00:00.000Z',
    });
    const health = await collectHealth(state, {
      scan: async () => scan({ display: ['Panel'] }),
      seen: new Set(),
    });
    expect(health).toMatchObject({
      selfTest: { ok: false },
      peripherals: { present: ['camera', 'microphone', 'display'], missing: [], names: { display: 'Panel' } },
      meetingState: 'starting',
    });
  });
});
