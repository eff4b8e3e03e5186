// npm run powercut -- [--trials N] [--scenario a,b] [--random-kills N] [--sample N]
//
// Power cut at every write of device state. For each kind of state (identity key, enrollment state,
// certificates, config, CRL, partner CAs, the pinned CA, an org-CA rollover) a child process runs the
// real writer with node:fs/promises instrumented: every open / write / fsync / close / rename /
// mkdir / unlink is one step, journalled before it runs. The harness runs the writer once per step
// and SIGKILLs it right before that step (and, for writes, in the middle of the write: a torn write).
// Then it simulates the power cut on top of what the killed process left: from the journal it
// rebuilds what the disk could hold after losing power — file data not fsynced may be lost or
// half-written, directory changes (create, rename, unlink, mkdir) not made durable by an fsync of
// their directory may be lost, in journal order (any prefix survives) — materialises every distinct
// disk image, and reads the state back with the device's own readers. Each image must read back as a
// valid state, the old or the new one; once the writer returned (a mark in the journal), only the new.
// Random SIGKILLs (without power loss) are added on top. Prints figures and a final JSON line.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitWithUsageIfAsked } from './usage.js';

exitWithUsageIfAsked(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Scenarios: old state, the writer (run in the child), the reader, the expected states.

interface Plan {
  stateDir: string;
  [k: string]: unknown;
}

interface Scenario {
  name: string;
  /** Which device state this covers. */
  covers: string;
  /** Writes the old state (treated as durable) and returns what the child needs. */
  prepare(base: string): Promise<Plan>;
  /** The writer, in the child. Calls mark() after each completed step. */
  write(plan: Plan, mark: () => void): Promise<void>;
  /** The device reading its state back after a restart: a canonical value, or throws. */
  read(stateDir: string, plan: Plan): Promise<string>;
  /** Values after step 0 (old) … n (new); `written` = every buffer the writer wrote. */
  states(plan: Plan, written: Buffer[]): string[];
}

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);
const exists = (p: string) => fs.existsSync(p);
const readText = (p: string) => fs.readFileSync(p, 'utf8');

async function pki() {
  return import('../src/pki/index.js');
}
async function atomic() {
  return import('../src/util/atomic-file.js');
}

interface CaAndCerts {
  ca: import('../src/pki/index.js').CertificateAuthority;
  keyPem: string;
  deviceId: string;
  certs: { certPem: string; serial: string }[];
}

async function deviceWithCerts(n: number): Promise<CaAndCerts> {
  const p = await pki();
  const { issueDeviceCertificateDetailed } = await import('../src/pki/issue.js');
  const ca = await p.createCertificateAuthority({
    commonName: 'Powercut CA',
    org: 'Powercut',
    validityDays: 30,
  });
  const key = p.generateIdentityKey();
  const deviceId = p.deviceIdForPublicKey(key.publicKey);
  const csrPem = await p.createCsr(key, { deviceId });
  const certs = [];
  for (let i = 0; i < n; i++) {
    const c = await issueDeviceCertificateDetailed({
      ca,
      csrPem,
      deviceId,
      roomName: 'Room',
      org: 'Powercut',
      site: 'Lab',
      validityDays: 30,
    });
    certs.push({ certPem: c.certPem, serial: c.serial });
  }
  return { ca, keyPem: p.identityKeyToPem(key), deviceId, certs };
}

function enrolledState(
  deviceId: string,
  cert: { certPem: string; serial: string },
  caPem: string,
  configVersion: number,
) {
  return {
    version: 1,
    state: {
      phase: 'enrolled',
      deviceId,
      certificate: {
        certPem: cert.certPem,
        caCertPem: caPem,
        serial: cert.serial,
        notAfter: new Date(Date.now() + 864e5).toISOString(),
        roomName: 'Room',
        site: 'Lab',
        org: 'Powercut',
      },
      config: { volume: configVersion * 10 },
      configVersion,
      renewalDue: false,
    },
  };
}

