// HID usage pages and usages a room control needs (USB HID Usage Tables 1.4: Telephony 0x0B,
// Consumer 0x0C, LED 0x08). A "full usage" is page << 16 | id, as in the descriptor's 4-byte form.
export const Page = { LED: 0x08, Telephony: 0x0b, Consumer: 0x0c } as const;

export const Usage = {
  TelephonyHeadset: 0x05,
  PhoneMute: 0x2f,
  HookSwitch: 0x20,
  VolumeIncrement: 0xe9,
  VolumeDecrement: 0xea,
  LedMute: 0x09,
  LedOffHook: 0x17,
  LedRing: 0x18,
} as const;

export function fullUsage(page: number, id: number): number {
  return ((page & 0xffff) * 0x10000 + (id & 0xffff)) >>> 0;
}

export function usagePageOf(full: number): number {
  return Math.floor(full / 0x10000) & 0xffff;
}

export function usageIdOf(full: number): number {
  return full & 0xffff;
}
