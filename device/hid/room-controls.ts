// What a parsed descriptor means for a meeting room: which input bits are the mute, hook and volume
// buttons, which output bits light the mute and off-hook LEDs, how to turn an input report into
// button presses and the room state into LED output reports. Pure.
import {
  type HidField,
  type ParsedDescriptor,
  parseReportDescriptor,
  readBits,
  reportByteLength,
  writeBits,
} from './report-descriptor.js';
import { fullUsage, Page, Usage } from './usages.js';

export interface RoomControlLayout {
  phoneMute?: HidField;
  hookSwitch?: HidField;
  volumeUp?: HidField;
  volumeDown?: HidField;
  ledMute?: HidField;
  ledOffHook?: HidField;
  ledRing?: HidField;
  usesReportIds: boolean;
  /** Output report sizes (payload bytes) for the reports the LEDs live in. */
  outputBytes: Map<number, number>;
}

/**
 * 'mute' toggles (a push button); 'mute-on'/'mute-off' set the state a latching mute switch reports
 * (absolute Phone Mute without a preferred state, as on Google's Meet speakermic).
 */
export type RoomButton =
  | 'mute'
  | 'mute-on'
  | 'mute-off'
  | 'hook-on'
  | 'hook-off'
  | 'volume-up'
  | 'volume-down';

function findVariable(parsed: ParsedDescriptor, kind: HidField['kind'], page: number, id: number) {
  const usage = fullUsage(page, id);
  return parsed.fields.find((f) => f.kind === kind && f.variable && f.usage === usage);
}

export function roomControlLayout(parsed: ParsedDescriptor): RoomControlLayout {
  const layout: RoomControlLayout = {
    phoneMute: findVariable(parsed, 'input', Page.Telephony, Usage.PhoneMute),
    hookSwitch: findVariable(parsed, 'input', Page.Telephony, Usage.HookSwitch),
    volumeUp: findVariable(parsed, 'input', Page.Consumer, Usage.VolumeIncrement),
    volumeDown: findVariable(parsed, 'input', Page.Consumer, Usage.VolumeDecrement),
    ledMute: findVariable(parsed, 'output', Page.LED, Usage.LedMute),
    ledOffHook: findVariable(parsed, 'output', Page.LED, Usage.LedOffHook),
    ledRing: findVariable(parsed, 'output', Page.LED, Usage.LedRing),
    usesReportIds: parsed.usesReportIds,
    outputBytes: new Map(),
  };
  for (const led of [layout.ledMute, layout.ledOffHook, layout.ledRing]) {
    if (led) layout.outputBytes.set(led.reportId, reportByteLength(parsed, 'output', led.reportId));
  }
  return layout;
}

export function layoutFromDescriptor(bytes: Uint8Array): RoomControlLayout {
  return roomControlLayout(parseReportDescriptor(bytes));
}

/** A device is worth opening when it has at least one room button. */
export function isRoomControl(layout: RoomControlLayout): boolean {
  return Boolean(layout.phoneMute || layout.hookSwitch || layout.volumeUp || layout.volumeDown);
}

/** Last seen value of each input control, to turn levels into presses (edges). */
export type InputLevels = Partial<Record<'phoneMute' | 'hookSwitch' | 'volumeUp' | 'volumeDown', number>>;

/**
 * Decodes one input report as read from hidraw (first byte = report id when the device uses them).
 * Buttons fire on the rising edge; the hook switch reports both edges (off-hook = call active).
 */
export function decodeInputReport(
  layout: RoomControlLayout,
  report: Uint8Array,
  levels: InputLevels,
): { buttons: RoomButton[]; levels: InputLevels } {
  const reportId = layout.usesReportIds ? report[0] : 0;
  const payload = layout.usesReportIds ? report.subarray(1) : report;
  const next: InputLevels = { ...levels };
  const buttons: RoomButton[] = [];
  const controls = [
    ['phoneMute', 'mute'],
    ['hookSwitch', undefined],
    ['volumeUp', 'volume-up'],
    ['volumeDown', 'volume-down'],
  ] as const;
  for (const [name, button] of controls) {
    const field = layout[name];
    if (!field || field.reportId !== reportId) continue;
    const value = readBits(payload, field.bitOffset, field.bitSize);
    const before = levels[name] ?? 0;
    next[name] = value;
    if (name === 'hookSwitch') {
      if (value && !before) buttons.push('hook-off');
      if (!value && before) buttons.push('hook-on');
    } else if (name === 'phoneMute' && !field.relative && field.noPreferredState) {
      if (value && !before) buttons.push('mute-on');
      if (!value && before) buttons.push('mute-off');
    } else if (value && (!before || field.relative)) {
      buttons.push(button!);
    }
  }
  return { buttons, levels: next };
}

export interface LedState {
  muted: boolean;
  offHook: boolean;
  /** Someone waits to be admitted and this room leads: the ring light asks the room to look. */
  ring?: boolean;
}

/** Output reports (report-id byte first, 0 when the device has no ids) that set the LEDs. */
export function encodeLedReports(layout: RoomControlLayout, leds: LedState): Uint8Array[] {
  const reports = new Map<number, Uint8Array>();
  const set = (field: HidField | undefined, on: boolean) => {
    if (!field) return;
    let report = reports.get(field.reportId);
    if (!report) {
      report = new Uint8Array(1 + (layout.outputBytes.get(field.reportId) ?? 1));
      report[0] = field.reportId;
      reports.set(field.reportId, report);
    }
    writeBits(report.subarray(1), field.bitOffset, field.bitSize, on ? 1 : 0);
  };
  set(layout.ledMute, leds.muted);
  set(layout.ledOffHook, leds.offHook);
  set(layout.ledRing, leds.ring ?? false);
  return [...reports.values()];
}
