// Hardware inventory (sent once with the CSR) and health (sent with every heartbeat), read with
// systeminformation. Every probe is bounded in time and optional: a box without a temperature
// sensor or a display still enrolls and reports what it has.
import { readdir, readFile } from 'node:fs/promises';
import si from 'systeminformation';
import type { DeviceState } from '../daemon/state.js';

async function probe<T>(f: () => Promise<T>, timeoutMs = 5000): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      f(),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), timeoutMs);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

const clean = (s: string | undefined) =>
  s
    ?.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .trim()
    .slice(0, 200) || undefined;

async function videoDevices(): Promise<string[]> {
  const names = await probe(() => readdir('/dev'));
  return (names ?? []).filter((n) => /^video\d+$/.test(n)).map((n) => `/dev/${n}`);
}

export async function collectInventory(): Promise<Record<string, unknown>> {
  const [system, cpu, mem, os, nics, audio, graphics, cameras] = await Promise.all([
    probe(() => si.system()),
    probe(() => si.cpu()),
    probe(() => si.mem()),
    probe(() => si.osInfo()),
    probe(() => si.networkInterfaces()),
    probe(() => si.audio()),
    probe(() => si.graphics()),
    videoDevices(),
  ]);
  const nicList = Array.isArray(nics) ? nics : nics ? [nics] : [];
  const macs = [
    ...new Set(
      nicList
        .map((n) => n.mac)
        .filter((m) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(m) && m !== '00:00:00:00:00:00'),
    ),
  ].slice(0, 32);
  const out: Record<string, unknown> = {
    model: clean(system?.model),
    manufacturer: clean(system?.manufacturer),
    serial: clean(system?.serial),
    macs,
    cpu: clean(cpu ? `${cpu.manufacturer} ${cpu.brand}` : undefined),
    cores: cpu?.cores,
    memoryBytes: mem?.total,
    cameras: cameras.slice(0, 32),
    audioDevices: (audio ?? [])
      .map((a) => clean(a.name))
      .filter(Boolean)
      .slice(0, 64),
    displays: (graphics?.displays ?? [])
      .map((d) => clean(`${d.vendor} ${d.model} ${d.resolutionX ?? ''}x${d.resolutionY ?? ''}`))
      .filter(Boolean)
      .slice(0, 16),
    os: clean(os ? `${os.distro} ${os.release} (${os.kernel})` : undefined),
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

export const PERIPHERAL_KINDS = ['camera', 'microphone', 'speaker', 'display', 'hid'] as const;
export type PeripheralKind = (typeof PERIPHERAL_KINDS)[number];

/** What the box has attached, by kind: device names (empty = none found). */
export type PeripheralScan = Record<PeripheralKind, string[]>;

export interface PeripheralReport {
  present: PeripheralKind[];
  missing: PeripheralKind[];
  names: Partial<Record<PeripheralKind, string>>;
}

const readText = (path: string) => probe(() => readFile(path, 'utf8'), 1000);
const list = async (dir: string) => (await probe(() => readdir(dir), 1000)) ?? [];

/** Camera names from V4L2 (one camera has several nodes: names are deduplicated). */
async function cameraNames(): Promise<string[]> {
  const nodes = (await list('/sys/class/video4linux')).filter((n) => /^video\d+$/.test(n)).slice(0, 32);
  const names = await Promise.all(
    nodes.map(async (n) => clean(await readText(`/sys/class/video4linux/${n}/name`))),
  );
  const found = names.filter((n): n is string => !!n);
  if (found.length) return [...new Set(found)];
  return videoDevices();
}

/** ALSA cards with their playback (speaker) and capture (microphone) devices. */
async function audioNames(): Promise<{ speaker: string[]; microphone: string[] }> {
  const cards = (await readText('/proc/asound/cards')) ?? '';
  const speaker: string[] = [];
  const microphone: string[] = [];
  for (const m of cards.matchAll(/^\s*(\d+)\s+\[[^\]]*\]:\s*(.+)$/gm)) {
    const index = m[1]!;
    const name = clean(m[2]?.split(' - ').at(-1) ?? m[2]);
    if (!name) continue;
    const pcms = await list(`/proc/asound/card${index}`);
    if (pcms.some((p) => /^pcm\d+p$/.test(p))) speaker.push(name);
    if (pcms.some((p) => /^pcm\d+c$/.test(p))) microphone.push(name);
    if (speaker.length >= 16 && microphone.length >= 16) break;
  }
  return { speaker, microphone };
}

/** The monitor name an EDID block carries (descriptor tag 0xFC), if any. */
export function edidMonitorName(edid: Uint8Array): string | undefined {
  if (edid.length < 128) return undefined;
  for (let off = 54; off + 18 <= 126; off += 18) {
    if (edid[off] === 0 && edid[off + 1] === 0 && edid[off + 3] === 0xfc) {
      return clean(
        Buffer.from(edid.subarray(off + 5, off + 18))
          .toString('latin1')
          .split('\n')[0],
      );
    }
  }
  return undefined;
}

/** Connected displays (DRM connectors), named from their EDID when it has a name. */
async function displayNames(): Promise<string[]> {
  const connectors = (await list('/sys/class/drm')).filter((n) => /^card\d+-/.test(n)).slice(0, 32);
  const out: string[] = [];
  for (const c of connectors) {
    if ((await readText(`/sys/class/drm/${c}/status`))?.trim() !== 'connected') continue;
    const edid = await probe(() => readFile(`/sys/class/drm/${c}/edid`), 1000);
    out.push(edidMonitorName(edid ?? new Uint8Array()) ?? clean(c.replace(/^card\d+-/, '')) ?? c);
  }
  return out;
}

/** HID devices the kernel sees (hidraw), by name: used when the daemon's HID manager is not given. */
async function hidrawNames(): Promise<string[]> {
  const nodes = (await list('/sys/class/hidraw')).slice(0, 64);
  const names = await Promise.all(
    nodes.map(async (n) =>
      clean(/^HID_NAME=(.*)$/m.exec((await readText(`/sys/class/hidraw/${n}/device/uevent`)) ?? '')?.[1]),
    ),
  );
  return [...new Set(names.filter((n): n is string => !!n))];
}

/** Reads what is attached (Linux sysfs/procfs; every read bounded, a missing file means none). */
export async function scanPeripherals(hid?: () => string[]): Promise<PeripheralScan> {
  const [camera, audio, display, hidraw] = await Promise.all([
    cameraNames(),
    audioNames(),
    displayNames(),
    hid ? Promise.resolve(hid()) : hidrawNames(),
  ]);
  return { camera, microphone: audio.microphone, speaker: audio.speaker, display, hid: hidraw };
}

/**
 * Present/missing per kind. Camera and microphone: the media worker's view (state) when given, as it
 * knows whether it can open them. Speaker, display and HID: present when found; 'missing' only once
 * they were seen before (`seen`, kept by the caller), so a room without a display or room controls
 * reports nothing for them rather than an alarm. Pure.
 */
export function peripheralReport(
  scan: PeripheralScan | undefined,
  state: DeviceState | undefined,
  seen: Set<PeripheralKind>,
): PeripheralReport {
  const report: PeripheralReport = { present: [], missing: [], names: {} };
  for (const kind of PERIPHERAL_KINDS) {
    const names = scan?.[kind] ?? [];
    let present: boolean | undefined;
    if (state && (kind === 'camera' || kind === 'microphone')) present = state.media[kind] !== 'missing';
    else if (!scan)
      present = undefined; // the scan timed out: say nothing rather than "missing"
    else if (kind === 'camera') present = names.length > 0;
    else present = names.length > 0 ? true : seen.has(kind) ? false : undefined;
    if (present === undefined) continue;
    if (present) {
      seen.add(kind);
      report.present.push(kind);
      const name = clean(names[0]);
      if (name) report.names[kind] = name;
    } else report.missing.push(kind);
  }
  return report;
}

/** The boot self-test result the daemon keeps in its state (crypto known answers, media worker). */
export function selfTestReport(state: DeviceState | undefined) {
  const t = state?.selfTest;
  if (!t) return undefined;
  return {
    ok: t.ok === true && t.failed.length === 0,
    failed: t.failed.map((f) => clean(f) ?? '?').slice(0, 16),
    at: t.at,
  };
}

const seenByDefault = new Set<PeripheralKind>();

/**
 * Health for one heartbeat. Peripherals and meeting state come from the daemon's state when given;
 * `hid` lists the daemon's room controls (HidManager) instead of every hidraw node.
 */
export async function collectHealth(
  state?: DeviceState,
  opts: { hid?: () => string[]; seen?: Set<PeripheralKind>; scan?: () => Promise<PeripheralScan> } = {},
): Promise<Record<string, unknown>> {
  const [load, temp, mem, disks, scan] = await Promise.all([
    probe(() => si.currentLoad()),
    probe(() => si.cpuTemperature()),
    probe(() => si.mem()),
    probe(() => si.fsSize()),
    probe(() => (opts.scan ?? (() => scanPeripherals(opts.hid)))()),
  ]);
  const root = disks?.find((d) => d.mount === '/') ?? disks?.[0];
  const peripherals = peripheralReport(scan, state, opts.seen ?? seenByDefault);
  const health: Record<string, unknown> = {
    loadPercent: load ? Math.round(load.currentLoad * 10) / 10 : undefined,
    temperatureC: typeof temp?.main === 'number' ? temp.main : null,
    memory: mem ? { usedBytes: mem.active, totalBytes: mem.total } : undefined,
    disk: root
      ? { usedBytes: Math.max(0, Math.round(root.used)), totalBytes: Math.max(0, Math.round(root.size)) }
      : undefined,
    peripherals,
    selfTest: selfTestReport(state),
    meetingState: state ? (state.meeting?.status ?? state.phase) : undefined,
    uptimeSeconds: Math.round(process.uptime()),
  };
  for (const k of Object.keys(health)) if (health[k] === undefined) delete health[k];
  return health;
}
