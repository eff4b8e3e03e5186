// Ids a device may reclaim after a relay restart are bound to that device (issue 9, attack 7), so an
// authenticated device cannot squat a free meeting id or an absent member's participant id.
//
// - Participant ids embed a tag of the holder's device id: `p-<tag>-<random>`, tag = the first 16
//   hex digits of SHA-256("sealroom/participant-id/v1" || 0x00 || deviceId). A reclaimed id is
//   accepted only from the device whose tag it carries. Stateless: survives any restart.
//   People (issue 12) are tagged the same way from their person id ('person:' + email) under another
//   label, so no device id — whatever its certificate's CN — can carry a person's tag, nor the reverse.
// - Meeting ids are typed by people (three groups of four letters) and cannot carry a tag, so the
//   relay keeps a reservation meetingId → leader device id, with an expiry, and — given a state dir
//   — persists it atomically (write to a temporary file, fsync, rename) before it answers a create
//   or a hand-over. Live meetings are refreshed every ttl/3, so after a crash a reservation outlives
//   the relay by at most ttl. Reservations are released when the leader ends or leaves on purpose.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const TAG_LABEL = 'sealroom/participant-id/v1';
const PERSON_TAG_LABEL = 'sealroom/participant-id/person/v1';
const PARTICIPANT_ID = /^p-([0-9a-f]{16})-[0-9a-f]{12}$/;
/** Same rule as the wire schema of a meeting id (src/core/protocol/relay.ts). */
const MEETING_ID = /^[a-z0-9-]{4,32}$/;
const DEVICE_ID = /^[\x21-\x7e]{1,128}$/;
export const RESERVATIONS_FILE = 'meeting-ids.json';
/** How long a meeting id stays bound to its leader after the relay last saw the meeting alive. */
export const DEFAULT_RESERVATION_TTL_MS = 10 * 60_000;

export function deviceTag(deviceId: string): string {
  return createHash('sha256').update(`${TAG_LABEL}\0${deviceId}`, 'utf8').digest('hex').slice(0, 16);
}

/**
 * Who holds a participant id: a device id (a room), or a verified identity whose `kind` says
 * whether `deviceId` is a room's device id or a person's id ('person:' + email).
 */
export type IdHolder = string | { kind?: 'room' | 'person'; deviceId: string };

/** The tag of a holder: rooms as before (ids made before issue 12 stay theirs), people apart. */
export function holderTag(holder: IdHolder): string {
  if (typeof holder === 'string' || holder.kind !== 'person') {
    return deviceTag(typeof holder === 'string' ? holder : holder.deviceId);
  }
  return createHash('sha256')
    .update(`${PERSON_TAG_LABEL}\0${holder.deviceId}`, 'utf8')
    .digest('hex')
    .slice(0, 16);
}

/** A fresh participant id bound to `holder`. */
export function newParticipantIdFor(holder: IdHolder, random: (n: number) => Buffer = randomBytes): string {
  return `p-${holderTag(holder)}-${random(6).toString('hex')}`;
}

/** True when `participantId` is a relay-made id carrying `holder`'s tag. */
export function participantIdBoundTo(participantId: string, holder: IdHolder): boolean {
  const m = PARTICIPANT_ID.exec(participantId);
  return m !== null && m[1] === holderTag(holder);
}

interface Reservation {
  deviceId: string;
  /** ms since the epoch; Infinity in memory while the meeting is live at this relay. */
  expiresAt: number;
}

interface ReservationFile {
  version: 1;
  reservations: { meetingId: string; deviceId: string; expiresAt: number }[];
}

export interface ReservationOptions {
  /** Directory for meeting-ids.json; without it reservations live only as long as the process. */
  stateDir?: string;
  ttlMs?: number;
  now?: () => number;
}

export class MeetingReservations {
  readonly #byMeeting = new Map<string, Reservation>();
  readonly #file: string | undefined;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #frozen = false;

  /** Loads the persisted reservations (expired ones dropped); throws on a corrupt file. */
  constructor(opts: ReservationOptions = {}) {
    this.#ttlMs = opts.ttlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.#now = opts.now ?? Date.now;
    if (opts.stateDir === undefined) return;
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    this.#file = join(opts.stateDir, RESERVATIONS_FILE);
    let text: string;
    try {
      text = readFileSync(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const now = this.#now();
    for (const r of parseFile(text, this.#file))
      if (r.expiresAt > now)
        this.#byMeeting.set(r.meetingId, { deviceId: r.deviceId, expiresAt: r.expiresAt });
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** The device a meeting id is bound to, unless the binding expired. */
  holder(meetingId: string): string | undefined {
    const r = this.#byMeeting.get(meetingId);
    if (!r) return undefined;
    if (r.expiresAt <= this.#now()) {
      this.#byMeeting.delete(meetingId);
      return undefined;
    }
    return r.deviceId;
  }

  /** Binds a live meeting's id to its (new) leader device; persisted before this returns. */
  bind(meetingId: string, deviceId: string): void {
    this.#byMeeting.set(meetingId, { deviceId, expiresAt: Number.POSITIVE_INFINITY });
    this.#save();
  }

  /** The leader left on purpose or ended the meeting: anyone may use the id again. */
  release(meetingId: string): void {
    if (this.#byMeeting.delete(meetingId)) this.#save();
  }

  /** The meeting died with its leader's connection: the id stays bound for ttl, for its resume. */
  orphan(meetingId: string): void {
    const r = this.#byMeeting.get(meetingId);
    if (!r) return;
    r.expiresAt = this.#now() + this.#ttlMs;
    this.#save();
  }

  /** Periodically: rewrites the file so live meetings' ids stay bound for ttl after a crash. */
  refresh(): void {
    const now = this.#now();
    for (const [id, r] of this.#byMeeting) if (r.expiresAt <= now) this.#byMeeting.delete(id);
    this.#save();
  }

  /** The relay is closing: nothing more is written (a successor may already own the file). */
  freeze(): void {
    this.#frozen = true;
  }

  #save(): void {
    if (!this.#file || this.#frozen) return;
    const now = this.#now();
    const body: ReservationFile = {
      version: 1,
      reservations: [...this.#byMeeting]
        .filter(([, r]) => r.expiresAt > now)
        .map(([meetingId, r]) => ({
          meetingId,
          deviceId: r.deviceId,
          // A live meeting is on disk as "alive until ttl from now": a crash leaves a bounded binding.
          expiresAt: Number.isFinite(r.expiresAt) ? r.expiresAt : now + this.#ttlMs,
        })),
    };
    writeAtomically(this.#file, `${JSON.stringify(body)}\n`);
  }
}

/** Temporary file, fsync, rename: a crash leaves either the old file or the new one, never half. */
export function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function parseFile(text: string, path: string): ReservationFile['reservations'] {
  const fail = (why: string) => new Error(`${path}: ${why}; refusing to start without the id bindings`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw fail('not JSON');
  }
  const file = value as Partial<ReservationFile>;
  if (file?.version !== 1 || !Array.isArray(file.reservations))
    throw fail('not a version 1 reservation file');
  for (const r of file.reservations) {
    if (
      typeof r !== 'object' ||
      r === null ||
      typeof r.meetingId !== 'string' ||
      !MEETING_ID.test(r.meetingId) ||
      typeof r.deviceId !== 'string' ||
      !DEVICE_ID.test(r.deviceId) ||
      typeof r.expiresAt !== 'number' ||
      !Number.isFinite(r.expiresAt)
    )
      throw fail('a malformed reservation');
  }
  return file.reservations;
}
