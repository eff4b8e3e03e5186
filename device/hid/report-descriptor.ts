// HID report-descriptor parser (HID 1.11 §6.2.2): turns the descriptor bytes into fields with their
// report id, direction, bit offset and size, and usage. Pure: bytes in, data out.
import { fullUsage } from './usages.js';

export type ReportKind = 'input' | 'output' | 'feature';

export interface HidField {
  kind: ReportKind;
  /** 0 when the device uses no report ids. */
  reportId: number;
  /** Bit offset inside the report payload (after the report-id byte, if any). */
  bitOffset: number;
  bitSize: number;
  /** page << 16 | id; for array fields, the first usage of the list. */
  usage: number;
  /** Array fields carry an index into `arrayUsages` instead of a value per usage. */
  variable: boolean;
  relative: boolean;
  constant: boolean;
  /** Main-item bit 5: the control has no rest position (a latching switch, not a push button). */
  noPreferredState: boolean;
  logicalMin: number;
  logicalMax: number;
  arrayUsages?: number[];
}

export interface HidCollection {
  usage: number;
  /** 1 = application, 2 = logical, 0 = physical … (HID 1.11 §6.2.2.6). */
  type: number;
  depth: number;
}

export interface ParsedDescriptor {
  fields: HidField[];
  collections: HidCollection[];
  /** Size in bits of each report, keyed `${kind}:${reportId}`. */
  reportBits: Map<string, number>;
  usesReportIds: boolean;
}

export class DescriptorError extends Error {
  override name = 'DescriptorError';
}

interface GlobalState {
  usagePage: number;
  logicalMin: number;
  logicalMax: number;
  reportSize: number;
  reportCount: number;
  reportId: number;
}

// Limits a real device stays far below (Linux hid-core refuses the same: HID_MAX_USAGES 12288,
// report size > 256 bits, reports over HID_MAX_BUFFER_SIZE 16 KiB). Without them a hostile or broken
// descriptor (Report Count 0xFFFFFFFF, thousands of Usage ranges) made the parser allocate until the
// process died (found by fuzzing: test/fuzz-regressions/hid).
export const MAX_REPORT_COUNT = 12_288;
export const MAX_REPORT_SIZE_BITS = 256;
export const MAX_REPORT_BYTES = 16_384;
export const MAX_USAGES = 12_288;
export const MAX_FIELDS = 65_536;

const MAIN_INPUT = 0x8;
const MAIN_OUTPUT = 0x9;
const MAIN_FEATURE = 0xb;
const MAIN_COLLECTION = 0xa;
const MAIN_END_COLLECTION = 0xc;

export function reportKey(kind: ReportKind, reportId: number): string {
  return `${kind}:${reportId}`;
}

function readUnsigned(bytes: Uint8Array, at: number, size: number): number {
  let value = 0;
  for (let i = size - 1; i >= 0; i--) value = value * 256 + bytes[at + i]!;
  return value;
}

function toSigned(value: number, size: number): number {
  if (size === 0) return 0;
  const bits = size * 8;
  const limit = 2 ** (bits - 1);
  return value >= limit ? value - 2 ** bits : value;
}