/** The enrollment runner's reader: enrollment.json, and in 'enrolled' the certificate files. */
async function readEnrollment(dir: string): Promise<string> {
  const { readJsonIfExists } = await atomic();
  const saved = await readJsonIfExists<{
    version: number;
    state: { phase?: string; deviceId?: string; certificate?: { serial?: string }; configVersion?: number };
  }>(join(dir, 'enrollment.json'));
  if (!saved) return 'none';
  if (saved.version !== 1 || typeof saved.state?.phase !== 'string')
    throw new Error('enrollment.json without a state');
  const st = saved.state;
  if (st.phase !== 'enrolled') return st.phase as string;
  const p = await pki();
  const certPem = readText(join(dir, 'device.pem'));
  const caPem = readText(join(dir, 'ca.pem'));
  const v = await p.verifyDeviceCertificate(certPem, caPem);
  if (v.deviceId !== st.deviceId) throw new Error('device.pem is for another device');
  return `enrolled:json=${st.certificate?.serial}:file=${v.serial ?? sha(certPem)}:config=${st.configVersion}`;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'identity',
    covers:
      'identity key at first boot (device/identity loadOrCreateIdentity), state directory not there yet',
    async prepare(base) {
      return { stateDir: join(base, 'var', 'sealroom') };
    },
    async write(plan, mark) {
      const { loadOrCreateIdentity } = await import('../device/identity/index.js');
      await loadOrCreateIdentity(plan.stateDir);
      mark();
    },
    async read(dir) {
      if (!exists(join(dir, 'identity.key'))) return 'none';
      const { loadOrCreateIdentity } = await import('../device/identity/index.js');
      const id = await loadOrCreateIdentity(dir);
      if (id.created) throw new Error('identity made anew');
      return `key:${id.deviceId}`;
    },
    states(_plan, written) {
      const pem = written.map((b) => b.toString('utf8')).find((t) => t.includes('PRIVATE KEY'));
      if (!pem) return ['none'];
      const { createPrivateKey, createPublicKey } = createRequire(import.meta.url)(
        'node:crypto',
      ) as typeof import('node:crypto');
      const raw = createPublicKey(createPrivateKey(pem))
        .export({ format: 'der', type: 'spki' })
        .subarray(-32);
      return ['none', `key:${deviceIdSync(raw)}`];
    },
  },
  {
    name: 'enrollment',
    covers:
      'enrollment: device.pem, ca.pem, then enrollment.json (awaiting-claim → enrolled), as the runner writes them',
    async prepare(base) {
      const d = await deviceWithCerts(1);
      const stateDir = join(base, 'state');
      fs.mkdirSync(stateDir, { recursive: true });
      fs.writeFileSync(join(stateDir, 'identity.key'), d.keyPem);
      fs.writeFileSync(
        join(stateDir, 'enrollment.json'),
        JSON.stringify({
          version: 1,
          state: {
            phase: 'awaiting-claim',
            deviceId: d.deviceId,
            enrollmentId: 'e1',
            activationCode: 'ABCD-EFGH',
            expiresAt: new Date().toISOString(),
            claimUrl: 'https://x/claim',
          },
        }),
      );
      return {
        stateDir,
        certPem: d.certs[0]!.certPem,
        caPem: d.ca.certPem,
        serial: d.certs[0]!.serial,
        json: JSON.stringify(enrolledState(d.deviceId, d.certs[0]!, d.ca.certPem, 1)),
      };
    },
    async write(plan, mark) {
      const { writeFileAtomic } = await atomic();
      await writeFileAtomic(join(plan.stateDir, 'device.pem'), plan.certPem as string, 0o644);
      mark();
      await writeFileAtomic(join(plan.stateDir, 'ca.pem'), plan.caPem as string, 0o644);
      mark();
      await writeFileAtomic(join(plan.stateDir, 'enrollment.json'), plan.json as string, 0o600);
      mark();
    },
    read: readEnrollment,
    states: (plan) => [
      'awaiting-claim',
      'awaiting-claim',
      'awaiting-claim',
      `enrolled:json=${plan.serial}:file=${plan.serial}:config=1`,
    ],
  },
  {
    name: 'config',
    covers: 'config from a heartbeat reply (enrollment.json configVersion 1 → 2)',
    async prepare(base) {
      const d = await deviceWithCerts(1);
      const stateDir = join(base, 'state');
      fs.mkdirSync(stateDir, { recursive: true });
      fs.writeFileSync(join(stateDir, 'device.pem'), d.certs[0]!.certPem);
      fs.writeFileSync(join(stateDir, 'ca.pem'), d.ca.certPem);
      fs.writeFileSync(
        join(stateDir, 'enrollment.json'),
        JSON.stringify(enrolledState(d.deviceId, d.certs[0]!, d.ca.certPem, 1)),
      );
      return {
        stateDir,
        serial: d.certs[0]!.serial,
        json: JSON.stringify(enrolledState(d.deviceId, d.certs[0]!, d.ca.certPem, 2)),
      };
    },
    async write(plan, mark) {
      const { writeFileAtomic } = await atomic();
      await writeFileAtomic(join(plan.stateDir, 'enrollment.json'), plan.json as string, 0o600);
      mark();
    },
    read: readEnrollment,
    states: (p) => [1, 2].map((v) => `enrolled:json=${p.serial}:file=${p.serial}:config=${v}`),
  },
  {
    name: 'renewal',
    covers: 'certificate renewal: device.pem, then enrollment.json with the new certificate',
    async prepare(base) {
      const d = await deviceWithCerts(2);
      const stateDir = join(base, 'state');
      fs.mkdirSync(stateDir, { recursive: true });
      fs.writeFileSync(join(stateDir, 'device.pem'), d.certs[0]!.certPem);
      fs.writeFileSync(join(stateDir, 'ca.pem'), d.ca.certPem);
      fs.writeFileSync(
        join(stateDir, 'enrollment.json'),
        JSON.stringify(enrolledState(d.deviceId, d.certs[0]!, d.ca.certPem, 1)),
      );
      return {
        stateDir,
        s1: d.certs[0]!.serial,
        s2: d.certs[1]!.serial,
        certPem: d.certs[1]!.certPem,
        json: JSON.stringify(enrolledState(d.deviceId, d.certs[1]!, d.ca.certPem, 1)),
      };
    },
    async write(plan, mark) {
      const { writeFileAtomic } = await atomic();
      await writeFileAtomic(join(plan.stateDir, 'device.pem'), plan.certPem as string, 0o644);
      mark();
      await writeFileAtomic(join(plan.stateDir, 'enrollment.json'), plan.json as string, 0o600);
      mark();
    },
    read: readEnrollment,
    states: (p) => [
      `enrolled:json=${p.s1}:file=${p.s1}:config=1`,
      `enrolled:json=${p.s1}:file=${p.s2}:config=1`,
      `enrolled:json=${p.s2}:file=${p.s2}:config=1`,
    ],
  },
  {
    name: 'crl',
    covers: 'the newest CRL (<stateDir>/crl.der, CRL number 1 → 2), read back with verifyCrl',
    async prepare(base) {
      const p = await pki();
      const { issueCrl } = await import('../src/pki/crl.js');
      const ca = await p.createCertificateAuthority({
        commonName: 'Powercut CA',
        org: 'Powercut',
        validityDays: 30,
      });
      const now = new Date();
      const next = new Date(now.getTime() + 864e5);
      const c1 = await issueCrl(ca, { entries: [], crlNumber: 1n, thisUpdate: now, nextUpdate: next });
      const c2 = await issueCrl(ca, {
        entries: [{ serial: '0a1b2c', revokedAt: now }],
        crlNumber: 2n,
        thisUpdate: now,
        nextUpdate: next,
      });
      const stateDir = join(base, 'state');
      fs.mkdirSync(stateDir, { recursive: true });
      fs.writeFileSync(join(stateDir, 'ca.pem'), ca.certPem);
      fs.writeFileSync(join(stateDir, 'crl.der'), c1.der);
      return { stateDir, der: Buffer.from(c2.der).toString('base64') };
    },
    async write(plan, mark) {
      const { writeFileAtomic } = await atomic();
      await writeFileAtomic(join(plan.stateDir, 'crl.der'), Buffer.from(plan.der as string, 'base64'), 0o644);
      mark();
    },
    async read(dir) {
      if (!exists(join(dir, 'crl.der'))) return 'none';
      const { verifyCrl } = await import('../src/pki/crl.js');
      const crl = await verifyCrl(fs.readFileSync(join(dir, 'crl.der')), readText(join(dir, 'ca.pem')));
      return `crl:${crl.crlNumber}`;
    },
    states: () => ['crl:1', 'crl:2'],
  },
  {
    name: 'partner-cas',
    covers: 'trust anchors: the signed partner-CA bundle (partner-cas.json), read back with verifyPartnerCas',
    async prepare(base) {
      const p = await pki();
      const { signPartnerCas } = await import('../src/pki/partner-cas.js');
      const ca = await p.createCertificateAuthority({
        commonName: 'Powercut CA',
        org: 'Powercut',
        validityDays: 30,
      });
      const partner = await p.createCertificateAuthority({
        commonName: 'Partner CA',
        org: 'Partner',
        validityDays: 30,
      });
      const b1 = await signPartnerCas(ca, [], '2026-01-01T00:00:00.000Z');
      const b2 = await signPartnerCas(ca, [partner.certPem], '2026-02-01T00:00:00.000Z');
      const stateDir = join(base, 'state');
      fs.mkdirSync(stateDir, { recursive: true });
      fs.writeFileSync(join(stateDir, 'ca.pem'), ca.certPem);
      fs.writeFileSync(join(stateDir, 'partner-cas.json'), JSON.stringify(b1));
      return { stateDir, json: JSON.stringify(b2) };
    },
    async write(plan, mark) {
      const { writeFileAtomic } = await atomic();
      await writeFileAtomic(join(plan.stateDir, 'partner-cas.json'), plan.json as string, 0o644);
      mark();
    },
    async read(dir) {
      const { verifyPartnerCas } = await import('../src/pki/partner-cas.js');
      const b = verifyPartnerCas(
        JSON.parse(readText(join(dir, 'partner-cas.json'))),
        readText(join(dir, 'ca.pem')),
      );
      return `partners:${b.issuedAt}:${b.caPems.length}`;
    },
    states: () => ['partners:2026-01-01T00:00:00.000Z:0', 'partners:2026-02-01T00:00:00.000Z:1'],
  },
  {
    name: 'ca-pin',
    covers:
      'the provisioning TLS CA pinned at first use (provisioning-ca.pem) and an org-CA rollover (ca.pem replaced)',
    async prepare(base) {
      const p = await pki();
      const oldCa = await p.createCertificateAuthority({
        commonName: 'Old CA',
        org: 'Powercut',
        validityDays: 30,
      });
      const newCa = await p.createCertificateAuthority({
        commonName: 'New CA',
        org: 'Powercut',
        validityDays: 30,
      });
      const tlsCa = await p.createCertificateAuthority({
        commonName: 'TLS CA',
        org: 'Powercut',
        validityDays: 30,
      });
      const stateDir = join(base, 'state');
      fs.mkdirSync(stateDir, { recursive: true });
      fs.writeFileSync(join(stateDir, 'ca.pem'), oldCa.certPem);
      return { stateDir, tlsPem: tlsCa.certPem, newCaPem: newCa.certPem };
    },
    async write(plan, mark) {
      const { writeFileAtomic } = await atomic();
      await writeFileAtomic(join(plan.stateDir, 'provisioning-ca.pem'), plan.tlsPem as string, 0o644);
      mark();
      await writeFileAtomic(join(plan.stateDir, 'ca.pem'), plan.newCaPem as string, 0o644);
      mark();
    },
    async read(dir) {
      const { X509Certificate } = await import('node:crypto');
      const pin = exists(join(dir, 'provisioning-ca.pem'))
        ? new X509Certificate(readText(join(dir, 'provisioning-ca.pem'))).subject
            .split('\n')
            .find((l) => l.startsWith('CN='))
        : 'none';
      const ca = new X509Certificate(readText(join(dir, 'ca.pem'))).subject
        .split('\n')
        .find((l) => l.startsWith('CN='));
      return `pin=${pin}:ca=${ca}`;
    },
    states: () => ['pin=none:ca=CN=Old CA', 'pin=CN=TLS CA:ca=CN=Old CA', 'pin=CN=TLS CA:ca=CN=New CA'],
  },
];

