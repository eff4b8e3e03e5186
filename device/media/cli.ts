// `sealroom media …`: what a technician runs on a room box to see which camera, microphone and
// speaker the media engine will use, and whether GStreamer has every element the pipelines need.
// Modules load only when a subcommand runs (no GStreamer binding is loaded at all).
import type { Command } from 'commander';

export function registerMediaCommand(program: Command): void {
  const media = program
    .command('media')
    .description('media engine diagnostics: devices, pipeline profiles, GStreamer elements');

  media
    .command('devices')
    .description(
      'list cameras, microphones and speakers (gst-device-monitor-1.0) and the profile they select',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { detectDevices, chooseProfile } = await import('./devices.js');
      const devices = await detectDevices();
      const choice = chooseProfile(devices);
      if (opts.json) {
        console.log(JSON.stringify({ devices, choice }, null, 2));
        return;
      }
      for (const d of devices)
        console.log(
          `${d.deviceClass.padEnd(14)} ${d.name}${d.element ? `  (${d.element}${d.device ? ` device=${d.device}` : ''})` : ''}`,
        );
      console.log(`profile: ${choice.settings.profile} — ${choice.reason}`);
    });

  media
    .command('check')
    .description('render the pipeline templates of a profile and report missing GStreamer elements by name')
    .option('--profile <name>', 'pipeline profile (default: detected)')
    .option('--codec <codec>', 'h264 or vp8', 'h264')
    .option('--camera <device>', 'camera device for hardware profiles')
    .option('--mic <device>', 'ALSA microphone device')
    .option('--speaker <device>', 'ALSA speaker device')
    .option('--print', 'print the launch strings')
    .action(
      async (opts: {
        profile?: string;
        codec: string;
        camera?: string;
        mic?: string;
        speaker?: string;
        print?: boolean;
      }) => {
        const { detectDevices, chooseProfile } = await import('./devices.js');
        const { loadPipelineSet, missingElements } = await import('./catalog.js');
        const { buildLaunchStrings, DEFAULT_SETTINGS } = await import('./templates.js');
        const configured = {
          ...(opts.profile ? { profile: opts.profile } : {}),
          ...(opts.camera ? { cameraDevice: opts.camera } : {}),
          ...(opts.mic ? { micDevice: opts.mic } : {}),
          ...(opts.speaker ? { speakerDevice: opts.speaker } : {}),
        };
        const choice = opts.profile
          ? { settings: configured, reason: 'from --profile' }
          : chooseProfile(await detectDevices(), configured);
        if (opts.codec !== 'h264' && opts.codec !== 'vp8') throw new Error('--codec must be h264 or vp8');
        const settings = {
          ...DEFAULT_SETTINGS,
          ...choice.settings,
          codec: opts.codec,
        } as typeof DEFAULT_SETTINGS;
        const launch = buildLaunchStrings(loadPipelineSet(settings.profile), settings);
        if (opts.print)
          for (const [name, text] of Object.entries(launch)) console.log(`${name}:\n  ${text}\n`);
        const missing = await missingElements(launch);
        for (const m of missing)
          console.error(`missing GStreamer element "${m.element}" (pipeline ${m.pipeline})`);
        console.log(
          `profile ${settings.profile} (${choice.reason}), codec ${settings.codec}: ${missing.length === 0 ? 'all elements present' : `${missing.length} missing`}`,
        );
        if (missing.length > 0) process.exitCode = 1;
      },
    );
}
