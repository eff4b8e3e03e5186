// Pipeline templates (pipelines/*.json) → GStreamer launch strings. Pure: the files are read by
// catalog.ts; this module fills placeholders, lays out the gallery and lists the element factories a
// launch string needs, so a missing plugin is reported by name before anything starts.
import type { VideoCodec } from './bitstream.js';

export interface PipelineTemplates {
  videoSend: string;
  blankTile: string;
  slate: string;
  audioSend: string;
  gallery: string;
  galleryTile: string;
  speakerMix: string;
  speakerVoice: string;
  videoSource: string;
  audioSource: string;
  display: string;
  speaker: string;
  /** webrtcdsp on the microphone path (echo cancellation on); ends with "! ". */
  echoCancelMic?: string;
  /** webrtcechoprobe on the speaker path (echo cancellation on); ends with "! ". */
  echoProbe?: string;
  /** Lip sync: a queue holding audioDelayMs on the speaker path; ends with "! ". */
  speakerDelay?: string;
  /** Simulated room (test profile): the branch from the speaker back to the microphone. */
  echoLoopOut?: string;
  /** Simulated room: the microphone source mixed with what echoLoopOut sends ({audioSource} inside). */
  echoLoopIn?: string;
}

export interface CodecTemplate {
  encoder: string;
  caps: string;
  decoder: string;
}

export interface PipelineSet {
  profile: string;
  /** The profile's default for echo cancellation (its `echoCancel` field). */
  echoCancel: boolean;
  templates: PipelineTemplates;
  codecs: Record<VideoCodec, CodecTemplate>;
}

/** Everything a template may refer to. Devices are only needed by hardware profiles. */
export interface MediaSettings {
  profile: string;
  codec: VideoCodec;
  width: number;
  height: number;
  fps: number;
  videoKbps: number;
  audioBps: number;
  /** Frames between forced keyframes (besides keyframes on request). */
  keyframeInterval: number;
  /** Remote participants shown (gallery tiles) and heard (mixer inputs). */
  tiles: number;
  galleryWidth: number;
  galleryHeight: number;
  /** Size of the frames the test profile's display appsink hands to the worker. */
  probeWidth: number;
  probeHeight: number;
  /** Test sources: videotestsrc pattern and audiotestsrc tone. */
  pattern: string;
  toneHz: number;
  cameraDevice?: string;
  micDevice?: string;
  speakerDevice?: string;
  /** Benchmarks: a tiny appsink after each tile's decoder (decoded{slot}) to time decoded frames. */
  latencyProbe?: boolean;
  /** Far video goes to the kiosk page (wall connection): no GStreamer gallery is built. */
  wall?: boolean;
  /** Echo cancellation + noise suppression; absent: the profile's default (`echoCancel` in its file). */
  echoCancel?: boolean;
  /** Simulated room (test profile): speaker → microphone after this delay (ms) … */
  echoLoopDelayMs?: number;
  /** … and gain (dB ≤ 0). Both must be set for the loop to exist. */
  echoLoopGainDb?: number;
  /** Test sources: videotestsrc horizontal-speed (pixels per frame). */
  patternSpeed?: number;
  /** Lip sync: extra delay (ms) on the speaker path. */
  audioDelayMs?: number;
}

export const DEFAULT_SETTINGS: MediaSettings = {
  profile: 'test',
  codec: 'h264',
  width: 1280,
  height: 720,
  fps: 30,
  videoKbps: 1500,
  audioBps: 32000,
  keyframeInterval: 300,
  tiles: 9,
  galleryWidth: 1920,
  galleryHeight: 1080,
  probeWidth: 192,
  probeHeight: 108,
  pattern: 'smpte',
  toneHz: 440,
  patternSpeed: 0,
  audioDelayMs: 0,
};

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9]*)\}/g;

/** Fills {name} placeholders; an unknown name throws, naming the template. */
export function renderTemplate(
  template: string,
  params: Record<string, string | number | boolean | undefined>,
  what: string,
): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const value = params[name];
    if (value === undefined) throw new TemplateError(`${what}: no value for placeholder {${name}}`);
    return String(value);
  });
}