/** A negative control, not in the default run: a plain (non-atomic, unsynced) rewrite of a JSON
 *  file. The harness must find violations here, or it is not testing anything. */
const CONTROL: Scenario = {
  name: 'naive-control',
  covers: 'negative control: fs.writeFile over enrollment.json (not atomic, no fsync)',
  async prepare(base) {
    const stateDir = join(base, 'state');
    fs.mkdirSync(stateDir, { recursive: true });
    fs.writeFileSync(
      join(stateDir, 'config.json'),
      JSON.stringify({ configVersion: 1, pad: 'x'.repeat(300) }),
    );
    return { stateDir, json: JSON.stringify({ configVersion: 2, pad: 'y'.repeat(300) }) };
  },
  async write(plan, mark) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(plan.stateDir, 'config.json'), plan.json as string);
    mark();
  },
  async read(dir) {
    return `config=${JSON.parse(readText(join(dir, 'config.json'))).configVersion}`;
  },
  states: () => ['config=1', 'config=2'],
};

/** deviceIdForPublicKey without importing the PKI module into the states() callback (sync). */
let deviceIdSync: (raw: Uint8Array) => string = () => 'unknown';

// ---------------------------------------------------------------------------------------------
// The child: instrumented fs, the writer.

interface JournalEntry {
  step: number;
  op: string;
  path?: string;
  to?: string;
  flags?: string;
  h?: number;
  data?: string;
  pos?: number | null;
  created?: string | null;
  ok?: boolean;
}

