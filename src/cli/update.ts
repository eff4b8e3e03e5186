// `sealroom update status|check|apply|rollback` for technicians, and `boot-check` / `gate` for the
// service units: the device's A/B updater (device/update/) fed by the TUF client
// (src/update/tuf-client.ts). Nothing is installed that the client did not verify against the
// signed metadata; there is deliberately no option to install a local, unverified bundle.
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import { updateRootOf } from '../../device/update/boot-check.js';
import { DEFAULT_UPDATE_ROOT } from '../../device/update/slots.js';

export const DEFAULT_UPDATE_CONFIG = '/etc/sealroom/update.json';

interface RootOptions {
  root: string;
  json?: boolean;
}

interface RepoOptions extends RootOptions {
  config: string;
  metadataUrl?: string;
  targetsUrl?: string;
  trustedRoot?: string;
  channel?: string;
  cacheDir?: string;
}

export interface UpdateConfig {
  metadataUrl: string;
  targetsUrl: string;
  /** Path of the root.json shipped with the box (trusted on first use only when nothing is cached). */
  trustedRoot: string;
  channel: string;
  cacheDir: string;
}

/** The update root this program runs from (the .deb's /usr/lib/sealroom), else the updater's default. */
function defaultRoot(): string {
  try {
    return updateRootOf(findPackageRoot()) ?? DEFAULT_UPDATE_ROOT;
  } catch {
    return DEFAULT_UPDATE_ROOT;
  }
}

const rootOption = (c: Command) =>
  c.option('--root <dir>', 'update root holding slots/, current and update-state.json', defaultRoot());

const repoOptions = (c: Command) =>
  rootOption(c)
    .option(
      '--config <file>',
      'update settings (JSON: metadataUrl, targetsUrl, trustedRoot, channel, cacheDir)',
      DEFAULT_UPDATE_CONFIG,
    )
    .option('--metadata-url <url>', 'TUF metadata base URL (overrides the settings file)')
    .option('--targets-url <url>', 'TUF targets base URL (overrides the settings file)')
    .option('--trusted-root <file>', "the repository's root.json shipped with the box")
    .option('--channel <name>', 'release channel (e.g. stable, canary)')
    .option('--cache-dir <dir>', 'TUF metadata cache and downloads');

async function loadConfig(o: RepoOptions): Promise<UpdateConfig> {
  let file: Partial<UpdateConfig> = {};
  try {
    file = JSON.parse(await readFile(o.config, 'utf8')) as Partial<UpdateConfig>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`${o.config}: ${(err as Error).message}`);
  }
  const c = {
    metadataUrl: o.metadataUrl ?? file.metadataUrl,
    targetsUrl: o.targetsUrl ?? file.targetsUrl,
    trustedRoot: o.trustedRoot ?? file.trustedRoot,
    channel: o.channel ?? file.channel ?? 'stable',
    cacheDir: o.cacheDir ?? file.cacheDir ?? '/var/lib/sealroom/update-cache',
  };
  const missing = (['metadataUrl', 'targetsUrl', 'trustedRoot'] as const).filter((k) => !c[k]);
  if (missing.length)
    throw new Error(
      `missing ${missing.join(', ')}: pass --metadata-url/--targets-url/--trusted-root or write ${o.config}`,
    );
  return c as UpdateConfig;
}

async function updater(root: string) {
  const { Updater } = await import('../../device/update/updater.js');
  return new Updater({ root });
}

async function client(c: UpdateConfig) {
  const { UpdateClient } = await import('../update/tuf-client.js');
  return new UpdateClient({
    metadataUrl: c.metadataUrl,
    targetsUrl: c.targetsUrl,
    cacheDir: c.cacheDir,
    trustedRootJson: await readFile(c.trustedRoot),
  });
}

const arch = (): 'x64' | 'arm64' => (process.arch === 'arm64' ? 'arm64' : 'x64');

function restartService(unit: string): void {
  const r = spawnSync('systemctl', ['restart', unit], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`systemctl restart ${unit} failed (${r.status ?? r.error?.message})`);
}

