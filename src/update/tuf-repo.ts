/**
 * The publishing side of signed releases (issue 14): a small TUF repository tool on @tufjs/models.
 *
 * Roles: root (offline keys, signs the keys of every role), targets (offline keys, signs the list of
 * release bundles with their length and sha256), snapshot and timestamp (online keys, re-signed
 * often with short expiries so that a frozen mirror is noticed). Every role has a threshold.
 *
 * Layout of a repository directory (consistent snapshots, so a static server can publish
 * atomically — new versioned files first, `timestamp.json` last, by rename):
 *   <dir>/metadata/root.json, <dir>/metadata/<N>.root.json   every root version (clients walk them)
 *   <dir>/metadata/<N>.targets.json, <dir>/metadata/<N>.snapshot.json, <dir>/metadata/timestamp.json
 *   <dir>/targets/<channel>/<arch>/<sha256>.sealroom-<version>.tar.gz
 *   <dir>/repo-config.json                                  expiries (not served)
 * Serve `<dir>/metadata/` as the metadata URL and `<dir>/targets/` as the targets URL. Private keys
 * are never written under `<dir>`.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  MetaFile,
  Metadata,
  MetadataKind,
  Root,
  Signature,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
} from '@tufjs/models';
import { fsyncPath, writeFileAtomic } from '../util/atomic-file.js';
import { ARCHES, type Arch, isSemver, readBundleManifest } from './bundle.js';

export type RoleName = 'root' | 'targets' | 'snapshot' | 'timestamp';
export const ROLES: readonly RoleName[] = ['root', 'targets', 'snapshot', 'timestamp'];
export type Expiries = Record<RoleName, number>;

const DAY = 24 * 3600;
/** Seconds. Root and targets are signed offline, rarely; snapshot and timestamp online, often. */
export const DEFAULT_EXPIRIES: Expiries = {
  root: 365 * DAY,
  targets: 90 * DAY,
  snapshot: 7 * DAY,
  timestamp: DAY,
};
const SPEC_VERSION = '1.0.31';

export interface TufPublicKey {
  keytype: 'ed25519';
  scheme: 'ed25519';
  keyval: { public: string };
}

export interface KeyPair {
  keyId: string;
  publicKey: KeyObject;
  privateKey?: KeyObject;
  tuf: TufPublicKey;
}

export type RoleKeys = Partial<Record<RoleName, KeyPair[]>>;

export class RepoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepoError';
  }
}

// ---------------------------------------------------------------------------------------------
// keys

function tufKeyOf(publicKey: KeyObject): TufPublicKey {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')
    throw new RepoError('only Ed25519 keys are supported');
  return {
    keytype: 'ed25519',
    scheme: 'ed25519',
    keyval: { public: Buffer.from(jwk.x, 'base64url').toString('hex') },
  };
}

/** The TUF key id: sha256 of the canonical JSON of the public key (keys sorted, no spaces). */
export function keyIdOf(key: TufPublicKey): string {
  const canonical = `{"keytype":"${key.keytype}","keyval":{"public":"${key.keyval.public}"},"scheme":"${key.scheme}"}`;
  return createHash('sha256').update(canonical).digest('hex');
}

function keyPairFrom(publicKey: KeyObject, privateKey?: KeyObject): KeyPair {
  const tuf = tufKeyOf(publicKey);
  return { keyId: keyIdOf(tuf), publicKey, privateKey, tuf };
}

export function generateKey(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return keyPairFrom(publicKey, privateKey);
}

export function publicOnly(key: KeyPair): KeyPair {
  return { keyId: key.keyId, publicKey: key.publicKey, tuf: key.tuf };
}

