// Report descriptors kept as text (`device/hid/descriptors/*.rdesc`: hex bytes, `#` comments naming
// where each came from) and read from a live device's sysfs node.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { findPackageRoot } from '../kiosk/ui-dir.js';

/** Parses "05 0c 09 01 …" (commas, 0x prefixes and # comments allowed). Pure. */
export function parseHexDescriptor(text: string): Uint8Array {
  const tokens = text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join(' ')
    .split(/[\s,]+/)
    .filter(Boolean);
  return Uint8Array.from(
    tokens.map((t) => {
      const hex = t.replace(/^0x/i, '');
      if (!/^[0-9a-f]{1,2}$/i.test(hex)) throw new Error(`not a hex byte: ${t}`);
      return Number.parseInt(hex, 16);
    }),
  );
}

export function knownDescriptorsDir(): string {
  return join(findPackageRoot(), 'device', 'hid', 'descriptors');
}

export function loadKnownDescriptors(dir = knownDescriptorsDir()): { name: string; bytes: Uint8Array }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.rdesc'))
    .sort()
    .map((f) => ({
      name: basename(f, '.rdesc'),
      bytes: parseHexDescriptor(readFileSync(join(dir, f), 'utf8')),
    }));
}

/**
 * The report descriptor of a hidraw node, as the kernel exposes it: node-hid's path on Linux is
 * /dev/hidrawN and sysfs keeps the bytes at /sys/class/hidraw/hidrawN/device/report_descriptor.
 */
export async function readSysfsDescriptor(
  devicePath: string,
  sysfsRoot = '/sys/class/hidraw',
): Promise<Uint8Array> {
  const node = basename(devicePath);
  if (!/^hidraw\d+$/.test(node)) throw new Error(`not a hidraw device path: ${devicePath}`);
  return new Uint8Array(await readFile(join(sysfsRoot, node, 'device', 'report_descriptor')));
}
