// The report-descriptor parser on real speakerphone descriptors (device/hid/descriptors/) and on the
// corners of the HID item grammar, plus the room-control decoding and LED encoding built on it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadKnownDescriptors, parseHexDescriptor } from '../device/hid/descriptor-files.js';
import {
  DescriptorError,
  parseReportDescriptor,
  readBits,
  writeBits,
} from '../device/hid/report-descriptor.js';
import {
  decodeInputReport,
  encodeLedReports,
  isRoomControl,
  layoutFromDescriptor,
  type RoomControlLayout,
} from '../device/hid/room-controls.js';
import { fullUsage, Page } from '../device/hid/usages.js';

const known = Object.fromEntries(loadKnownDescriptors().map((d) => [d.name, d.bytes]));

function where(layout: RoomControlLayout) {
  const at = (f: RoomControlLayout['phoneMute']) =>
    f && { reportId: f.reportId, bit: f.bitOffset, relative: f.relative };
  return {
    phoneMute: at(layout.phoneMute),
    hookSwitch: at(layout.hookSwitch),
    volumeUp: at(layout.volumeUp),
    volumeDown: at(layout.volumeDown),
    ledMute: at(layout.ledMute),
    ledOffHook: at(layout.ledOffHook),
  };
}

describe('real speakerphone descriptors', () => {
  it('ships at least two, each documenting its source', () => {
    expect(Object.keys(known).length).toBeGreaterThanOrEqual(2);
  });

  it('Anker PowerConf: consumer report 1, telephony and LEDs in report 2', () => {
    const bytes = known['anker-powerconf-291a-3301']!;
    expect(bytes.length).toBe(96);
    const parsed = parseReportDescriptor(bytes);
    expect(parsed.collections.map((c) => [c.usage.toString(16), c.type])).toEqual([
      ['c0001', 1],
      ['b0005', 1],
    ]);
    const layout = layoutFromDescriptor(bytes);
    expect(where(layout)).toEqual({
      phoneMute: { reportId: 2, bit: 2, relative: true },
      hookSwitch: { reportId: 2, bit: 0, relative: false },
      volumeUp: { reportId: 1, bit: 0, relative: false },
      volumeDown: { reportId: 1, bit: 1, relative: false },
      ledMute: { reportId: 2, bit: 1, relative: false },
      ledOffHook: { reportId: 2, bit: 0, relative: false },
    });
    // One byte of LEDs after the report id, as the device reported.
    expect(encodeLedReports(layout, { muted: true, offHook: false })).toEqual([Uint8Array.from([2, 0b10])]);
    expect(encodeLedReports(layout, { muted: true, offHook: true })).toEqual([Uint8Array.from([2, 0b11])]);
  });

  it('UC conference camera speakerphone: telephony report 2 (16 bits), consumer report 1', () => {
    const bytes = known['uc-camera-speakerphone-gadget']!;
    const parsed = parseReportDescriptor(bytes);
    expect(parsed.reportBits.get('input:2')).toBe(16);
    expect(parsed.reportBits.get('output:2')).toBe(16);
    expect(parsed.reportBits.get('input:1')).toBe(16);
    const layout = layoutFromDescriptor(bytes);
    expect(where(layout)).toEqual({
      phoneMute: { reportId: 2, bit: 2, relative: true },
      hookSwitch: { reportId: 2, bit: 0, relative: false },
      volumeUp: { reportId: 1, bit: 1, relative: false },
      volumeDown: { reportId: 1, bit: 0, relative: false },
      ledMute: { reportId: 2, bit: 1, relative: false },
      ledOffHook: { reportId: 2, bit: 0, relative: false },
    });
    // The keypad is an array of phone keys 0xB0..0xBB in a 4-bit slot.
    const keypad = parsed.fields.find((f) => f.arrayUsages);
    expect(keypad).toMatchObject({ kind: 'input', reportId: 2, bitOffset: 6, bitSize: 4, variable: false });
    expect(keypad!.arrayUsages).toHaveLength(12);
    expect(encodeLedReports(layout, { muted: false, offHook: true })).toEqual([
      Uint8Array.from([2, 0b01, 0]),
    ]);
  });

  it('turns the speakerphone’s reports into presses', () => {
    const layout = layoutFromDescriptor(known['uc-camera-speakerphone-gadget']!);
    let levels = {};
    const feed = (...bytes: number[]) => {
      const r = decodeInputReport(layout, Uint8Array.from(bytes), levels);
      levels = r.levels;
      return r.buttons;
    };
    expect(feed(2, 0b100, 0)).toEqual(['mute']); // Phone Mute (relative) pressed
    expect(feed(2, 0b000, 0)).toEqual([]);
    expect(feed(2, 0b100, 0)).toEqual(['mute']);
    expect(feed(2, 0b001, 0)).toEqual(['hook-off']); // green button
    expect(feed(2, 0b001, 0)).toEqual([]);
    expect(feed(2, 0b000, 0)).toEqual(['hook-on']); // red button
    expect(feed(1, 0b10, 0)).toEqual(['volume-up']);
    expect(feed(1, 0b10, 0)).toEqual([]); // still held: one press
    expect(feed(1, 0b00, 0)).toEqual([]);
    expect(feed(1, 0b01, 0)).toEqual(['volume-down']);
    // A report id this layout does not use changes nothing.
    expect(feed(9, 0xff, 0xff)).toEqual([]);
  });
});