function installInterposer(
  journalPath: string,
  crashAt: number,
  torn: boolean,
): { mark: () => void; patchHandles: (proto: Record<string, unknown>) => void } {
  const require = createRequire(import.meta.url);
  const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
  const jfd = fs.openSync(journalPath, 'a');
  let step = 0;
  let depth = 0;
  let nextHandle = 1;
  let marks = 0;
  const handles = new WeakMap<object, number>();
  const log = (e: Omit<JournalEntry, 'step'>) => fs.writeSync(jfd, `${JSON.stringify({ step, ...e })}\n`);
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL');
    // SIGKILL to oneself is delivered at once; never go on meanwhile.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
    throw new Error('not killed');
  };
  /** One instrumented step: journalled, then maybe the power goes. Returns 'torn' for a torn write. */
  const point = (e: Omit<JournalEntry, 'step'>): 'go' | 'torn' => {
    step++;
    log(e);
    if (step === crashAt) {
      if (torn && e.op === 'write') return 'torn';
      die();
    }
    return 'go';
  };
  const wrap =
    <A extends unknown[], R>(
      fn: (...a: A) => Promise<R>,
      body: (orig: (...a: A) => Promise<R>, ...a: A) => Promise<R>,
    ) =>
    async (...a: A): Promise<R> => {
      if (depth > 0) return fn(...a);
      depth++;
      try {
        return await body(fn, ...a);
      } finally {
        depth--;
      }
    };
  const origOpen = fsp.open;
  (fsp as { open: unknown }).open = wrap(origOpen, async (orig, path, flags = 'r', mode) => {
    const h = nextHandle++;
    point({ op: 'open', path: resolve(String(path)), flags: String(flags), h });
    try {
      const fh = await orig(path, flags, mode);
      handles.set(fh, h);
      return fh;
    } catch (err) {
      log({ op: 'open-failed', h });
      throw err;
    }
  });
  (fsp as { rename: unknown }).rename = wrap(fsp.rename, async (orig, from, to) => {
    point({ op: 'rename', path: resolve(String(from)), to: resolve(String(to)) });
    return orig(from, to);
  });
  (fsp as { unlink: unknown }).unlink = wrap(fsp.unlink, async (orig, path) => {
    point({ op: 'unlink', path: resolve(String(path)) });
    return orig(path);
  });
  (fsp as { mkdir: unknown }).mkdir = wrap(
    fsp.mkdir as (p: fs.PathLike, o?: fs.MakeDirectoryOptions) => Promise<string | undefined>,
    async (orig, path, opts) => {
      point({ op: 'mkdir', path: resolve(String(path)) });
      const recursive = typeof opts === 'object' && opts?.recursive;
      const created = await orig(path, opts);
      log({
        op: 'mkdir-done',
        path: resolve(String(path)),
        created: recursive ? (created ?? null) : resolve(String(path)),
      });
      return created;
    },
  );
  (fsp as { writeFile: unknown }).writeFile = wrap(
    fsp.writeFile as (p: string, d: string | Uint8Array, o?: unknown) => Promise<void>,
    async (orig, path, data, opts) => {
      const buf = Buffer.from(data as string | Uint8Array);
      point({ op: 'write-path', path: resolve(String(path)), data: buf.toString('base64') });
      return orig(path, data, opts);
    },
  );
  syncBuiltinESMExports();
  return { mark: () => log({ op: 'mark', data: String(++marks) }), patchHandles: patchFileHandle };

  function patchFileHandle(proto: Record<string, unknown>): void {
    const origWriteFile = proto.writeFile as (this: object, d: unknown, o?: unknown) => Promise<void>;
    const origWrite = proto.write as (this: object, ...a: unknown[]) => Promise<unknown>;
    const origSync = proto.sync as (this: object) => Promise<void>;
    const origDatasync = proto.datasync as (this: object) => Promise<void>;
    const origClose = proto.close as (this: object) => Promise<void>;
    const guarded = <T>(self: object, body: () => Promise<T>, inner: () => Promise<T>) => {
      if (depth > 0 || !handles.has(self)) return inner();
      depth++;
      return body().finally(() => {
        depth--;
      });
    };
    proto.writeFile = function (this: object, data: unknown, opts?: unknown) {
      return guarded(
        this,
        async () => {
          const buf = Buffer.from(data as string | Uint8Array);
          if (
            point({ op: 'write', h: handles.get(this), data: buf.toString('base64'), pos: null }) === 'torn'
          ) {
            await origWriteFile.call(this, buf.subarray(0, buf.length >> 1));
            die();
          }
          return origWriteFile.call(this, data, opts);
        },
        () => origWriteFile.call(this, data, opts),
      );
    };
    proto.write = function (this: object, ...a: unknown[]) {
      return guarded(
        this,
        async () => {
          const [data, x, y, z] = a;
          let buf: Buffer;
          let pos: number | null = null;
          if (typeof data === 'string') {
            buf = Buffer.from(data, (typeof y === 'string' ? y : 'utf8') as BufferEncoding);
            pos = typeof x === 'number' ? x : null;
          } else {
            const src = Buffer.from(data as Uint8Array);
            const off = typeof x === 'number' ? x : 0;
            const len = typeof y === 'number' ? y : src.length - off;
            buf = src.subarray(off, off + len);
            pos = typeof z === 'number' ? z : null;
          }
          if (point({ op: 'write', h: handles.get(this), data: buf.toString('base64'), pos }) === 'torn') {
            await origWrite.call(this, buf.subarray(0, buf.length >> 1), 0, buf.length >> 1, pos);
            die();
          }
          return origWrite.apply(this, a);
        },
        () => origWrite.apply(this, a),
      );
    };
    // sync, datasync and close: a power cut may come just before each (nothing else to tear).
    for (const [name, op, orig] of [
      ['sync', 'fsync', origSync],
      ['datasync', 'fsync', origDatasync],
      ['close', 'close', origClose],
    ] as const) {
      proto[name] = function (this: object) {
        return guarded(
          this,
          async () => {
            point({ op, h: handles.get(this) });
            return orig.call(this);
          },
          () => orig.call(this),
        );
      };
    }
  }
}