/** Writes `<dir>/<name>.pem` (private, mode 0600) and `<dir>/<name>.pub.json` (TUF public key + id). */
export async function saveKey(
  dir: string,
  name: string,
  key: KeyPair,
): Promise<{ privatePem?: string; publicJson: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const publicJson = path.join(dir, `${name}.pub.json`);
  await writeFileAtomic(
    publicJson,
    Buffer.from(`${JSON.stringify({ keyid: key.keyId, ...key.tuf }, null, 2)}\n`),
    0o644,
  );
  if (!key.privateKey) return { publicJson };
  const privatePem = path.join(dir, `${name}.pem`);
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await writeFileAtomic(privatePem, Buffer.from(pem), 0o600);
  return { privatePem, publicJson };
}

/** Loads a private key (`.pem`, PKCS#8) or a public one (`.pub.json` as written by saveKey, or SPKI PEM). */
export async function loadKey(file: string): Promise<KeyPair> {
  const text = await readFile(file, 'utf8');
  if (text.includes('PRIVATE KEY')) {
    const privateKey = createPrivateKey(text);
    return keyPairFrom(createPublicKey(privateKey), privateKey);
  }
  if (text.includes('PUBLIC KEY')) return keyPairFrom(createPublicKey(text));
  const json = JSON.parse(text) as { keytype?: string; scheme?: string; keyval?: { public?: string } };
  if (
    json.keytype !== 'ed25519' ||
    json.scheme !== 'ed25519' ||
    !/^[0-9a-f]{64}$/.test(json.keyval?.public ?? '')
  ) {
    throw new RepoError(`${file}: not an Ed25519 TUF public key`);
  }
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(json.keyval!.public!, 'hex').toString('base64url') },
    format: 'jwk',
  });
  return keyPairFrom(publicKey);
}

// ---------------------------------------------------------------------------------------------
// metadata helpers (exported so that tests can forge hostile metadata with the same tools)

