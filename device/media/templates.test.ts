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
});
