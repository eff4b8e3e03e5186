// Hardware inventory (sent once with the CSR) and health (sent with every heartbeat), read with
// systeminformation. Every probe is bounded in time and optional: a box without a temperature
// sensor or a display still enrolls and reports what it has.
import { readdir } from 'node:fs/promises';
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

/** Health for one heartbeat. Peripherals and meeting state come from the daemon's state when given. */
export async function collectHealth(state?: DeviceState): Promise<Record<string, unknown>> {
  const [load, temp, mem, disks] = await Promise.all([
    probe(() => si.currentLoad()),
    probe(() => si.cpuTemperature()),
    probe(() => si.mem()),
    probe(() => si.fsSize()),
  ]);
  const root = disks?.find((d) => d.mount === '/') ?? disks?.[0];
  const present: string[] = [];
  const missing: string[] = [];
  if (state) {
    (state.media.camera === 'missing' ? missing : present).push('camera');
    (state.media.microphone === 'missing' ? missing : present).push('microphone');
  } else {
    ((await videoDevices()).length ? present : missing).push('camera');
  }
  const health: Record<string, unknown> = {
    loadPercent: load ? Math.round(load.currentLoad * 10) / 10 : undefined,
    temperatureC: typeof temp?.main === 'number' ? temp.main : null,
    memory: mem ? { usedBytes: mem.active, totalBytes: mem.total } : undefined,
    disk: root
      ? { usedBytes: Math.max(0, Math.round(root.used)), totalBytes: Math.max(0, Math.round(root.size)) }
      : undefined,
    peripherals: { present, missing },
    meetingState: state ? (state.meeting?.status ?? state.phase) : undefined,
    uptimeSeconds: Math.round(process.uptime()),
  };
  for (const k of Object.keys(health)) if (health[k] === undefined) delete health[k];
  return health;
}
