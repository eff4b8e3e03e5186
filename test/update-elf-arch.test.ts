// The architecture check of native addons (src/update/elf-arch.ts) and its use by buildBundle: read
// from real binaries (node-hid ships prebuilds for every platform, the running Node is an ELF for
// this machine) plus hand-made heads for the edge cases.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BundleError, buildBundle } from '../src/update/bundle.js';
import {
  addonArchProblem,
  addonArchProblems,
  BINARY_HEAD_BYTES,
  describeBinary,
  EM,
  findAddons,
  readHead,
} from '../src/update/elf-arch.js';

const prebuilds = path.resolve('node_modules/node-hid/prebuilds');
const prebuild = (dir: string): string => path.join(prebuilds, dir, 'node-napi-v4.node');
const head = (file: string): Buffer => readFileSync(file).subarray(0, BINARY_HEAD_BYTES);

/** A minimal ELF identification + e_type + e_machine. */
function elfHead(o: { bits: 32 | 64; le: boolean; machine: number }): Buffer {
  const b = Buffer.alloc(BINARY_HEAD_BYTES);
  b.set([0x7f, 0x45, 0x4c, 0x46, o.bits === 64 ? 2 : 1, o.le ? 1 : 2, 1]);
  if (o.le) b.writeUInt16LE(o.machine, 18);
  else b.writeUInt16BE(o.machine, 18);
  return b;
}

const work = mkdtempSync(path.join(tmpdir(), 'sealroom-elf-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('describeBinary / addonArchProblem on real binaries', () => {
  it('reads the machine of node-hid prebuilds for each platform', () => {
    expect(describeBinary(head(prebuild('HID_hidraw-linux-arm64')))).toEqual({
      format: 'elf',
      machine: EM.AARCH64,
      arch: 'arm64',
      bits: 64,
      littleEndian: true,
    });
    expect(describeBinary(head(prebuild('HID_hidraw-linux-x64')))).toMatchObject({
      machine: EM.X86_64,
      arch: 'x64',
    });
    expect(describeBinary(head(prebuild('HID-linux-arm')))).toMatchObject({ arch: 'arm', bits: 32 });
    expect(describeBinary(head(prebuild('HID-darwin-arm64')))).toEqual({ format: 'mach-o' });
    expect(describeBinary(head(prebuild('HID-win32-x64')))).toEqual({ format: 'pe' });
  });

  it('accepts an addon only for its own arch', () => {
    expect(addonArchProblem(head(prebuild('HID_hidraw-linux-arm64')), 'arm64')).toBeUndefined();
    expect(addonArchProblem(head(prebuild('HID_hidraw-linux-x64')), 'x64')).toBeUndefined();
    expect(addonArchProblem(head(prebuild('HID_hidraw-linux-x64')), 'arm64')).toMatch(/built for x64/);
    expect(addonArchProblem(head(prebuild('HID_hidraw-linux-arm64')), 'x64')).toMatch(/built for arm64/);
    expect(addonArchProblem(head(prebuild('HID-linux-arm')), 'arm64')).toMatch(/built for arm \(32-bit/);
    expect(addonArchProblem(head(prebuild('HID-darwin-arm64')), 'arm64')).toMatch(/mach-o/);
    expect(addonArchProblem(head(prebuild('HID-win32-arm64')), 'arm64')).toMatch(/\(pe\)/);
  });

  it('the running Node is an ELF for this machine', async () => {
    const info = describeBinary(await readHead(process.execPath));
    expect(info).toMatchObject({ format: 'elf', arch: process.arch, bits: 64, littleEndian: true });
  });
});

describe('describeBinary edge cases', () => {
  it('reads e_machine in the byte order the header says', () => {
    expect(describeBinary(elfHead({ bits: 64, le: false, machine: EM.AARCH64 }))).toMatchObject({
      machine: EM.AARCH64,
      littleEndian: false,
    });
    // Same 16-bit value read the wrong way round would be 0xb700.
    expect(addonArchProblem(elfHead({ bits: 64, le: false, machine: EM.AARCH64 }), 'arm64')).toMatch(
      /64-bit BE/,
    );
    expect(addonArchProblem(elfHead({ bits: 32, le: true, machine: EM.AARCH64 }), 'arm64')).toMatch(/32-bit/);
    expect(describeBinary(elfHead({ bits: 64, le: true, machine: 999 }))).toMatchObject({
      arch: 'e_machine 999',
    });
  });

  it('truncated or bad identification is unknown', () => {
    const full = elfHead({ bits: 64, le: true, machine: EM.AARCH64 });
    expect(describeBinary(full.subarray(0, 19))).toEqual({ format: 'unknown' });
    const badClass = Buffer.from(full);
    badClass[4] = 3;
    expect(describeBinary(badClass)).toEqual({ format: 'unknown' });
    expect(describeBinary(Buffer.alloc(0))).toEqual({ format: 'unknown' });
    expect(addonArchProblem(Buffer.from('#!/bin/sh\n'), 'x64')).toMatch(/not a Linux ELF/);
  });
});

describe('tree scan and the bundle refusal', () => {
  const tree = path.join(work, 'tree');
  const addonDir = path.join(tree, 'node_modules/addon/build/Release');
  mkdirSync(addonDir, { recursive: true });
  writeFileSync(path.join(tree, 'package.json'), '{"name":"sealroom"}\n');
  copyFileSync(prebuild('HID_hidraw-linux-arm64'), path.join(addonDir, 'addon.node'));

  it('finds the addons and names the wrong ones', async () => {
    expect(await findAddons(tree)).toEqual([path.join('node_modules/addon/build/Release/addon.node')]);
    expect(await addonArchProblems(tree, 'arm64')).toEqual([]);
    const wrong = await addonArchProblems(tree, 'x64');
    expect(wrong).toHaveLength(1);
    expect(wrong[0]!.problem).toMatch(/built for arm64/);
  });

  it('buildBundle refuses addons of another arch and accepts its own', async () => {
    const out = path.join(work, 'b.tar.gz');
    const refused = buildBundle({ sourceDir: tree, outFile: out, version: '1.0.0', arch: 'x64' });
    await expect(refused).rejects.toBeInstanceOf(BundleError);
    await expect(refused).rejects.toMatchObject({ code: 'arch' });
    await expect(refused).rejects.toThrow(/addon\.node: built for arm64/);
    const ok = await buildBundle({ sourceDir: tree, outFile: out, version: '1.0.0', arch: 'arm64' });
    expect(ok.files).toBe(2);
  });
});
