// The integration files in device/system/: systemd units checked by systemd-analyze, the udev rule's
// syntax and coverage, the maintainer scripts' shell syntax, and a .deb built from them.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_KIOSK_TOKEN_FILE } from '../device/kiosk/cli.js';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';

const root = findPackageRoot();
const system = join(root, 'device', 'system');
const scratch = mkdtempSync(join(tmpdir(), 'sealroom-system-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function unitSettings(file: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of readFileSync(join(system, file), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  return settings;
}

describe('systemd units', () => {
  it('pass systemd-analyze verify', () => {
    // verify insists that ExecStart exists; point it at a stand-in for the installed CLI.
    const stub = join(scratch, 'sealroom');
    writeFileSync(stub, '#!/bin/sh\nexit 0\n');
    chmodSync(stub, 0o755);
    const units = ['sealroom-daemon.service', 'sealroom-kiosk.service'].map((name) => {
      const path = join(scratch, name);
      writeFileSync(path, readFileSync(join(system, name), 'utf8').replaceAll('/usr/bin/sealroom', stub));
      return path;
    });
    const out = execFileSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8', stdio: 'pipe' });
    expect(out).toBe('');
  });

  it('make the daemon a notify service with a watchdog, and the kiosk a seat session on tty1', () => {
    const daemon = unitSettings('sealroom-daemon.service');
    expect(daemon.get('Type')).toEqual(['notify']);
    expect(daemon.get('NotifyAccess')).toEqual(['all']);
    expect(daemon.get('WatchdogSec')).toEqual(['30s']);
    expect(daemon.get('ExecStart')![0]).toMatch(/^\/usr\/bin\/sealroom daemon /);
    expect(daemon.get('User')).toEqual(['sealroom']);
    const kiosk = unitSettings('sealroom-kiosk.service');
    expect(kiosk.get('ExecStart')![0]).toMatch(
      /^\/usr\/bin\/sealroom kiosk --url http:\/\/127\.0\.0\.1:7480\//,
    );
    expect(kiosk.get('PAMName')).toEqual(['login']);
    expect(kiosk.get('TTYPath')).toEqual(['/dev/tty1']);
    expect(kiosk.get('User')).toEqual(['sealroom-kiosk']);
  });
});

describe('the kiosk token between the two units', () => {
  const daemon = unitSettings('sealroom-daemon.service');
  const kiosk = unitSettings('sealroom-kiosk.service');

  it('is written where the kiosk reads it, readable by the kiosk user and nobody else', () => {
    const runtime = daemon.get('RuntimeDirectory');
    expect(runtime).toEqual(['sealroom']);
    // Group may enter and read; others nothing. The state directory (identity key) stays 0700.
    expect(daemon.get('RuntimeDirectoryMode')).toEqual(['0750']);
    expect(daemon.get('StateDirectoryMode')).toEqual(['0700']);
    const daemonExec = daemon.get('ExecStart')![0]!;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's environment syntax, not a template
    expect(daemonExec).toContain('--kiosk-token-file ${RUNTIME_DIRECTORY}/kiosk-token');
    const mode = /--kiosk-token-mode (0[0-7]{3})/.exec(daemonExec)?.[1];
    expect(mode).toBe('0640');
    expect(Number.parseInt(mode!, 8) & 0o007).toBe(0);

    const tokenFile = /--token-file (\S+)/.exec(kiosk.get('ExecStart')![0]!)?.[1];
    expect(tokenFile).toBe(`/run/${runtime![0]}/kiosk-token`);
    expect(tokenFile).toBe(DEFAULT_KIOSK_TOKEN_FILE);
    // The kiosk user reads it as a member of the daemon's group; it is not the daemon's user.
    expect(kiosk.get('SupplementaryGroups')?.join(' ').split(/\s+/)).toContain(daemon.get('Group')![0]);
    expect(kiosk.get('User')).not.toEqual(daemon.get('User'));
  });

  it('uses options the CLI has', () => {
    const help = (cmd: string) =>
      execFileSync(
        process.execPath,
        ['--import', 'tsx', join(root, 'src', 'cli', 'sealroom.ts'), cmd, '--help'],
        {
          cwd: root,
          encoding: 'utf8',
        },
      );
    const daemonHelp = help('daemon');
    expect(daemonHelp).toContain('--kiosk-token-file <file>');
    expect(daemonHelp).toContain('--kiosk-token-mode <octal>');
    expect(help('kiosk')).toContain('--token-file <file>');
  }, 60_000);
});

describe('udev rule', () => {
  const rules = readFileSync(join(system, '60-sealroom-hid.rules'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));

  it('is made of well-formed key/operator/value items', () => {
    const item = /^(ACTION|SUBSYSTEM|KERNEL|ATTRS\{\w+\}|GROUP|MODE|TAG|GOTO|LABEL)(==|!=|\+=|=)"[^"]*"$/;
    for (const rule of rules) {
      for (const part of rule.split(/,\s*/)) expect(part, rule).toMatch(item);
    }
    expect(rules.at(-1)).toBe('LABEL="sealroom_hid_end"');
  });

  it('grants the daemon group access to the vendors of the shipped descriptors, hidraw only', () => {
    const vendors = rules.flatMap((r) =>
      [...r.matchAll(/ATTRS\{idVendor\}=="([0-9a-f]{4})"/g)].map((m) => m[1]),
    );
    expect(vendors).toEqual(expect.arrayContaining(['0b0e', '047f', '6993', '291a']));
    for (const rule of rules.filter((r) => r.includes('idVendor'))) {
      expect(rule).toContain('GROUP="sealroom", MODE="0660", TAG+="uaccess"');
    }
    expect(rules).toContain('SUBSYSTEM!="hidraw", GOTO="sealroom_hid_end"');
  });
});