async function child(): Promise<void> {
  const scenario = [...SCENARIOS, CONTROL].find((s) => s.name === arg('child'));
  if (!scenario) throw new Error(`unknown scenario ${arg('child')}`);
  const plan = JSON.parse(readText(arg('plan') as string)) as Plan;
  const journal = arg('journal') as string;
  const crashAt = Number(arg('crash-at') ?? 0);
  const torn = process.argv.includes('--torn');
  const require = createRequire(import.meta.url);
  const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
  // The FileHandle prototype, before the interposer wraps open().
  const fh = await fsp.open(journal, 'a');
  const proto = Object.getPrototypeOf(fh) as Record<string, unknown>;
  await fh.close();
  const ip = installInterposer(journal, crashAt, torn);
  ip.patchHandles(proto);
  await scenario.write(plan, ip.mark);
  fs.appendFileSync(journal, `${JSON.stringify({ step: -1, op: 'exit' })}\n`);
}

// ---------------------------------------------------------------------------------------------
// The parent: a model of the disk after a power cut, rebuilt from the journal.

type Entry = { kind: 'file'; ino: number } | { kind: 'dir'; path: string };
interface DirState {
  cur: Map<string, Entry>;
  dur: Map<string, Entry>;
}
interface Pending {
  dir: string;
  changes: { name: string; entry?: Entry }[];
}

class DiskModel {
  readonly dirs = new Map<string, DirState>();
  readonly inodes = new Map<number, { cur: Buffer; dur: Buffer }>();
  pending: Pending[] = [];
  readonly #handles = new Map<number, { path: string; ino?: number; dir?: string; pos: number }>();
  #nextIno = 1;

  /** root: the paths the writer used; source: a copy of the state before it ran (all durable). */
  constructor(
    readonly root: string,
    source: string,
  ) {
    this.#snapshot(root, source);
  }