export function expiresAt(now: Date, seconds: number): string {
  return new Date(now.getTime() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Signs with every key given (no membership check: that is the verifier's job). */
export function signMetadata<T extends Root | Targets | Snapshot | Timestamp>(
  md: Metadata<T>,
  keys: KeyPair[],
): Metadata<T> {
  for (const k of keys) {
    if (!k.privateKey) throw new RepoError(`key ${k.keyId.slice(0, 12)} has no private part`);
    const privateKey = k.privateKey;
    md.sign(
      (data) => new Signature({ keyID: k.keyId, sig: sign(null, data, privateKey).toString('hex') }),
      true,
    );
  }
  return md;
}

export function serialize(md: Metadata<Root | Targets | Snapshot | Timestamp>): Buffer {
  return Buffer.from(`${JSON.stringify(md.toJSON(), null, 1)}\n`);
}

function metaFileFor(bytes: Buffer, version: number): MetaFile {
  return new MetaFile({
    version,
    length: bytes.length,
    hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
  });
}

export interface RepoConfig {
  expiries: Expiries;
}

export interface RepoState {
  dir: string;
  config: RepoConfig;
  root: Metadata<Root>;
  targets: Metadata<Targets>;
  snapshot: Metadata<Snapshot>;
  timestamp: Metadata<Timestamp>;
}

const metadataDir = (dir: string): string => path.join(dir, 'metadata');

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON handed to the models' own validation
async function readJson(file: string): Promise<any> {
  return JSON.parse(await readFile(file, 'utf8'));
}

/** Reads the current (latest) metadata of every role. */
export async function loadRepo(dir: string): Promise<RepoState> {
  const md = metadataDir(dir);
  const config = (await readJson(path.join(dir, 'repo-config.json'))) as unknown as RepoConfig;
  const root = Metadata.fromJSON(MetadataKind.Root, await readJson(path.join(md, 'root.json')));
  const timestamp = Metadata.fromJSON(
    MetadataKind.Timestamp,
    await readJson(path.join(md, 'timestamp.json')),
  );
  const snapshot = Metadata.fromJSON(
    MetadataKind.Snapshot,
    await readJson(path.join(md, `${timestamp.signed.snapshotMeta.version}.snapshot.json`)),
  );
  const targetsMeta = snapshot.signed.meta['targets.json'];
  if (!targetsMeta) throw new RepoError('snapshot has no targets.json');
  const targets = Metadata.fromJSON(
    MetadataKind.Targets,
    await readJson(path.join(md, `${targetsMeta.version}.targets.json`)),
  );
  return {
    dir,
    config: { expiries: { ...DEFAULT_EXPIRIES, ...config.expiries } },
    root,
    targets,
    snapshot,
    timestamp,
  };
}

function requireKeys(keys: KeyPair[] | undefined, role: RoleName, root: Root): KeyPair[] {
  const r = root.roles[role]!;
  const usable = (keys ?? []).filter((k) => k.privateKey && r.keyIDs.includes(k.keyId));
  if (usable.length < r.threshold) {
    throw new RepoError(`${role}: ${usable.length} usable signing key(s), threshold is ${r.threshold}`);
  }
  return usable;
}

/** Metadata is served as it is, so it is world-readable. */
function writeMetadataFile(dir: string, name: string, bytes: Buffer): Promise<void> {
  return writeFileAtomic(path.join(metadataDir(dir), name), bytes, 0o644);
}

/** Writes `<v>.root.json` and `root.json`. */
export async function writeRoot(dir: string, root: Metadata<Root>): Promise<void> {
  const bytes = serialize(root);
  await writeMetadataFile(dir, `${root.signed.version}.root.json`, bytes);
  await writeMetadataFile(dir, 'root.json', bytes);
}

/** Writes `<v>.targets.json`; returns its bytes. */
export async function writeTargets(dir: string, targets: Metadata<Targets>): Promise<Buffer> {
  const bytes = serialize(targets);
  await writeMetadataFile(dir, `${targets.signed.version}.targets.json`, bytes);
  return bytes;
}

export async function writeSnapshot(dir: string, snapshot: Metadata<Snapshot>): Promise<Buffer> {
  const bytes = serialize(snapshot);
  await writeMetadataFile(dir, `${snapshot.signed.version}.snapshot.json`, bytes);
  return bytes;
}

export async function writeTimestamp(dir: string, timestamp: Metadata<Timestamp>): Promise<void> {
  await writeMetadataFile(dir, 'timestamp.json', serialize(timestamp));
}

export function newSnapshot(o: {
  version: number;
  expires: string;
  targetsBytes: Buffer;
  targetsVersion: number;
}): Metadata<Snapshot> {
  return new Metadata(
    new Snapshot({
      version: o.version,
      specVersion: SPEC_VERSION,
      expires: o.expires,
      meta: { 'targets.json': metaFileFor(o.targetsBytes, o.targetsVersion) },
    }),
  );
}

export function newTimestamp(o: {
  version: number;
  expires: string;
  snapshotBytes: Buffer;
  snapshotVersion: number;
}): Metadata<Timestamp> {
  return new Metadata(
    new Timestamp({
      version: o.version,
      specVersion: SPEC_VERSION,
      expires: o.expires,
      snapshotMeta: metaFileFor(o.snapshotBytes, o.snapshotVersion),
    }),
  );
}

/**
 * Re-signs and publishes the chain below a new targets (or from snapshot down): snapshot, then
 * timestamp last (the timestamp rename is the moment the release becomes visible).
 */
async function publishChain(
  state: RepoState,
  from: 'targets' | 'snapshot' | 'timestamp',
  keys: RoleKeys,
  now: Date,
  newTargets?: Targets,
): Promise<{ targets: number; snapshot: number; timestamp: number }> {
  const { dir, root, config } = state;
  let targetsVersion = state.targets.signed.version;
  let snapshotVersion = state.snapshot.signed.version;
  let snapshotBytes = serialize(state.snapshot);
  if (from !== 'timestamp') {
    let targetsBytes = serialize(state.targets);
    if (from === 'targets') {
      const signed =
        newTargets ??
        Targets.fromJSON({
          ...withoutType(state.targets.signed.toJSON()),
          version: targetsVersion + 1,
          expires: expiresAt(now, config.expiries.targets),
        } as never);
      const md = signMetadata(new Metadata(signed), requireKeys(keys.targets, 'targets', root.signed));
      targetsBytes = await writeTargets(dir, md);
      targetsVersion = md.signed.version;
    }
    const snap = newSnapshot({
      version: snapshotVersion + 1,
      expires: expiresAt(now, config.expiries.snapshot),
      targetsBytes,
      targetsVersion,
    });
    signMetadata(snap, requireKeys(keys.snapshot, 'snapshot', root.signed));
    snapshotBytes = await writeSnapshot(dir, snap);
    snapshotVersion = snap.signed.version;
  }
  const ts = newTimestamp({
    version: state.timestamp.signed.version + 1,
    expires: expiresAt(now, config.expiries.timestamp),
    snapshotBytes,
    snapshotVersion,
  });
  signMetadata(ts, requireKeys(keys.timestamp, 'timestamp', root.signed));
  await writeTimestamp(dir, ts);
  return { targets: targetsVersion, snapshot: snapshotVersion, timestamp: ts.signed.version };
}

function withoutType(json: Record<string, unknown>): Record<string, unknown> {
  const { _type: _ignored, ...rest } = json;
  return structuredClone(rest);
}

// ---------------------------------------------------------------------------------------------
// repository operations

export interface InitOptions {
  rootKeys: KeyPair[];
  targetsKeys: KeyPair[];
  snapshotKeys: KeyPair[];
  timestampKeys: KeyPair[];
  /** One number for every role, or per role (default 1). */
  threshold?: number | Partial<Record<RoleName, number>>;
  /** Seconds per role. */
  expiries?: Partial<Expiries>;
  now?: Date;
}

/**
 * Creates a repository: root v1 (signed by the root keys), empty targets v1, snapshot v1,
 * timestamp v1. Needs the private parts of at least a threshold of every role's keys.
 */
export async function initRepository(dir: string, o: InitOptions): Promise<RepoState> {
  const now = o.now ?? new Date();
  const expiries: Expiries = { ...DEFAULT_EXPIRIES, ...o.expiries };
  const thresholdOf = (role: RoleName): number =>
    typeof o.threshold === 'number' ? o.threshold : (o.threshold?.[role] ?? 1);
  await mkdir(metadataDir(dir), { recursive: true });
  await mkdir(path.join(dir, 'targets'), { recursive: true });
  try {
    await stat(path.join(metadataDir(dir), 'root.json'));
    throw new RepoError(`${dir} already holds a repository`);
  } catch (err) {
    if (err instanceof RepoError) throw err;
  }
  const rootJson: {
    keys: Record<string, TufPublicKey>;
    roles: Record<string, { keyids: string[]; threshold: number }>;
  } & Record<string, unknown> = {
    spec_version: SPEC_VERSION,
    version: 1,
    expires: expiresAt(now, expiries.root),
    consistent_snapshot: true,
    keys: {},
    roles: {},
  };
  const byRole: Record<RoleName, KeyPair[]> = {
    root: o.rootKeys,
    targets: o.targetsKeys,
    snapshot: o.snapshotKeys,
    timestamp: o.timestampKeys,
  };
  for (const role of ROLES) {
    const keys = byRole[role];
    const threshold = thresholdOf(role);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys.length) {
      throw new RepoError(`${role}: threshold ${threshold} with ${keys.length} key(s)`);
    }
    for (const k of keys) rootJson.keys[k.keyId] = { ...k.tuf, keyval: { ...k.tuf.keyval } };
    rootJson.roles[role] = { keyids: keys.map((k) => k.keyId), threshold };
  }
  const root = Root.fromJSON(rootJson as never);
  const rootMd = signMetadata(new Metadata(root), requireKeys(o.rootKeys, 'root', root));
  await writeFile(path.join(dir, 'repo-config.json'), `${JSON.stringify({ expiries }, null, 2)}\n`);
  await writeRoot(dir, rootMd);
  const targets = signMetadata(
    new Metadata(
      new Targets({ version: 1, specVersion: SPEC_VERSION, expires: expiresAt(now, expiries.targets) }),
    ),
    requireKeys(o.targetsKeys, 'targets', root),
  );
  const targetsBytes = await writeTargets(dir, targets);
  const snap = signMetadata(
    newSnapshot({ version: 1, expires: expiresAt(now, expiries.snapshot), targetsBytes, targetsVersion: 1 }),
    requireKeys(o.snapshotKeys, 'snapshot', root),
  );
  const snapshotBytes = await writeSnapshot(dir, snap);
  const ts = signMetadata(
    newTimestamp({
      version: 1,
      expires: expiresAt(now, expiries.timestamp),
      snapshotBytes,
      snapshotVersion: 1,
    }),
    requireKeys(o.timestampKeys, 'timestamp', root),
  );
  await writeTimestamp(dir, ts);
  return loadRepo(dir);
}

const CHANNEL_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function targetPathFor(channel: string, arch: Arch, version: string): string {
  if (!CHANNEL_RE.test(channel)) throw new RepoError(`bad channel name: ${channel}`);
  if (!ARCHES.includes(arch)) throw new RepoError(`bad arch: ${arch}`);
  if (!isSemver(version)) throw new RepoError(`bad version: ${version}`);
  return `${channel}/${arch}/sealroom-${version}.tar.gz`;
}

async function sha256File(file: string): Promise<{ sha256: string; length: number }> {
  const h = createHash('sha256');
  let length = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), length };
}