describe('HID item grammar', () => {
  const hex = (s: string) => parseHexDescriptor(s);

  it('handles devices without report ids', () => {
    const layout = layoutFromDescriptor(
      hex(`05 0b 09 05 a1 01 15 00 25 01 75 01 95 01 09 2f 81 06 95 07 81 01
           05 08 09 09 95 01 91 02 95 07 91 01 c0`),
    );
    expect(layout.usesReportIds).toBe(false);
    expect(decodeInputReport(layout, Uint8Array.from([1]), {}).buttons).toEqual(['mute']);
    expect(encodeLedReports(layout, { muted: true, offHook: true })).toEqual([Uint8Array.from([0, 1])]);
  });

  it('tells a latching mute switch from a mute button', () => {
    // Phone Mute as an absolute, no-preferred-state switch: 1 while muted, 0 while not.
    const layout = layoutFromDescriptor(
      hex('05 0b 09 05 a1 01 15 00 25 01 75 01 95 01 09 2f 81 22 95 07 81 01 c0'),
    );
    let levels = {};
    const feed = (byte: number) => {
      const r = decodeInputReport(layout, Uint8Array.from([byte]), levels);
      levels = r.levels;
      return r.buttons;
    };
    expect(feed(1)).toEqual(['mute-on']);
    expect(feed(1)).toEqual([]);
    expect(feed(0)).toEqual(['mute-off']);
    // The same usage as a push button (preferred state): each press toggles, release does nothing.
    const button = layoutFromDescriptor(
      hex('05 0b 09 05 a1 01 15 00 25 01 75 01 95 01 09 2f 81 02 95 07 81 01 c0'),
    );
    expect(decodeInputReport(button, Uint8Array.from([1]), {}).buttons).toEqual(['mute']);
    expect(decodeInputReport(button, Uint8Array.from([0]), { phoneMute: 1 }).buttons).toEqual([]);
  });

  it('reads 4-byte usages (page in the high word), usage ranges, push and pop', () => {
    const parsed = parseReportDescriptor(
      hex(`05 01 09 00 a1 01 85 03 15 00 25 01 75 01
           0b 2f 00 0b 00 95 01 81 02
           a4 05 0c 19 e9 29 ea 95 02 81 02 b4
           95 05 81 01 c0`),
    );
    expect(parsed.fields.map((f) => [f.usage, f.bitOffset])).toEqual([
      [fullUsage(Page.Telephony, 0x2f), 0],
      [fullUsage(Page.Consumer, 0xe9), 1],
      [fullUsage(Page.Consumer, 0xea), 2],
    ]);
    expect(parsed.reportBits.get('input:3')).toBe(8);
    // After Pop the usage page is Generic Desktop again: nothing leaked.
    expect(isRoomControl(layoutFromDescriptor(hex('05 01 09 06 a1 01 09 e9 75 01 95 01 81 02 c0')))).toBe(
      false,
    );
  });

  it('skips long items and reads signed logical minimums', () => {
    const parsed = parseReportDescriptor(hex('fe 02 aa 01 02 05 0c 15 ff 25 01 75 02 95 01 09 e9 81 06'));
    expect(parsed.fields[0]).toMatchObject({ logicalMin: -1, logicalMax: 1, bitSize: 2, relative: true });
  });

  it('rejects malformed descriptors with a DescriptorError', () => {
    expect(() => parseReportDescriptor(hex('05'))).toThrow(DescriptorError);
    expect(() => parseReportDescriptor(hex('a1 01'))).toThrow(/inside a collection/);
    expect(() => parseReportDescriptor(hex('c0'))).toThrow(/End Collection/);
    expect(() => parseReportDescriptor(hex('b4'))).toThrow(/Pop without Push/);
    expect(() => parseReportDescriptor(hex('85 00'))).toThrow(/Report ID 0/);
    expect(() => parseHexDescriptor('05 0g')).toThrow(/not a hex byte/);
  });

  it('never fails on arbitrary bytes with anything but a DescriptorError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          parseReportDescriptor(bytes);
        } catch (err) {
          if (!(err instanceof DescriptorError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('writes and reads back any bit field', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 24 }),
        fc.nat(),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (offset, size, raw, initial) => {
          const value = raw % 2 ** size;
          const buf = Uint8Array.from(initial);
          writeBits(buf, offset, size, value);
          expect(readBits(buf, offset, size)).toBe(value);
          // Bits outside the field are untouched.
          for (let bit = 0; bit < 64; bit++) {
            if (bit >= offset && bit < offset + size) continue;
            expect(readBits(buf, bit, 1)).toBe(readBits(initial, bit, 1));
          }
        },
      ),
    );
  });
});