function print(json: boolean | undefined, value: unknown, text: string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text);
}

export async function runUpdateStatus(o: RootOptions): Promise<void> {
  const s = await (await updater(o.root)).status();
  if (!s.state) {
    print(o.json, s, `${o.root}: not installed in A/B slots (no update-state.json)`);
    return;
  }
  const st = s.state;
  const lines = [
    `running:   ${st.committedVersion} (slot ${st.current})${st.pending ? '' : ' committed'}`,
    st.pending
      ? `on trial:  ${st.pending.version} (slot ${st.pending.slot}), started ${st.pending.attempts} time(s), commits by ${st.pending.deadline} or rolls back`
      : undefined,
    st.previous
      ? `previous:  ${st.previous.version} (slot ${st.previous.slot}) — sealroom update rollback`
      : undefined,
    `current -> slots/${s.linked ?? '?'}`,
    `slot a:    ${s.slots.a?.version ?? '(empty)'}    slot b: ${s.slots.b?.version ?? '(empty)'}`,
    st.rejected?.length ? `rolled back before: ${st.rejected.join(', ')}` : undefined,
    st.last
      ? `last:      ${st.last.kind} ${st.last.version} at ${st.last.at}${st.last.detail ? ` (${st.last.detail})` : ''}`
      : undefined,
  ].filter(Boolean);
  print(o.json, s, lines.join('\n'));
}

export async function runUpdateCheck(o: RepoOptions): Promise<void> {
  const c = await loadConfig(o);
  const s = await (await updater(o.root)).status();
  if (!s.state) throw new Error(`${o.root}: not installed in A/B slots`);
  const target = await (await client(c)).check({
    channel: c.channel,
    arch: arch(),
    currentVersion: s.state.committedVersion,
  });
  print(
    o.json,
    { current: s.state.committedVersion, available: target ?? null },
    target
      ? `${target.version} is available on ${c.channel} (${target.length} bytes; running ${s.state.committedVersion}): sealroom update apply`
      : `up to date: ${s.state.committedVersion} is the newest on ${c.channel}`,
  );
}

export async function runUpdateApply(
  o: RepoOptions & { restart?: boolean; unit: string; force?: boolean },
): Promise<void> {
  const c = await loadConfig(o);
  const u = await updater(o.root);
  const s = await u.status();
  if (!s.state) throw new Error(`${o.root}: not installed in A/B slots`);
  const tuf = await client(c);
  const target = await tuf.check({
    channel: c.channel,
    arch: arch(),
    currentVersion: s.state.committedVersion,
  });
  if (!target) {
    print(o.json, { applied: null }, `up to date: ${s.state.committedVersion}`);
    return;
  }
  const downloads = join(c.cacheDir, 'downloads');
  await mkdir(downloads, { recursive: true, mode: 0o700 });
  const file = join(downloads, `sealroom-${target.version}.tar.gz`);
  let shown = -1;
  await tuf.download(target, file, {
    onProgress: ({ received, total }) => {
      const pct = total ? Math.floor((received / total) * 100) : 0;
      if (!o.json && pct >= shown + 10) {
        shown = pct;
        process.stderr.write(`downloading ${target.version}: ${pct}%\n`);
      }
    },
  });
  const r = await u.apply(file, { expectedVersion: target.version, ...(o.force ? { force: true } : {}) });
  await rm(file, { force: true });
  print(
    o.json,
    { applied: r },
    `${r.version} installed in slot ${r.slot} and switched to, on trial until its health gate passes.` +
      (o.restart ? '' : `\nRestart the service to run it: systemctl restart ${o.unit}`),
  );
  if (o.restart) restartService(o.unit);
}

export async function runUpdateRollback(
  o: RootOptions & { restart?: boolean; unit: string; reason?: string },
): Promise<void> {
  const r = await (await updater(o.root)).rollback(
    o.reason ?? 'asked by a technician (sealroom update rollback)',
  );
  print(
    o.json,
    { rolledBackTo: r },
    `back to ${r.version} (slot ${r.slot}).` +
      (o.restart ? '' : `\nRestart the service to run it: systemctl restart ${o.unit}`),
  );
  if (o.restart) restartService(o.unit);
}

