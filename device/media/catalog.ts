// Reads pipeline templates from pipelines/ and checks that GStreamer has every element they use.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { VideoCodec } from './bitstream.js';
import {
  type CodecTemplate,
  type LaunchStrings,
  type PipelineSet,
  type PipelineTemplates,
  TemplateError,
  elementFactories,
} from './templates.js';

const run = promisify(execFile);

/** pipelines/ of this checkout or installed package: the first ancestor of this module that has one. */
export function findPipelinesDir(start = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, 'pipelines');
    if (existsSync(join(candidate, 'common.json'))) return candidate;
    if (dirname(dir) === dir) throw new TemplateError(`no pipelines/ directory above ${start}`);
  }
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TemplateError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

const TEMPLATE_KEYS: (keyof PipelineTemplates)[] = [
  'videoSend',
  'blankTile',
  'slate',
  'audioSend',
  'gallery',
  'galleryTile',
  'speakerMix',
  'speakerVoice',
  'videoSource',
  'audioSource',
  'display',
  'speaker',
];

/** Fragments only some settings use (echo cancellation, lip-sync delay, the simulated room). */
const OPTIONAL_TEMPLATE_KEYS: (keyof PipelineTemplates)[] = [
  'echoCancelMic',
  'echoProbe',
  'speakerDelay',
  'echoLoopOut',
  'echoLoopIn',
];

export function listProfiles(dir = findPipelinesDir()): string[] {
  return ['test', 'demo', 'headless', 'v4l2', 'pulse'].filter((p) => existsSync(join(dir, `${p}.json`)));
}

/** common.json, overridden by <profile>.json, plus codecs.json. */
export function loadPipelineSet(profile: string, dir = findPipelinesDir()): PipelineSet {
  if (!/^[a-z0-9-]+$/.test(profile)) throw new TemplateError(`bad profile name ${JSON.stringify(profile)}`);
  const file = resolve(dir, `${profile}.json`);
  if (!existsSync(file)) throw new TemplateError(`unknown pipeline profile "${profile}" (no ${file})`);
  const merged = { ...readJson(join(dir, 'common.json')), ...readJson(file) };
  for (const key of TEMPLATE_KEYS) {
    if (typeof merged[key] !== 'string')
      throw new TemplateError(`pipelines/${profile}: missing template "${key}"`);
  }
  for (const key of OPTIONAL_TEMPLATE_KEYS) {
    if (merged[key] !== undefined && typeof merged[key] !== 'string')
      throw new TemplateError(`pipelines/${profile}: template "${key}" is not a string`);
  }
  const echoCancel = merged.echoCancel ?? false;
  if (typeof echoCancel !== 'boolean')
    throw new TemplateError(`pipelines/${profile}: "echoCancel" must be true or false`);
  const codecs = readJson(join(dir, 'codecs.json'));
  for (const codec of ['h264', 'vp8'] as VideoCodec[]) {
    const c = codecs[codec] as Partial<CodecTemplate> | undefined;
    if (!c || typeof c.encoder !== 'string' || typeof c.decoder !== 'string' || typeof c.caps !== 'string') {
      throw new TemplateError(`pipelines/codecs.json: incomplete entry "${codec}"`);
    }
  }
  return {
    profile,
    echoCancel,
    templates: merged as unknown as PipelineTemplates,
    codecs: codecs as unknown as Record<VideoCodec, CodecTemplate>,
  };
}

const known = new Map<string, boolean>();

/** Element factories that gst-inspect-1.0 does not know, per pipeline. */
export async function missingElements(
  launch: LaunchStrings,
): Promise<{ pipeline: string; element: string }[]> {
  const missing: { pipeline: string; element: string }[] = [];
  for (const [pipeline, text] of Object.entries(launch)) {
    if (typeof text !== 'string') continue; // gallery: absent in wall mode
    for (const element of elementFactories(text)) {
      let ok = known.get(element);
      if (ok === undefined) {
        ok = await run('gst-inspect-1.0', ['--exists', element]).then(
          () => true,
          () => false,
        );
        known.set(element, ok);
      }
      if (!ok) missing.push({ pipeline, element });
    }
  }
  return missing;
}