  #snapshot(dir: string, source: string): void {
    const st: DirState = { cur: new Map(), dur: new Map() };
    this.dirs.set(dir, st);
    for (const name of fs.readdirSync(source)) {
      const p = join(dir, name);
      let e: Entry;
      if (fs.statSync(join(source, name)).isDirectory()) {
        this.#snapshot(p, join(source, name));
        e = { kind: 'dir', path: p };
      } else {
        const ino = this.#nextIno++;
        const data = fs.readFileSync(join(source, name));
        this.inodes.set(ino, { cur: data, dur: data });
        e = { kind: 'file', ino };
      }
      st.cur.set(name, e);
      st.dur.set(name, e);
    }
  }

  #lookup(path: string): Entry | undefined {
    return this.dirs.get(dirname(path))?.cur.get(basename(path));
  }

  #change(dir: string, changes: Pending['changes']): void {
    const st = this.dirs.get(dir);
    if (!st) throw new Error(`model: no directory ${dir}`);
    for (const c of changes) {
      if (c.entry) st.cur.set(c.name, c.entry);
      else st.cur.delete(c.name);
    }
    this.pending.push({ dir, changes });
  }

  apply(e: JournalEntry, torn: boolean): void {
    switch (e.op) {
      case 'open': {
        const path = e.path as string;
        const flags = e.flags ?? 'r';
        const existing = this.#lookup(path);
        if (existing?.kind === 'dir' || (this.dirs.has(path) && !existing)) {
          this.#handles.set(e.h as number, { path, dir: path, pos: 0 });
          return;
        }
        let ino = existing?.kind === 'file' ? existing.ino : undefined;
        if (/[wa+]/.test(flags) && ino === undefined && /[wa]/.test(flags)) {
          ino = this.#nextIno++;
          this.inodes.set(ino, { cur: Buffer.alloc(0), dur: Buffer.alloc(0) });
          this.#change(dirname(path), [{ name: basename(path), entry: { kind: 'file', ino } }]);
        } else if (flags.startsWith('w') && ino !== undefined) {
          this.inodes.get(ino)!.cur = Buffer.alloc(0);
        }
        const size = ino !== undefined ? this.inodes.get(ino)!.cur.length : 0;
        this.#handles.set(e.h as number, {
          path,
          ...(ino !== undefined ? { ino } : {}),
          pos: flags.startsWith('a') ? size : 0,
        });
        return;
      }
      case 'open-failed':
        return;
      case 'write': {
        const h = this.#handles.get(e.h as number);
        if (!h?.ino) return;
        let data = Buffer.from(e.data as string, 'base64');
        if (torn) data = data.subarray(0, data.length >> 1);
        const node = this.inodes.get(h.ino)!;
        const at = e.pos ?? h.pos;
        const out = Buffer.alloc(Math.max(node.cur.length, at + data.length));
        node.cur.copy(out);
        data.copy(out, at);
        node.cur = out;
        if (e.pos === null || e.pos === undefined) h.pos = at + data.length;
        return;
      }
      case 'write-path': {
        const path = e.path as string;
        let data = Buffer.from(e.data as string, 'base64');
        if (torn) data = data.subarray(0, data.length >> 1);
        const existing = this.#lookup(path);
        if (existing?.kind === 'file') this.inodes.get(existing.ino)!.cur = data;
        else {
          const ino = this.#nextIno++;
          this.inodes.set(ino, { cur: data, dur: Buffer.alloc(0) });
          this.#change(dirname(path), [{ name: basename(path), entry: { kind: 'file', ino } }]);
        }
        return;
      }
      case 'fsync': {
        const h = this.#handles.get(e.h as number);
        if (!h) return;
        if (h.dir) {
          const st = this.dirs.get(h.dir)!;
          st.dur = new Map(st.cur);
          this.pending = this.pending.filter((p) => p.dir !== h.dir);
        } else if (h.ino) {
          const node = this.inodes.get(h.ino)!;
          node.dur = Buffer.from(node.cur);
        }
        return;
      }
      case 'close':
        this.#handles.delete(e.h as number);
        return;
      case 'rename': {
        const from = e.path as string;
        const to = e.to as string;
        const entry = this.#lookup(from);
        if (!entry) return;
        if (dirname(from) === dirname(to))
          this.#change(dirname(from), [{ name: basename(to), entry }, { name: basename(from) }]);
        else {
          this.#change(dirname(to), [{ name: basename(to), entry }]);
          this.#change(dirname(from), [{ name: basename(from) }]);
        }
        return;
      }
      case 'unlink':
        this.#change(dirname(e.path as string), [{ name: basename(e.path as string) }]);
        return;
      case 'mkdir-done': {
        if (!e.created) return;
        const made: string[] = [];
        for (let d = e.path as string; ; d = dirname(d)) {
          made.unshift(d);
          if (d === e.created || d === dirname(d)) break;
        }
        for (const d of made) {
          if (this.dirs.has(d)) continue;
          this.dirs.set(d, { cur: new Map(), dur: new Map() });
          this.#change(dirname(d), [{ name: basename(d), entry: { kind: 'dir', path: d } }]);
        }
        return;
      }
      default:
        return;
    }
  }

  /** Every disk image a power cut now could leave: any prefix of the unsynced directory changes,
   *  with unsynced file data lost, kept, or half-written. */
  images(): { label: string; files: Map<string, Buffer>; dirs: string[] }[] {
    const out = new Map<string, { label: string; files: Map<string, Buffer>; dirs: string[] }>();
    for (let p = 0; p <= this.pending.length; p++) {
      const maps = new Map<string, Map<string, Entry>>();
      for (const [d, st] of this.dirs) maps.set(d, new Map(st.dur));
      for (const pend of this.pending.slice(0, p)) {
        const m = maps.get(pend.dir)!;
        for (const c of pend.changes) {
          if (c.entry) m.set(c.name, c.entry);
          else m.delete(c.name);
        }
      }
      for (const mode of ['lost', 'kept', 'torn'] as const) {
        const files = new Map<string, Buffer>();
        const dirs: string[] = [];
        const walk = (dir: string) => {
          for (const [name, e] of maps.get(dir) ?? []) {
            const path = join(dir, name);
            if (e.kind === 'dir') {
              dirs.push(relative(this.root, path));
              walk(e.path);
            } else {
              const node = this.inodes.get(e.ino)!;
              const same = node.cur.equals(node.dur);
              const data =
                same || mode === 'kept'
                  ? node.cur
                  : mode === 'lost'
                    ? node.dur
                    : node.cur.subarray(0, Math.max(node.dur.length, node.cur.length >> 1));
              files.set(relative(this.root, path), data);
            }
          }
        };
        walk(this.root);
        const key = sha(
          JSON.stringify([...dirs.sort(), ...[...files].sort().map(([k, v]) => `${k}=${sha(v)}`)]),
        );
        if (!out.has(key))
          out.set(key, {
            label: `${p}/${this.pending.length} unsynced directory changes survive, unsynced data ${mode}`,
            files,
            dirs,
          });
      }
    }
    return [...out.values()];
  }
}