export function parseReportDescriptor(bytes: Uint8Array): ParsedDescriptor {
  const fields: HidField[] = [];
  const collections: HidCollection[] = [];
  const reportBits = new Map<string, number>();
  const stack: GlobalState[] = [];
  let global: GlobalState = {
    usagePage: 0,
    logicalMin: 0,
    logicalMax: 0,
    reportSize: 0,
    reportCount: 0,
    reportId: 0,
  };
  let usages: number[] = [];
  let usageMin: number | undefined;
  let depth = 0;
  let usesReportIds = false;

  // Local usages with a 1- or 2-byte form take the usage page in force when the main item comes.
  const localUsage = (value: number, size: number) =>
    size === 4 ? value >>> 0 : fullUsage(global.usagePage, value);

  let i = 0;
  while (i < bytes.length) {
    const prefix = bytes[i]!;
    if (prefix === 0xfe) {
      // Long item: reserved by the spec, skip it whole.
      const dataSize = bytes[i + 1];
      if (dataSize === undefined) throw new DescriptorError(`truncated long item at byte ${i}`);
      i += 3 + dataSize;
      continue;
    }
    const size = [0, 1, 2, 4][prefix & 0x3]!;
    const type = (prefix >> 2) & 0x3;
    const tag = prefix >> 4;
    if (i + 1 + size > bytes.length)
      throw new DescriptorError(`truncated item 0x${prefix.toString(16)} at byte ${i}`);
    const data = readUnsigned(bytes, i + 1, size);
    i += 1 + size;

    if (type === 0) {
      if (tag === MAIN_INPUT || tag === MAIN_OUTPUT || tag === MAIN_FEATURE) {
        const kind: ReportKind = tag === MAIN_INPUT ? 'input' : tag === MAIN_OUTPUT ? 'output' : 'feature';
        const key = reportKey(kind, global.reportId);
        let offset = reportBits.get(key) ?? 0;
        if (global.reportSize * global.reportCount + offset > MAX_REPORT_BYTES * 8)
          throw new DescriptorError(
            `${kind} report ${global.reportId} longer than ${MAX_REPORT_BYTES} bytes`,
          );
        if (usages.length > 0 && fields.length + global.reportCount > MAX_FIELDS)
          throw new DescriptorError(`more than ${MAX_FIELDS} fields`);
        const constant = (data & 0x1) !== 0;
        const variable = (data & 0x2) !== 0;
        const relative = (data & 0x4) !== 0;
        const noPreferredState = (data & 0x20) !== 0;
        const common = {
          kind,
          reportId: global.reportId,
          bitSize: global.reportSize,
          variable,
          relative,
          constant,
          noPreferredState,
          logicalMin: global.logicalMin,
          logicalMax: global.logicalMax,
        };
        if (usages.length === 0) {
          // Padding: no usage, it only moves the offset.
        } else if (variable) {
          for (let n = 0; n < global.reportCount; n++) {
            const usage = usages[Math.min(n, usages.length - 1)]!;
            fields.push({ ...common, bitOffset: offset + n * global.reportSize, usage });
          }
        } else {
          const arrayUsages = [...usages]; // one list shared by the item's fields (read-only)
          for (let n = 0; n < global.reportCount; n++) {
            fields.push({
              ...common,
              bitOffset: offset + n * global.reportSize,
              usage: usages[0]!,
              arrayUsages,
            });
          }
        }
        offset += global.reportSize * global.reportCount;
        reportBits.set(key, offset);
      } else if (tag === MAIN_COLLECTION) {
        collections.push({ usage: usages[0] ?? 0, type: data, depth });
        depth++;
      } else if (tag === MAIN_END_COLLECTION) {
        if (depth === 0) throw new DescriptorError(`End Collection without a Collection at byte ${i - 1}`);
        depth--;
      }
      // Every main item ends the local scope.
      usages = [];
      usageMin = undefined;
    } else if (type === 1) {
      switch (tag) {
        case 0x0:
          global.usagePage = data;
          break;
        case 0x1:
          global.logicalMin = toSigned(data, size);
          break;
        case 0x2:
          // Logical Maximum is signed too, unless the minimum is non-negative and the value only
          // looks negative because of its width (e.g. 0xFF with minimum 0 means 255).
          global.logicalMax = global.logicalMin >= 0 ? data : toSigned(data, size);
          break;
        case 0x7:
          if (data > MAX_REPORT_SIZE_BITS)
            throw new DescriptorError(`Report Size ${data} over ${MAX_REPORT_SIZE_BITS} bits`);
          global.reportSize = data;
          break;
        case 0x8:
          if (data === 0) throw new DescriptorError('Report ID 0 is reserved');
          global.reportId = data;
          usesReportIds = true;
          break;
        case 0x9:
          if (data > MAX_REPORT_COUNT)
            throw new DescriptorError(`Report Count ${data} over ${MAX_REPORT_COUNT}`);
          global.reportCount = data;
          break;
        case 0xa:
          stack.push({ ...global });
          break;
        case 0xb: {
          const popped = stack.pop();
          if (!popped) throw new DescriptorError('Pop without Push');
          global = popped;
          break;
        }
        default:
          // Physical min/max, unit, unit exponent: not needed for buttons and LEDs.
          break;
      }
    } else if (type === 2) {
      if (usages.length >= MAX_USAGES)
        throw new DescriptorError(`more than ${MAX_USAGES} usages before a main item`);
      if (tag === 0x0) usages.push(localUsage(data, size));
      else if (tag === 0x1) usageMin = localUsage(data, size);
      else if (tag === 0x2) {
        if (usageMin === undefined) throw new DescriptorError('Usage Maximum without Usage Minimum');
        const max = localUsage(data, size);
        if (max - usageMin > 0xffff) throw new DescriptorError('usage range too large');
        if (usages.length + Math.max(0, max - usageMin + 1) > MAX_USAGES)
          throw new DescriptorError(`more than ${MAX_USAGES} usages before a main item`);
        for (let u = usageMin; u <= max; u++) usages.push(u);
        usageMin = undefined;
      }
      // Designators, strings and delimiters are not used by room controls.
    } else {
      throw new DescriptorError(`reserved item type at byte ${i - 1 - size}`);
    }
  }
  if (depth !== 0) throw new DescriptorError('descriptor ends inside a collection');
  return { fields, collections, reportBits, usesReportIds };
}

/** Bytes of one report's payload (without the report-id byte). */
export function reportByteLength(parsed: ParsedDescriptor, kind: ReportKind, reportId: number): number {
  return Math.ceil((parsed.reportBits.get(reportKey(kind, reportId)) ?? 0) / 8);
}

/** Reads an unsigned little-endian bit field from a report payload. */
export function readBits(payload: Uint8Array, bitOffset: number, bitSize: number): number {
  let value = 0;
  for (let b = 0; b < bitSize; b++) {
    const bit = bitOffset + b;
    const byte = payload[bit >> 3];
    if (byte === undefined) break;
    if ((byte >> (bit & 7)) & 1) value += 2 ** b;
  }
  return value;
}

/** Writes an unsigned little-endian bit field into a report payload. */
export function writeBits(payload: Uint8Array, bitOffset: number, bitSize: number, value: number): void {
  for (let b = 0; b < bitSize; b++) {
    const bit = bitOffset + b;
    const index = bit >> 3;
    if (index >= payload.length) break;
    const on = Math.floor(value / 2 ** b) % 2 === 1;
    payload[index] = on ? payload[index]! | (1 << (bit & 7)) : payload[index]! & ~(1 << (bit & 7));
  }
}
