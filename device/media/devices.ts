// Which pipeline profile fits this box: cameras, microphones and speakers as gst-device-monitor-1.0
// lists them, turned into a profile name and device parameters for the templates. The parser and the
// choice are pure; detectDevices() runs the tool.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { SettingsPatch } from './ipc.js';

const run = promisify(execFile);

export interface MediaDevice {
  name: string;
  /** GStreamer device class: Video/Source, Audio/Source, Audio/Sink, Video/Sink … */
  deviceClass: string;
  properties: Record<string, string>;
  /** The element gst-device-monitor suggests (v4l2src, alsasrc, pulsesrc …) and its device= value. */
  element?: string;
  device?: string;
  /** Audio devices: a known USB speakerphone that cancels its own echo (hasHardwareEchoCancel). */
  hardwareEchoCancel?: boolean;
}

/**
 * Known USB speakerphones that do their own acoustic echo cancellation (their DSP hears what they
 * play): software echo cancellation on top would only distort double talk. Matched on the name
 * gst-device-monitor, ALSA or PulseAudio give ("Jabra SPEAK 510 USB", "alsa_output.usb-Poly_Sync_20…").
 */
const SPEAKERPHONES: RegExp[] = [
  /\bjabra speak/, // Jabra Speak 410/510/710/750, Speak2
  /\b(poly|plantronics)\b.*\bsync \d/, // Poly Sync 10/20/40/60, Plantronics Poly Sync
  /\bcalisto \d/, // Plantronics Calisto
  /\bpowerconf\b/, // Anker PowerConf, PowerConf S3/S330
  /\bemeet\b/, // eMeet OfficeCore, Luna, M0/M2
  /\byealink cp ?\d/, // Yealink CP700/CP900
  /speakerphone/, // "USB Speakerphone", "Logitech P710e Speakerphone", …
];

/** Whether a device with this name is a speakerphone that cancels its own echo. Pure. */
export function hasHardwareEchoCancel(deviceName: string): boolean {
  const name = deviceName
    .toLowerCase()
    .replace(/[_\-.:,]+/g, ' ')
    .replace(/\s+/g, ' ');
  return SPEAKERPHONES.some((re) => re.test(name));
}

/** Parses the text gst-device-monitor-1.0 prints (one "Device found:" block per device). */
export function parseDeviceMonitor(text: string): MediaDevice[] {
  const devices: MediaDevice[] = [];
  for (const block of text.split(/^Device found:\s*$/m).slice(1)) {
    const name = /^\s*name\s*:\s*(.+)$/m.exec(block)?.[1]?.trim();
    const deviceClass = /^\s*class\s*:\s*(.+)$/m.exec(block)?.[1]?.trim();
    if (!name || !deviceClass) continue;
    const properties: Record<string, string> = {};
    const props = /^\s*properties:\s*$([\s\S]*?)(?=^\s*gst-launch-1\.0|(?![\s\S]))/m.exec(block)?.[1] ?? '';
    for (const line of props.split('\n')) {
      const m = /^\s+([\w.:-]+)\s*=\s*(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) properties[m[1]] = m[2].trim();
    }
    // "gst-launch-1.0 v4l2src device=/dev/video0 ! ..." or "gst-launch-1.0 ... ! alsasink device=hw:1"
    const launch = /^\s*gst-launch-1\.0\s+(.*)$/m.exec(block)?.[1] ?? '';
    const segment = launch
      .split('!')
      .map((part) => part.trim())
      .find((part) => part !== '' && part !== '...');
    const element = segment?.split(/\s+/)[0];
    const device = segment ? /\bdevice=("([^"]+)"|'([^']+)'|(\S+))/.exec(segment) : null;
    devices.push({
      name,
      deviceClass,
      properties,
      element,
      device: device ? (device[2] ?? device[3] ?? device[4]) : undefined,
      ...(deviceClass.startsWith('Audio/') ? { hardwareEchoCancel: hasHardwareEchoCancel(name) } : {}),
    });
  }
  return devices;
}

export interface ProfileChoice {
  settings: SettingsPatch;
  /** Why this profile, for the diagnostics screen and the log. */
  reason: string;
}

/**
 * The configured profile wins; otherwise a V4L2 camera with ALSA or PulseAudio, else test sources.
 * Echo cancellation is the profile's default (on for v4l2/pulse) unless the speaker is a speakerphone
 * that cancels its own echo (then `echoCancel: false`); a configured `echoCancel` always wins.
 */
export function chooseProfile(devices: readonly MediaDevice[], configured?: SettingsPatch): ProfileChoice {
  if (configured?.profile)
    return { settings: configured, reason: `profile "${configured.profile}" from the configuration` };
  const camera = devices.find((d) => d.deviceClass === 'Video/Source' && d.element === 'v4l2src' && d.device);
  const mic = devices.find((d) => d.deviceClass === 'Audio/Source' && d.element !== undefined);
  const speaker = devices.find((d) => d.deviceClass === 'Audio/Sink' && d.element !== undefined);
  if (!camera)
    return { settings: { ...configured, profile: 'test' }, reason: 'no V4L2 camera found: test sources' };
  const cameraDevice = camera.device as string;
  const speakerphone = speaker !== undefined && hasHardwareEchoCancel(speaker.name);
  const aec: Pick<SettingsPatch, 'echoCancel'> =
    configured?.echoCancel === undefined && speakerphone ? { echoCancel: false } : {};
  const aecReason =
    configured?.echoCancel !== undefined
      ? `; echo cancellation ${configured.echoCancel ? 'on' : 'off'} (configuration)`
      : speakerphone
        ? `; speaker "${speaker?.name}" cancels its own echo: software echo cancellation off`
        : '; software echo cancellation on';
  if (mic?.element === 'pulsesrc' || speaker?.element === 'pulsesink') {
    return {
      settings: { ...configured, profile: 'pulse', cameraDevice, ...aec },
      reason: `camera "${camera.name}" (${cameraDevice}) with PulseAudio${aecReason}`,
    };
  }
  return {
    settings: {
      ...configured,
      profile: 'v4l2',
      cameraDevice,
      micDevice: configured?.micDevice ?? mic?.device ?? 'default',
      speakerDevice: configured?.speakerDevice ?? speaker?.device ?? 'default',
      ...aec,
    },
    reason: `camera "${camera.name}" (${cameraDevice}), microphone "${mic?.name ?? 'ALSA default'}", speaker "${speaker?.name ?? 'ALSA default'}"${aecReason}`,
  };
}

/** Runs gst-device-monitor-1.0 once (it exits after listing); no devices if the tool is missing. */
export async function detectDevices(timeoutMs = 8000): Promise<MediaDevice[]> {
  try {
    const { stdout } = await run('gst-device-monitor-1.0', [], {
      timeout: timeoutMs,
      maxBuffer: 4 * 1024 * 1024,
    });
    return parseDeviceMonitor(stdout);
  } catch {
    return [];
  }
}