/**
 * Publishes a bundle: copies it under targets/ (hash-prefixed), then targets (offline key),
 * snapshot and timestamp (online keys). A release already published under the same path with other
 * bytes is refused (releases are immutable).
 */
export async function addRelease(
  dir: string,
  bundleFile: string,
  o: { version: string; arch: Arch; channel: string; keys: RoleKeys; now?: Date },
): Promise<{
  targetPath: string;
  sha256: string;
  length: number;
  versions: { targets: number; snapshot: number; timestamp: number };
}> {
  const now = o.now ?? new Date();
  const targetPath = targetPathFor(o.channel, o.arch, o.version);
  const manifest = await readBundleManifest(bundleFile);
  if (manifest.version !== o.version || manifest.arch !== o.arch) {
    throw new RepoError(
      `bundle says ${manifest.version}/${manifest.arch}, publishing as ${o.version}/${o.arch}`,
    );
  }
  const state = await loadRepo(dir);
  const { sha256, length } = await sha256File(bundleFile);
  const existing = state.targets.signed.targets[targetPath];
  if (existing && existing.hashes.sha256 !== sha256) {
    throw new RepoError(`${targetPath} is already published with other bytes; releases are immutable`);
  }
  const served = path.join(dir, 'targets', o.channel, o.arch, `${sha256}.sealroom-${o.version}.tar.gz`);
  await mkdir(path.dirname(served), { recursive: true });
  const tmp = `${served}.tmp-${process.pid}`;
  await copyFile(bundleFile, tmp);
  await fsyncPath(tmp);
  await rename(tmp, served);
  await fsyncPath(path.dirname(served));

  const json = withoutType(state.targets.signed.toJSON());
  const targets = Targets.fromJSON({
    ...json,
    version: state.targets.signed.version + 1,
    expires: expiresAt(now, state.config.expiries.targets),
  } as never);
  targets.addTarget(
    new TargetFile({
      path: targetPath,
      length,
      hashes: { sha256 },
      unrecognizedFields: { custom: { version: o.version, channel: o.channel, arch: o.arch } },
    }),
  );
  const versions = await publishChain(state, 'targets', o.keys, now, targets);
  return { targetPath, sha256, length, versions };
}

