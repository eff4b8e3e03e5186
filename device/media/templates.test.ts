import { describe, expect, it } from 'vitest';
import { listProfiles, loadPipelineSet, missingElements } from './catalog.js';
import { LivePipeline, PipelineError } from './gst.js';
import {
  DEFAULT_SETTINGS,
  TemplateError,
  buildLaunchStrings,
  elementFactories,
  elementInParseError,
  galleryLayout,
  renderTemplate,
} from './templates.js';

describe('pipeline templates', () => {
  it('every profile renders for both codecs and every element exists in this GStreamer (test/headless)', async () => {
    expect(listProfiles()).toEqual(expect.arrayContaining(['test', 'headless', 'v4l2', 'pulse']));
    for (const profile of ['test', 'headless']) {
      for (const codec of ['h264', 'vp8'] as const) {
        const launch = buildLaunchStrings(loadPipelineSet(profile), { ...DEFAULT_SETTINGS, codec, tiles: 4 });
        expect(await missingElements(launch)).toEqual([]);
      }
      // Everything audio on: echo cancellation, lip-sync delay, the simulated room, the wall.
      const all = buildLaunchStrings(loadPipelineSet(profile), {
        ...DEFAULT_SETTINGS,
        tiles: 4,
        wall: true,
        echoCancel: true,
        echoLoopDelayMs: 60,
        echoLoopGainDb: -6,
        audioDelayMs: 80,
        patternSpeed: 2,
      });
      expect(await missingElements(all)).toEqual([]);
    }
    const v4l2 = buildLaunchStrings(loadPipelineSet('v4l2'), {
      ...DEFAULT_SETTINGS,
      cameraDevice: '/dev/video0',
      micDevice: 'hw:1,0',
      speakerDevice: 'hw:1,0',
    });
    expect(v4l2.videoSend).toContain('v4l2src device="/dev/video0"');
    expect(v4l2.audioSend).toContain('alsasrc device="hw:1,0"');
  });

  it('names the placeholder a hardware profile lacks a value for', () => {
    expect(() => buildLaunchStrings(loadPipelineSet('v4l2'), DEFAULT_SETTINGS)).toThrow(/\{cameraDevice\}/);
  });

  it('refuses setting values that could break out of the launch syntax', () => {
    expect(() =>
      buildLaunchStrings(loadPipelineSet('v4l2'), {
        ...DEFAULT_SETTINGS,
        cameraDevice: '/dev/video0" ! filesink location="/etc/x',
        micDevice: 'a',
        speakerDevice: 'b',
      }),
    ).toThrow(TemplateError);
    expect(() => renderTemplate('x {a}', {}, 'here')).toThrow(/here: no value for placeholder \{a\}/);
  });

  it('lists element factories, not caps, properties or pads', () => {
    expect(
      elementFactories(
        'videotestsrc is-live=true ! video/x-raw,width=2 ! textoverlay text="a b" ! mix.sink_1 appsrc name=x',
      ),
    ).toEqual(['videotestsrc', 'textoverlay', 'appsrc']);
  });

  it('reports a missing element by name, before and when a pipeline is built', async () => {
    const missing = await missingElements({
      videoSend: 'videotestsrc ! nosuchelement42 ! fakesink',
      blankTile: '',
      slate: '',
      audioSend: '',
      gallery: '',
      speakerMix: '',
    });
    expect(missing).toEqual([{ pipeline: 'videoSend', element: 'nosuchelement42' }]);
    let caught: unknown;
    try {
      new LivePipeline('videoSend', 'videotestsrc ! nosuchelement42 ! fakesink');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PipelineError);
    expect((caught as PipelineError).element).toBe('nosuchelement42');
    expect(elementInParseError('no element "v4l2src"')).toBe('v4l2src');
  });

  it('lays out a 3×3 gallery of even-sized tiles inside 1080p', () => {
    const tiles = galleryLayout(9, 1920, 1080);
    expect(tiles.map((t) => [t.x, t.y])).toEqual([
      [0, 0],
      [640, 0],
      [1280, 0],
      [0, 360],
      [640, 360],
      [1280, 360],
      [0, 720],
      [640, 720],
      [1280, 720],
    ]);
    expect(tiles.every((t) => t.width === 640 && t.height === 360 && t.x + t.width <= 1920)).toBe(true);
  });

  it('echo cancellation: webrtcdsp on the microphone, its probe (same name) on the speaker path; profile default', () => {
    const on = buildLaunchStrings(loadPipelineSet('test'), { ...DEFAULT_SETTINGS, echoCancel: true });
    const dsp = /webrtcdsp name=aec probe=(\S+) echo-cancel=true noise-suppression=true/.exec(on.audioSend);
    expect(dsp).not.toBeNull();
    expect(on.speakerMix).toContain(`webrtcechoprobe name=${dsp?.[1]} `);
    // 10 ms frames of S16LE at a rate webrtcdsp takes, on both sides.
    expect(on.audioSend).toMatch(/format=S16LE,layout=interleaved,rate=48000,channels=1 ! webrtcdsp /);
    expect(on.speakerMix).toMatch(/format=S16LE,layout=interleaved,rate=48000,channels=1 ! webrtcechoprobe /);
    // The probe sees exactly what the speaker plays: nothing between it and the speaker but the sink.
    expect(on.speakerMix).toMatch(
      /webrtcechoprobe name=\S+ ! audioconvert ! audio\/x-raw,format=S16LE,rate=48000,channels=1 ! appsink name=speaker /,
    );
    // Profile defaults: off for test/headless, on for v4l2/pulse; the setting wins.
    const devices = { cameraDevice: '/dev/video0', micDevice: 'hw:1,0', speakerDevice: 'hw:1,0' };
    for (const [profile, expected] of [
      ['test', false],
      ['headless', false],
      ['v4l2', true],
      ['pulse', true],
    ] as const) {
      const l = buildLaunchStrings(loadPipelineSet(profile), { ...DEFAULT_SETTINGS, ...devices });
      expect(l.audioSend.includes('webrtcdsp'), profile).toBe(expected);
      expect(l.speakerMix.includes('webrtcechoprobe'), profile).toBe(expected);
    }
    // The audio pipelines with echo cancellation, delay and the simulated room parse and link (not
    // played here; test/media-echo.test.ts plays them). ALSA/Pulse elements may be absent on CI.
    for (const profile of ['test', 'headless']) {
      const l = buildLaunchStrings(loadPipelineSet(profile), {
        ...DEFAULT_SETTINGS,
        echoCancel: true,
        audioDelayMs: 40,
        echoLoopDelayMs: 60,
        echoLoopGainDb: -6,
      });
      expect(() => new LivePipeline('audioSend', l.audioSend)).not.toThrow();
      expect(() => new LivePipeline('speakerMix', l.speakerMix)).not.toThrow();
    }
    const off = buildLaunchStrings(loadPipelineSet('v4l2'), {
      ...DEFAULT_SETTINGS,
      ...devices,
      echoCancel: false,
    });
    expect(off.audioSend).not.toContain('webrtcdsp');
    expect(off.speakerMix).not.toContain('webrtcechoprobe');
    // Another speaker pipeline gets another probe name: a cached older one is never picked.
    const other = buildLaunchStrings(loadPipelineSet('test'), {
      ...DEFAULT_SETTINGS,
      echoCancel: true,
      tiles: 4,
    });
    expect(/probe=(\S+)/.exec(other.audioSend)?.[1]).not.toBe(dsp?.[1]);
  });

  it('wall mode renders no gallery; every speaker voice has its leaky 8 kHz level tap', async () => {
    const wall = buildLaunchStrings(loadPipelineSet('test'), { ...DEFAULT_SETTINGS, tiles: 9, wall: true });
    expect(wall.gallery).toBeUndefined();
    expect(Object.values(wall).join(' ')).not.toMatch(/compositor|vin0/);
    expect(await missingElements(wall)).toEqual([]);
    const gallery = buildLaunchStrings(loadPipelineSet('test'), {
      ...DEFAULT_SETTINGS,
      tiles: 9,
      wall: false,
    });
    expect(gallery.gallery).toContain('appsrc name=vin8 ');
    for (const l of [wall, gallery]) {
      for (let slot = 0; slot < 9; slot++) {
        expect(l.speakerMix).toContain(
          `tee name=avoice${slot} ! queue ! amix.sink_${slot + 1} avoice${slot}. ! queue max-size-buffers=5 max-size-time=0 max-size-bytes=0 leaky=downstream ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! appsink name=alevel${slot} max-buffers=5 drop=true sync=false`,
        );
      }
      expect(l.speakerMix).not.toContain('alevel9');
    }
  });

  it('patternSpeed moves the test pattern, audioDelayMs delays the speaker, the simulated room loops back', () => {
    const still = buildLaunchStrings(loadPipelineSet('headless'), DEFAULT_SETTINGS);
    expect(still.videoSend).toContain('horizontal-speed=0 ');
    expect(still.speakerMix).not.toContain('audiodelay');
    const l = buildLaunchStrings(loadPipelineSet('test'), {
      ...DEFAULT_SETTINGS,
      patternSpeed: 4,
      audioDelayMs: 120,
      echoCancel: true,
      echoLoopDelayMs: 60,
      echoLoopGainDb: -6,
    });
    expect(l.videoSend).toContain('videotestsrc is-live=true pattern=smpte horizontal-speed=4 ');
    expect(l.slate).not.toContain('horizontal-speed');
    // The delay queue is bounded just above the delay and leaky: a stall never leaves a backlog.
    expect(l.speakerMix).toMatch(/max-size-time=160000000 min-threshold-time=120000000 leaky=downstream/);
    // Delay first, then the probe, then the room's tap: the probe and the room hear the delayed audio.
    const order = [
      'volume name=speakervolume',
      'min-threshold-time=120000000',
      'webrtcechoprobe',
      'tee name=roomtee',
    ];
    const at = order.map((part) => l.speakerMix.indexOf(part));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const channel = /interaudiosink channel=(\S+)/.exec(l.speakerMix)?.[1];
    expect(l.speakerMix).toContain('volume volume=0.501187 ');
    expect(l.speakerMix).toContain('ts-offset=60000000');
    expect(l.audioSend).toContain(`interaudiosrc channel=${channel} `);
    // The room is mixed in before the echo canceller, as a real room's sound reaches the microphone.
    expect(l.audioSend.indexOf('audiomixer name=roommix')).toBeLessThan(l.audioSend.indexOf('webrtcdsp'));
    // No loop without both settings, nor on a profile that has no room to simulate.
    expect(
      buildLaunchStrings(loadPipelineSet('test'), { ...DEFAULT_SETTINGS, echoLoopDelayMs: 60 }).audioSend,
    ).not.toContain('interaudiosrc');
    expect(
      buildLaunchStrings(loadPipelineSet('headless'), {
        ...DEFAULT_SETTINGS,
        echoLoopDelayMs: 60,
        echoLoopGainDb: -6,
      }).speakerMix,
    ).not.toContain('interaudiosink');
  });
});