export function registerUpdateCommand(program: Command): void {
  const update = program
    .command('update')
    .description('signed over-the-air updates of this box: A/B slots, health gate, rollback')
    .addHelpText(
      'after',
      '\nA new version is downloaded and verified against the signed TUF metadata, installed in the inactive\n' +
        'slot and switched to on trial; it is committed once its health gate passes (self-test, kiosk, relay)\n' +
        'and rolled back by itself otherwise. See docs/updates.md.',
    );

  rootOption(
    update.command('status').description('which version runs, which is on trial, what can be rolled back'),
  )
    .option('--json', 'print JSON')
    .action(async (o: RootOptions) => runUpdateStatus(o));

  repoOptions(
    update
      .command('check')
      .description('ask the release repository whether a newer version is signed for this box'),
  )
    .option('--json', 'print JSON')
    .action(async (o: RepoOptions) => runUpdateCheck(o));

  repoOptions(
    update
      .command('apply')
      .description(
        'download, verify and install the newest signed version into the inactive slot and switch to it',
      ),
  )
    .option('--restart', 'restart the service afterwards (systemctl restart <unit>)')
    .option('--unit <name>', 'the service to restart', 'sealroom-daemon.service')
    .option('--force', 'install even a version that was rolled back on this box before')
    .option('--json', 'print JSON')
    .action(async (o: RepoOptions & { restart?: boolean; unit: string; force?: boolean }) =>
      runUpdateApply(o),
    );

  rootOption(
    update
      .command('rollback')
      .description(
        'go back: cancel the version on trial, or return from the committed version to the previous one',
      ),
  )
    .option('--restart', 'restart the service afterwards (systemctl restart <unit>)')
    .option('--unit <name>', 'the service to restart', 'sealroom-daemon.service')
    .option('--reason <text>', 'recorded in update-state.json')
    .option('--json', 'print JSON')
    .action(async (o: RootOptions & { restart?: boolean; unit: string; reason?: string }) =>
      runUpdateRollback(o),
    );

  rootOption(
    update
      .command('boot-check')
      .description(
        "for the service's ExecStartPre: count this start, roll back a version on trial out of attempts or past its deadline, or a crash loop",
      ),
  )
    .option('--json', 'print JSON')
    .action(async (o: RootOptions) => {
      const d = await (await updater(o.root)).bootCheck();
      print(
        o.json,
        d,
        `${d.action}: ${d.version} (slot ${d.slot})${d.reason ? ` — ${d.reason}` : ''}${d.repaired ? ' [symlink repaired]' : ''}`,
      );
    });

  rootOption(
    update
      .command('gate')
      .description(
        'run the health gate against the running daemon: commit the version on trial, or roll it back',
      ),
  )
    .option('--control-url <url>', "the daemon's local control server", 'http://127.0.0.1:8421')
    .option('--timeout <seconds>', 'time for every check to pass', '120')
    .option('--no-relay', 'do not require the relay connection (a box without a relay configured)')
    .option('--restart', 'restart the service after a rollback')
    .option('--unit <name>', 'the service to restart', 'sealroom-daemon.service')
    .option('--json', 'print JSON')
    .action(
      async (
        o: RootOptions & {
          controlUrl: string;
          timeout: string;
          relay: boolean;
          restart?: boolean;
          unit: string;
        },
      ) => {
        const { deviceHealthChecks } = await import('../../device/update/health-gate.js');
        const { Updater } = await import('../../device/update/updater.js');
        const u = new Updater({
          root: o.root,
          ...(o.restart ? { restart: () => restartService(o.unit) } : {}),
        });
        const r = await u.gate(deviceHealthChecks(o.controlUrl, { relay: o.relay }), {
          timeoutMs: Number(o.timeout) * 1000,
        });
        const lines = r.result.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
        print(o.json, r, `${r.outcome}\n${lines.join('\n')}`);
        if (!r.result.ok) process.exitCode = 1;
      },
    );
}