describe('Debian packaging', () => {
  it('maintainer scripts are valid POSIX shell', () => {
    for (const script of ['postinst', 'prerm', 'postrm']) {
      execFileSync('sh', ['-n', join(system, 'debian', script)]);
    }
    execFileSync('bash', ['-n', join(system, 'build-deb.sh')]);
  });

  it('builds a package with the units, the udev rule and the CLI', () => {
    expect(existsSync(join(root, 'dist', 'src', 'cli', 'sealroom.js'))).toBe(true);
    const out = join(scratch, 'deb');
    const deb = execFileSync(join(system, 'build-deb.sh'), ['--out', out, '--without-node-modules'], {
      encoding: 'utf8',
    }).trim();
    expect(readdirSync(out)).toEqual([deb.split('/').pop()]);
    const field = (name: string) =>
      execFileSync('dpkg-deb', ['--field', deb, name], { encoding: 'utf8' }).trim();
    expect(field('Package')).toBe('sealroom');
    expect(field('Depends')).toMatch(/chromium, cage/);
    const contents = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' });
    for (const path of [
      './lib/systemd/system/sealroom-daemon.service',
      './lib/systemd/system/sealroom-kiosk.service',
      './lib/udev/rules.d/60-sealroom-hid.rules',
      './etc/default/sealroom',
      './usr/lib/sealroom/slots/a/dist/kiosk-ui/index.html',
      './usr/lib/sealroom/slots/a/sealroom-release.json',
      './usr/lib/sealroom/slots/b/',
      './usr/lib/sealroom/current -> slots/a',
      './usr/lib/sealroom/boot/boot-check.js',
      './usr/lib/sealroom/boot/updater.js',
      './usr/bin/sealroom -> ../lib/sealroom/current/dist/src/cli/sealroom.js',
    ]) {
      expect(contents).toContain(path);
    }
    expect(contents).toMatch(
      /-rwxr-xr-x root\/root\s+\d+ \S+ \S+ \.\/usr\/lib\/sealroom\/slots\/a\/dist\/src\/cli\/sealroom\.js/,
    );

    // The A/B layout works as installed: postinst's update-state.json, then the boot check from the
    // package's own copy (outside the slots) picks slot a.
    const tree = join(scratch, 'tree');
    execFileSync('dpkg-deb', ['-x', deb, tree]);
    const app = join(tree, 'usr', 'lib', 'sealroom');
    const manifest = JSON.parse(readFileSync(join(app, 'slots', 'a', 'sealroom-release.json'), 'utf8'));
    expect(manifest).toMatchObject({ name: 'sealroom', version: field('Version') });
    const postinst = readFileSync(join(system, 'debian', 'postinst'), 'utf8');
    expect(postinst).toContain('"format":1,"current":"a","committedVersion":"%s"');
    writeFileSync(
      join(app, 'update-state.json'),
      JSON.stringify({ format: 1, current: 'a', committedVersion: manifest.version }),
    );
    const check = execFileSync(process.execPath, [join(app, 'boot', 'boot-check.js'), '--root', app], {
      encoding: 'utf8',
    });
    expect(check).toContain(`start: ${manifest.version} (slot a)`);
  });

  it('runs the boot check before every start, from outside the slots, never blocking the start', () => {
    const daemon = unitSettings('sealroom-daemon.service');
    expect(daemon.get('ExecStartPre')).toEqual([
      '-/usr/bin/node /usr/lib/sealroom/boot/boot-check.js --root /usr/lib/sealroom',
    ]);
    expect(daemon.get('ReadWritePaths')).toEqual(['/usr/lib/sealroom']);
    expect(daemon.get('Restart')).toEqual(['always']);
  });
});
