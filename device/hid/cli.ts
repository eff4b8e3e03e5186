// `sealroom hid list|parse`: what IT needs when a speakerphone's buttons do nothing — which devices
// node-hid sees, whether the daemon may open them, and where their mute/hook/volume bits are.
import type { Command } from 'commander';
import type { RoomControlLayout } from './room-controls.js';

export function describeLayout(layout: RoomControlLayout): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [
    'phoneMute',
    'hookSwitch',
    'volumeUp',
    'volumeDown',
    'ledMute',
    'ledOffHook',
  ] as const) {
    const f = layout[name];
    out[name] = f
      ? `${f.kind} report ${f.reportId} bit ${f.bitOffset}${f.bitSize > 1 ? `+${f.bitSize}` : ''}${f.relative ? ' (relative)' : ''}`
      : 'absent';
  }
  return out;
}

export function registerHidCommand(program: Command): void {
  const hid = program.command('hid').description('USB HID room controls (speakerphones, button boxes)');
  hid
    .command('list')
    .description('list HID devices node-hid sees and what the daemon would do with each telephony device')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { nodeHidBackend, explainOpenError } = await import('./discovery.js');
      const { layoutFromDescriptor, isRoomControl } = await import('./room-controls.js');
      const backend = nodeHidBackend();
      const devices = await backend.enumerate();
      const rows = [];
      for (const d of devices) {
        const row: Record<string, unknown> = {
          path: d.path,
          vendorId: d.vendorId.toString(16).padStart(4, '0'),
          productId: d.productId.toString(16).padStart(4, '0'),
          product: d.product ?? '',
          usagePage: `0x${(d.usagePage ?? 0).toString(16)}`,
        };
        if (d.usagePage === 0x0b && d.path) {
          try {
            const layout = layoutFromDescriptor(await backend.readDescriptor(d.path));
            row.roomControl = isRoomControl(layout);
            row.layout = describeLayout(layout);
            const device = await backend.open(d.path);
            await device.close();
            row.access = 'ok';
          } catch (err) {
            row.access = explainOpenError(d.path, d.product ?? 'device', err).message;
          }
        }
        rows.push(row);
      }
      if (opts.json) console.log(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) console.log('No HID devices found.');
      else for (const r of rows) console.log(JSON.stringify(r));
    });
  hid
    .command('parse <file>')
    .description(
      'parse a report descriptor (binary, e.g. /sys/class/hidraw/hidrawN/device/report_descriptor, or hex text)',
    )
    .action(async (file: string) => {
      const { readFileSync } = await import('node:fs');
      const { parseHexDescriptor } = await import('./descriptor-files.js');
      const { layoutFromDescriptor, isRoomControl } = await import('./room-controls.js');
      const raw = readFileSync(file);
      // Hex text (as in device/hid/descriptors/) if it reads as such, else the raw bytes from sysfs.
      let bytes: Uint8Array;
      try {
        bytes = parseHexDescriptor(raw.toString('utf8'));
      } catch {
        bytes = raw;
      }
      const layout = layoutFromDescriptor(bytes);
      console.log(
        JSON.stringify(
          { bytes: bytes.length, roomControl: isRoomControl(layout), ...describeLayout(layout) },
          null,
          2,
        ),
      );
    });
}