/** Settings end up inside launch strings: refuse anything that could break out of a quoted value. */
function checkSettingValues(settings: object): void {
  for (const [name, value] of Object.entries(settings)) {
    if (typeof value === 'string' && /["\n\r\\!]/.test(value)) {
      throw new TemplateError(`setting ${name} contains a quote, newline, backslash or "!"`);
    }
  }
}

export interface GalleryTile {
  slot: number;
  /** Compositor pad: 0 is the background. */
  pad: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A near-square grid of `tiles` equal tiles, each an even-sized box inside the gallery. */
export function galleryLayout(tiles: number, width: number, height: number): GalleryTile[] {
  const cols = Math.max(1, Math.ceil(Math.sqrt(tiles)));
  const rows = Math.max(1, Math.ceil(tiles / cols));
  const w = Math.floor(width / cols / 2) * 2;
  const h = Math.floor(height / rows / 2) * 2;
  return Array.from({ length: tiles }, (_, slot) => ({
    slot,
    pad: slot + 1,
    x: (slot % cols) * w,
    y: Math.floor(slot / cols) * h,
    width: w,
    height: h,
  }));
}

export interface LaunchStrings {
  videoSend: string;
  /** One black keyframe of the video codec (run once), to clear a departed participant's tile. */
  blankTile: string;
  slate: string;
  audioSend: string;
  /** Absent when settings.wall is true: far video goes to the kiosk page, not to a GStreamer gallery. */
  gallery?: string;
  speakerMix: string;
}

/** FNV-1a, 32 bit, hex: a short stable tag of a string (pure, no crypto needed). */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Whether echo cancellation is on: the setting, else the profile's default. */
export function echoCancelEnabled(set: PipelineSet, settings: MediaSettings): boolean {
  return settings.echoCancel ?? set.echoCancel;
}

/** The simulated room's loop exists: test profiles that define it, with both delay and gain set. */
export function echoLoopEnabled(set: PipelineSet, settings: MediaSettings): boolean {
  return (
    settings.echoLoopDelayMs !== undefined &&
    settings.echoLoopGainDb !== undefined &&
    set.templates.echoLoopOut !== undefined &&
    set.templates.echoLoopIn !== undefined
  );
}

export function buildLaunchStrings(
  set: PipelineSet,
  settings: MediaSettings,
  slateText = 'Camera unavailable',
): LaunchStrings {
  checkSettingValues(settings);
  checkSettingValues({ slateText });
  const codec = set.codecs[settings.codec];
  if (!codec) throw new TemplateError(`no codec template for ${settings.codec}`);
  const base: Record<string, string | number | boolean | undefined> = {
    ...settings,
    videoBps: settings.videoKbps * 1000,
    slateText,
  };
  const t = set.templates;
  const where = (name: string) => `pipelines/${set.profile}: ${name}`;
  const fragment = (name: keyof PipelineTemplates): string => {
    const text = t[name];
    if (text === undefined) throw new TemplateError(`${where(name)}: missing template "${name}"`);
    return text;
  };
  const audioDelayMs = settings.audioDelayMs ?? 0;
  const loop = echoLoopEnabled(set, settings);
  const echoCancel = echoCancelEnabled(set, settings);
  Object.assign(base, {
    patternSpeed: settings.patternSpeed ?? 0,
    audioDelayNs: audioDelayMs * 1_000_000,
    // Bounded and leaky: after a stall the queue drops old audio instead of keeping the backlog
    // (a min-threshold queue with a wide maximum ratcheted to D + 1 s under load, bench:wall).
    audioDelayMaxNs: (audioDelayMs + 40) * 1_000_000,
    echoLoopDelayNs: (settings.echoLoopDelayMs ?? 0) * 1_000_000,
    echoLoopGain: (10 ** ((settings.echoLoopGainDb ?? 0) / 20)).toFixed(6),
    // interaudio channels are per process; the pid keeps two engines' rooms apart in any case.
    echoChannel: `sealroom-echo-${process.pid}`,
  });
  const videoSource = renderTemplate(t.videoSource, base, where('videoSource'));
  const plainAudioSource = renderTemplate(t.audioSource, base, where('audioSource'));
  const audioSource = loop
    ? renderTemplate(fragment('echoLoopIn'), { ...base, audioSource: plainAudioSource }, where('echoLoopIn'))
    : plainAudioSource;
  const display = renderTemplate(t.display, base, where('display'));
  const speaker = renderTemplate(t.speaker, base, where('speaker'));
  const videoEncoder = renderTemplate(codec.encoder, base, `pipelines/codecs ${settings.codec}.encoder`);
  const videoDecoder = renderTemplate(codec.decoder, base, `pipelines/codecs ${settings.codec}.decoder`);
  const layout = galleryLayout(settings.tiles, settings.galleryWidth, settings.galleryHeight);
  const renderTiles = () =>
    layout
      .map((tile) =>
        renderTemplate(
          t.galleryTile,
          {
            ...base,
            ...tile,
            tileWidth: tile.width,
            tileHeight: tile.height,
            videoCaps: codec.caps,
            videoDecoder,
            decodeTap: settings.latencyProbe ? `tee name=dtap${tile.slot} ! ` : '',
            decodeBranch: settings.latencyProbe
              ? ` dtap${tile.slot}. ! queue max-size-buffers=30 max-size-time=0 max-size-bytes=0 ! videoscale method=nearest-neighbour ! video/x-raw,width=16,height=16 ! appsink name=decoded${tile.slot} max-buffers=30 drop=false sync=false async=false`
              : '',
          },
          where('galleryTile'),
        ),
      )
      .join(' ');
  const tilePositions = layout
    .map((tile) => `sink_${tile.pad}::xpos=${tile.x} sink_${tile.pad}::ypos=${tile.y}`)
    .join(' ');
  const voices = layout
    .map((tile) => renderTemplate(t.speakerVoice, { ...base, ...tile }, where('speakerVoice')))
    .join(' ');
  // Speaker path, in order: lip-sync delay, echo probe (sees exactly what the speaker plays), the
  // simulated room's tap (what the room hears is what the speaker plays).
  const speakerPath = (probeName: string) =>
    [
      audioDelayMs > 0 ? renderTemplate(fragment('speakerDelay'), base, where('speakerDelay')) : '',
      echoCancel ? renderTemplate(fragment('echoProbe'), { ...base, probeName }, where('echoProbe')) : '',
      loop ? 'tee name=roomtee ! ' : '',
    ].join('');
  const echoLoopBranch = loop
    ? ` roomtee. ! ${renderTemplate(fragment('echoLoopOut'), base, where('echoLoopOut'))}`
    : '';
  const params = {
    ...base,
    videoSource,
    audioSource,
    display,
    speaker,
    videoEncoder,
    tilePositions,
    voices,
    echoLoopBranch,
  };
  // webrtcdsp finds its probe by name among every probe this process ever made (the binding never
  // frees a pipeline): the name is unique per speaker pipeline launch string, so a cached older
  // speaker pipeline can never be picked.
  const speakerMixWith = (probeName: string) =>
    renderTemplate(t.speakerMix, { ...params, speakerPath: speakerPath(probeName) }, where('speakerMix'));
  const probeName = `aecprobe_${shortHash(speakerMixWith('aecprobe'))}`;
  const speakerMix = speakerMixWith(probeName);
  const micProcessing = echoCancel
    ? renderTemplate(fragment('echoCancelMic'), { ...base, probeName }, where('echoCancelMic'))
    : '';
  const out: LaunchStrings = {
    videoSend: renderTemplate(t.videoSend, params, where('videoSend')),
    blankTile: renderTemplate(t.blankTile, params, where('blankTile')),
    slate: renderTemplate(t.slate, params, where('slate')),
    audioSend: renderTemplate(t.audioSend, { ...params, micProcessing }, where('audioSend')),
    speakerMix,
  };
  if (!settings.wall)
    out.gallery = renderTemplate(t.gallery, { ...params, tiles: renderTiles() }, where('gallery'));
  return out;
}

/** Splits a launch string into tokens, keeping quoted values inside their token. */
function tokens(launch: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of launch) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && /\s/.test(ch)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/** Element factory names used by a launch string (bare words: not properties, caps, pads or links). */
export function elementFactories(launch: string): string[] {
  const names = tokens(launch).filter((tok) => /^[a-z0-9][a-z0-9_-]*$/i.test(tok));
  return [...new Set(names)];
}

/** The element named by a gst_parse_launch error such as `no element "v4l2src"`. */
export function elementInParseError(message: string): string | undefined {
  return /no element "([^"]+)"/.exec(message)?.[1];
}
