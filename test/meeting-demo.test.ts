// `npm start` runs `sealroom demo`: the provisioning service, a relay and two room daemons as real
// processes on loopback; the rooms enroll with activation codes, get certificates from the org CA,
// and meet in an E2EE meeting. Provisioning is HTTPS end to end: rooms pin the service's TLS CA, the
// relay fetches the CRL over HTTPS trusting only that CA, IT's admin line carries --tls-ca. Run
// briefly (stdin not a TTY, --duration): it prints both kiosk URLs (each with its room's wall token)
// and the same security code twice, stops by itself, and leaves no process (and no token) behind.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { certificateSha256 } from '../provisioning/client/tls-pin.js';

describe('sealroom demo (npm start)', () => {
  it('brings up relay and two rooms, prints kiosk URLs and matching security codes, and stops by itself', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/sealroom.ts', 'demo', '--media', 'synthetic', '--duration', '2', '--keep'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn' },
      },
    );
    child.stdin.end();
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(err).not.toMatch(/sealroom demo:/);
    expect(code).toBe(0);
    expect(out).toMatch(/provisioning\s+https:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/provisioning TLS\s+CA \S+\/tls\/ca\.pem\s+\(SHA-256 [0-9a-f]{64}\)/);
    expect(out).toMatch(/sealroom admin list --url https:\/\/127\.0\.0\.1:\d+ --tls-ca \S+\/tls\/ca\.pem/);
    expect(out).toMatch(/enrolled\s+Boardroom with activation code [A-Z0-9]{4}-[A-Z0-9]{4}/);
    expect(out).toMatch(/enrolled\s+Huddle Room with activation code/);
    // Each kiosk URL carries its room's wall token in the fragment (a fresh one per room and start).
    const tokens = ['Boardroom', 'Huddle Room'].map(
      (room) =>
        new RegExp(`${room} kiosk\\s+http://127\\.0\\.0\\.1:\\d+/#wall=([A-Za-z0-9_-]{43})\\s`).exec(
          out,
        )?.[1],
    );
    expect(tokens[0]).toBeDefined();
    expect(tokens[1]).toBeDefined();
    expect(tokens[0]).not.toBe(tokens[1]);
    const codes = [...out.matchAll(/((?:\d{5} ){7}\d{5})/g)].map((m) => m[1]);
    expect(codes).toHaveLength(2);
    expect(codes[0]).toBe(codes[1]);
    expect(out).toMatch(/media\s+flowing: the relay has forwarded \d+ encrypted RTP packets/);
    expect(out).toMatch(/Stopped\./);
    // Every part it started is gone: its kiosk port no longer answers.
    const kiosk = /Boardroom kiosk\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? '';
    await expect(fetch(`${kiosk}/healthz`)).rejects.toThrow();
    // HTTPS end to end, as kept by --keep: both rooms pinned the service's TLS CA (the fingerprint the
    // demo printed), and the relay holds the CRL it fetched over HTTPS.
    const demoDir = /\(log (\S+)\/relay\.log\)/.exec(out)?.[1] ?? '';
    try {
      const sha = /SHA-256 ([0-9a-f]{64})/.exec(out)?.[1];
      for (const room of ['room-0', 'room-1']) {
        expect(certificateSha256(readFileSync(join(demoDir, room, 'provisioning-ca.pem'), 'utf8'))).toBe(sha);
        // A stopped room leaves no kiosk token behind.
        expect(existsSync(join(demoDir, room, 'kiosk-token'))).toBe(false);
      }
      expect(readdirSync(join(demoDir, 'relay-state')).some((f) => /^crl-[0-9a-f]+\.der$/.test(f))).toBe(
        true,
      );
    } finally {
      if (demoDir.includes('sealroom-demo-')) rmSync(demoDir, { recursive: true, force: true });
    }
  }, 180_000);
});