// ---------------------------------------------------------------------------------------------

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The child runs from one esbuild bundle (start-up ~0.2 s instead of ~0.8 s through tsx). */
async function bundleChild(): Promise<string> {
  const outDir = join(ROOT, 'node_modules', '.cache', 'sealroom-powercut');
  const outfile = join(outDir, `child-${process.pid}.mjs`);
  const { build } = await import('esbuild');
  await build({
    entryPoints: [join(ROOT, 'scripts', 'powercut.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  return outfile;
}

function runChild(
  childJs: string,
  scenario: string,
  planPath: string,
  journal: string,
  crashAt: number,
  torn: boolean,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  fs.writeFileSync(journal, '');
  const args = [
    childJs,
    '--child',
    scenario,
    '--plan',
    planPath,
    '--journal',
    journal,
    '--crash-at',
    String(crashAt),
  ];
  if (torn) args.push('--torn');
  return new Promise((res) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = killAfterMs !== undefined ? setTimeout(() => p.kill('SIGKILL'), killAfterMs) : undefined;
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      res({ code, signal, stderr });
    });
  });
}

function readJournal(path: string): JournalEntry[] {
  return readText(path)
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l) as JournalEntry;
      } catch {
        return undefined; // a line cut by the kill
      }
    })
    .filter((e): e is JournalEntry => e !== undefined);
}

function copyTree(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}

function materialise(img: { files: Map<string, Buffer>; dirs: string[] }, at: string): void {
  fs.rmSync(at, { recursive: true, force: true });
  fs.mkdirSync(at, { recursive: true });
  for (const d of img.dirs) fs.mkdirSync(join(at, d), { recursive: true });
  for (const [f, data] of img.files) {
    fs.mkdirSync(dirname(join(at, f)), { recursive: true });
    fs.writeFileSync(join(at, f), data, { mode: 0o600 });
  }
}

interface Figures {
  steps: number;
  kills: number;
  images: number;
  randomKills: number;
  violations: number;
}

interface Violation {
  scenario: string;
  crashAt: number;
  torn: boolean;
  image: string;
  got: string;
  allowed: string[];
}