/** New timestamp (same snapshot), e.g. from a timer on the server: returns its version. */
export async function refreshTimestamp(
  dir: string,
  o: { keys: RoleKeys; now?: Date; expiresIn?: number },
): Promise<number> {
  const state = await loadRepo(dir);
  if (o.expiresIn !== undefined) state.config.expiries.timestamp = o.expiresIn;
  return (await publishChain(state, 'timestamp', o.keys, o.now ?? new Date())).timestamp;
}

/** New snapshot and timestamp (same targets): the online roles' regular re-signing. */
export async function refreshSnapshot(dir: string, o: { keys: RoleKeys; now?: Date }): Promise<number> {
  const state = await loadRepo(dir);
  return (await publishChain(state, 'snapshot', o.keys, o.now ?? new Date())).snapshot;
}

/**
 * Key rotation: a new root version that removes and/or adds keys of `role` (and optionally changes
 * its threshold). The new root is signed by `rootSigners`, which must hold a threshold of the OLD
 * root keys (clients only accept root N+1 signed by root N's threshold) and, when the root keys
 * themselves change, a threshold of the NEW root keys too. Both are checked before anything is
 * written. Then the rotated role's metadata is re-signed with its new keys (`keys`), with the chain
 * below it. Returns the new root version.
 */
export async function rotateKey(
  dir: string,
  role: RoleName,
  o: {
    remove?: string[];
    add?: KeyPair[];
    threshold?: number;
    rootSigners: KeyPair[];
    keys?: RoleKeys;
    now?: Date;
  },
): Promise<number> {
  const now = o.now ?? new Date();
  const state = await loadRepo(dir);
  const old = state.root;
  const json = withoutType(old.signed.toJSON()) as unknown as {
    keys: Record<string, unknown>;
    roles: Record<string, { keyids: string[]; threshold: number }>;
    version: number;
    expires: string;
  };
  const r = json.roles[role]!;
  const remove = new Set(o.remove ?? []);
  r.keyids = r.keyids.filter((id) => !remove.has(id));
  for (const k of o.add ?? []) {
    if (!r.keyids.includes(k.keyId)) r.keyids.push(k.keyId);
    json.keys[k.keyId] = { ...k.tuf };
  }
  if (o.threshold !== undefined) r.threshold = o.threshold;
  if (r.threshold < 1 || r.threshold > r.keyids.length) {
    throw new RepoError(`${role}: threshold ${r.threshold} with ${r.keyids.length} key(s)`);
  }
  const used = new Set(Object.values(json.roles).flatMap((x) => x.keyids));
  for (const id of Object.keys(json.keys)) if (!used.has(id)) delete json.keys[id];
  json.version = old.signed.version + 1;
  json.expires = expiresAt(now, state.config.expiries.root);
  const next = new Metadata(Root.fromJSON(json as never));
  signMetadata(next, o.rootSigners);
  try {
    old.verifyDelegate('root', next);
  } catch {
    throw new RepoError('new root is not signed by a threshold of the current root keys');
  }
  try {
    next.verifyDelegate('root', next);
  } catch {
    throw new RepoError('new root is not signed by a threshold of its own root keys');
  }
  await writeRoot(dir, next);
  if (role !== 'root') {
    const rotated = await loadRepo(dir);
    await publishChain(rotated, role, o.keys ?? {}, now);
  }
  return next.signed.version;
}

/** Removes a published bundle file (metadata untouched): for tests and pruning old releases. */
export async function removeTargetFile(
  dir: string,
  channel: string,
  arch: Arch,
  sha256: string,
  version: string,
): Promise<void> {
  await rm(path.join(dir, 'targets', channel, arch, `${sha256}.sealroom-${version}.tar.gz`), { force: true });
}