async function main(): Promise<void> {
  if (arg('child')) return child();
  const trials = Number(arg('trials') ?? 3);
  const randomKills = Number(arg('random-kills') ?? 10);
  const wanted = arg('scenario')?.split(',');
  const all = [...SCENARIOS, CONTROL];
  const scenarios = wanted ? all.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  if (wanted && scenarios.length !== wanted.length)
    throw new Error(`unknown scenario; known: ${all.map((s) => s.name).join(', ')}`);
  const p = await pki();
  deviceIdSync = (raw) => p.deviceIdForPublicKey(raw);
  // The power loss is simulated from the journal, so real fsyncs only cost time: on tmpfs they are
  // free (--work-dir to choose another place).
  const workRoot = arg('work-dir') ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const work = fs.mkdtempSync(join(workRoot, 'sealroom-powercut-'));
  const childJs = await bundleChild();
  const t0 = performance.now();
  const violations: Violation[] = [];
  const perScenario: Record<
    string,
    { steps: number; kills: number; images: number; randomKills: number; violations: number }
  > = {};
  let kills = 0;
  let images = 0;
  try {
    for (let trial = 0; trial < trials; trial++) {
      for (const sc of scenarios) {
        perScenario[sc.name] ??= { steps: 0, kills: 0, images: 0, randomKills: 0, violations: 0 };
        const fig = perScenario[sc.name] as Figures;
        const dir = join(work, `${sc.name}-${trial}`);
        const pristine = join(dir, 'pristine');
        fs.mkdirSync(pristine, { recursive: true });
        const plan = await sc.prepare(pristine);
        const rel = relative(pristine, plan.stateDir);
        const planPath = join(dir, 'plan.json');
        const journal = join(dir, 'journal');
        const live = join(dir, 'live');
        const img = join(dir, 'image');
        const check = async (
          imageDir: string,
          crashAt: number,
          torn: boolean,
          label: string,
          entries: JournalEntry[],
        ) => {
          const written = entries
            .filter((e) => e.op === 'write' || e.op === 'write-path')
            .map((e) => Buffer.from(e.data as string, 'base64'));
          const states = sc.states(plan, written);
          const marks = entries.filter((e) => e.op === 'mark').length;
          const allowed = [...new Set(states.slice(marks, marks + 2))];
          let got: string;
          try {
            got = await sc.read(join(imageDir, rel), { ...plan, stateDir: join(imageDir, rel) });
          } catch (err) {
            got = `INVALID (${(err as Error).message.split('\n')[0]})`;
          }
          images++;
          fig.images++;
          if (!allowed.includes(got)) {
            fig.violations++;
            violations.push({ scenario: sc.name, crashAt, torn, image: label, got, allowed });
          }
        };
        // The reference run: no cut; it counts the steps.
        copyTree(pristine, live);
        fs.writeFileSync(planPath, JSON.stringify({ ...plan, stateDir: join(live, rel) }));
        const t1 = performance.now();
        const ref = await runChild(childJs, sc.name, planPath, journal, 0, false);
        const refMs = performance.now() - t1;
        const refEntries = readJournal(journal);
        if (ref.code !== 0 || !refEntries.some((e) => e.op === 'exit'))
          throw new Error(`${sc.name}: the writer failed without a cut (code ${ref.code}): ${ref.stderr}`);
        const steps = Math.max(...refEntries.map((e) => e.step));
        fig.steps = steps;
        // A cut before every step, and a torn version of every write.
        const points: { at: number; torn: boolean }[] = [];
        for (let at = 1; at <= steps + 1; at++) {
          points.push({ at, torn: false });
          if (refEntries.some((e) => e.step === at && e.op.startsWith('write')))
            points.push({ at, torn: true });
        }
        // --sample N: N cut points chosen at random (the smoke test), always with the end state.
        const sample = Number(arg('sample') ?? 0);
        while (sample > 0 && points.length > sample + 1)
          points.splice(Math.floor(Math.random() * (points.length - 1)), 1);
        for (const pt of points) {
          fs.rmSync(live, { recursive: true, force: true });
          copyTree(pristine, live);
          const r = await runChild(childJs, sc.name, planPath, journal, pt.at, pt.torn);
          const entries = readJournal(journal);
          const cut = pt.at <= steps;
          if (cut && r.signal !== 'SIGKILL')
            throw new Error(`${sc.name}: the child was not killed at step ${pt.at} (${r.code}): ${r.stderr}`);
          kills += cut ? 1 : 0;
          fig.kills += cut ? 1 : 0;
          // The model: everything the journal says ran before the cut (step < at), plus a torn write.
          const model = new DiskModel(live, pristine);
          for (const e of entries) {
            if (e.op === 'mark' || e.op === 'open-failed' || e.op === 'mkdir-done') {
              if (e.step < pt.at || !cut) model.apply(e, false);
              continue;
            }
            if (!cut || e.step < pt.at) model.apply(e, false);
            else if (e.step === pt.at && pt.torn) model.apply(e, true);
          }
          const before = entries.filter(
            (e) => !cut || e.step < pt.at || (e.step === pt.at && e.op !== 'mark'),
          );
          for (const image of model.images()) {
            materialise(image, img);
            await check(img, pt.at, pt.torn, image.label, before);
          }
          // What the killed process itself left (no power loss) must read back valid too.
          await check(live, pt.at, pt.torn, 'the files as the killed process left them', entries);
        }
        // Random SIGKILLs from outside (process crash, no power loss).
        for (let k = 0; k < Math.max(0, Math.round(randomKills / trials)); k++) {
          fs.rmSync(live, { recursive: true, force: true });
          copyTree(pristine, live);
          const delay = Math.random() * refMs;
          await runChild(childJs, sc.name, planPath, journal, 0, false, delay);
          fig.randomKills++;
          await check(live, -1, false, `SIGKILL after ${delay.toFixed(0)} ms`, readJournal(journal));
        }
        process.stderr.write(
          `${sc.name} trial ${trial + 1}: ${steps} steps, ${fig.kills} cuts, ${fig.images} images, ${fig.violations} violations\n`,
        );
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(childJs, { force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const [name, f] of Object.entries(perScenario))
    console.log(
      `${name.padEnd(12)} steps/write ${String(f.steps).padStart(3)}  cuts ${String(f.kills).padStart(4)}  random kills ${String(f.randomKills).padStart(3)}  images checked ${String(f.images).padStart(5)}  violations ${f.violations}`,
    );
  for (const v of violations.slice(0, 20))
    console.log(
      `  VIOLATION ${v.scenario} cut before step ${v.crashAt}${v.torn ? ' (torn write)' : ''}, ${v.image}: read ${v.got}, allowed ${v.allowed.join(' | ')}`,
    );
  console.log(
    JSON.stringify({
      powercut: {
        trials,
        seconds: Math.round(seconds * 10) / 10,
        kills,
        images,
        violations: violations.length,
        scenarios: perScenario,
        firstViolations: violations.slice(0, 5),
      },
    }),
  );
  if (violations.length) process.exitCode = 1;
}

const invoked = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invoked || process.argv.includes('--child')) {
  main().catch((err) => {
    console.error(err);
    process.exit(2);
  });
}
