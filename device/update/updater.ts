// The A/B updater: installs a verified bundle into the inactive slot, switches to it, and lets the
// health gate decide. Every decision is written to update-state.json (atomically) BEFORE the
// `current` symlink follows it, so a power cut at any point leaves a state that bootCheck() turns
// into a bootable slot: the committed version, or the version on trial while it has attempts left.
//
//   apply(bundle)  drop `previous` if it lives in the inactive slot → empty the slot → extract
//                  (fsync) → state.pending = {slot, version, attempts 0, deadline} → switch → restart
//   bootCheck()    pending: attempts ≥ max or past its deadline → roll back; else attempts+1 and run it.
//                  committed: N starts within M minutes without reaching healthy → back to previous.
//   commit()       the gate passed: the pending slot becomes the committed one (the old one: previous)
//   rollback()     pending → cancelled (version rejected); committed → back to previous
import { nodeUpdateFs, type UpdateFs } from './durable-fs.js';
import { type HealthCheck, type GateResult, runHealthGate } from './health-gate.js';
import {
  compareVersions,
  otherSlot,
  type ReleaseManifestLike,
  type SlotName,
  Slots,
  type UpdateEvent,
  type UpdateState,
  UpdateStateError,
} from './slots.js';

export type ExtractFn = (
  file: string,
  destDir: string,
  o: { fsync: boolean; onProgress?: () => void; expect?: { version?: string; arch?: 'x64' | 'arm64' } },
) => Promise<ReleaseManifestLike>;

/** The release bundle extractor (src/update/bundle.ts), loaded only when a bundle is installed. */
export const defaultExtract: ExtractFn = async (file, destDir, o) => {
  const { extractBundle } = await import('../../src/update/bundle.js');
  return extractBundle(file, destDir, o);
};

export interface UpdaterOptions {
  root: string;
  fs?: UpdateFs;
  extract?: ExtractFn;
  now?: () => number;
  /** Starts of a new version before it is given up (default 3). */
  maxAttempts?: number;
  /** From the switch: time for the new version to pass its gate, restarts included (default 30 min). */
  updateDeadlineMs?: number;
  /** After a commit, this many starts within windowMs without reaching healthy roll back (5 in 10 min). */
  crashLoop?: { starts: number; windowMs: number };
  /** Architecture a bundle must be built for (default: this machine's). */
  arch?: 'x64' | 'arm64';
  /** Asked after a switch (apply, rollback): the service restarts on the new `current`. */
  restart?: () => Promise<void> | void;
}

export type BootAction = 'start' | 'try-pending' | 'rolled-back' | 'crash-loop-rollback';

export interface BootDecision {
  action: BootAction;
  slot: SlotName;
  version: string;
  reason?: string;
  /** The symlink did not match the state (a power cut between the two) and was repaired. */
  repaired: boolean;
}

export interface UpdateStatus {
  installed: boolean;
  root: string;
  linked?: SlotName;
  state?: UpdateState;
  slots: Record<SlotName, ReleaseManifestLike | undefined>;
}

export class UpdateError extends Error {
  override readonly name = 'UpdateError';
  constructor(
    readonly code:
      | 'not-installed'
      | 'busy'
      | 'not-newer'
      | 'rejected'
      | 'bad-bundle'
      | 'nothing-to-roll-back',
    message: string,
  ) {
    super(message);
  }
}

const hostArch = (): 'x64' | 'arm64' => (process.arch === 'arm64' ? 'arm64' : 'x64');

export class Updater {
  readonly slots: Slots;
  readonly #o: Required<Omit<UpdaterOptions, 'fs' | 'restart'>> & Pick<UpdaterOptions, 'restart'>;

  constructor(o: UpdaterOptions) {
    this.slots = new Slots(o.root, o.fs ?? nodeUpdateFs);
    this.#o = {
      root: o.root,
      extract: o.extract ?? defaultExtract,
      now: o.now ?? Date.now,
      maxAttempts: o.maxAttempts ?? 3,
      updateDeadlineMs: o.updateDeadlineMs ?? 30 * 60_000,
      crashLoop: o.crashLoop ?? { starts: 5, windowMs: 10 * 60_000 },
      arch: o.arch ?? hostArch(),
      restart: o.restart,
    };
  }

  get fs(): UpdateFs {
    return this.slots.fs;
  }

  #event(kind: UpdateEvent['kind'], version: string, detail?: string): UpdateEvent {
    return { kind, at: new Date(this.#o.now()).toISOString(), version, ...(detail ? { detail } : {}) };
  }

  async #state(): Promise<UpdateState> {
    const s = await this.slots.readState();
    if (!s)
      throw new UpdateError(
        'not-installed',
        `no ${this.slots.stateFile}: this box is not installed in slots`,
      );
    return s;
  }

  async status(): Promise<UpdateStatus> {
    const state = await this.slots.readState();
    const linked = await this.slots.linkedSlot();
    return {
      installed: state !== undefined,
      root: this.slots.root,
      ...(linked ? { linked } : {}),
      ...(state ? { state } : {}),
      slots: { a: await this.slots.readManifest('a'), b: await this.slots.readManifest('b') },
    };
  }

  /** First installation of a fresh root: the bundle goes into slot a, committed. */
  async install(bundleFile: string): Promise<ReleaseManifestLike> {
    if (await this.slots.readState()) throw new UpdateError('busy', 'already installed: use apply');
    await this.slots.ensureLayout();
    const manifest = await this.#extractInto('a', bundleFile);
    await this.slots.writeState({
      format: 1,
      current: 'a',
      committedVersion: manifest.version,
      last: this.#event('installed', manifest.version),
    });
    await this.slots.switchTo('a');
    return manifest;
  }

  async #extractInto(
    slot: SlotName,
    bundleFile: string,
    expectVersion?: string,
  ): Promise<ReleaseManifestLike> {
    await this.slots.resetSlot(slot);
    const dir = this.slots.slotDir(slot);
    await this.fs.phase('extract-begin', dir);
    let manifest: ReleaseManifestLike;
    try {
      manifest = await this.#o.extract(bundleFile, dir, {
        fsync: true,
        onProgress: () => this.fs.tick(),
        expect: { arch: this.#o.arch, ...(expectVersion ? { version: expectVersion } : {}) },
      });
    } catch (err) {
      await this.fs.remove(dir).catch(() => {});
      throw new UpdateError('bad-bundle', `bundle refused: ${(err as Error).message}`);
    }
    await this.fs.phase('extract-end', dir);
    if (manifest.name !== 'sealroom' || manifest.arch !== this.#o.arch) {
      await this.fs.remove(dir).catch(() => {});
      throw new UpdateError(
        'bad-bundle',
        `bundle is ${manifest.name} for ${manifest.arch}, not sealroom for ${this.#o.arch}`,
      );
    }
    return manifest;
  }

  /**
   * Installs a bundle (already verified by the TUF client) into the inactive slot and switches to it
   * on trial. The restart callback is then asked to start the service on it.
   */
  async apply(
    bundleFile: string,
    o: { expectedVersion?: string; force?: boolean } = {},
  ): Promise<{ slot: SlotName; version: string }> {
    let state = await this.#state();
    if (state.pending)
      throw new UpdateError(
        'busy',
        `${state.pending.version} is still on trial in slot ${state.pending.slot}: wait for its health gate or roll back`,
      );
    const slot = otherSlot(state.current);
    if (o.expectedVersion && !o.force) this.#refuseVersion(state, o.expectedVersion);
    // The slot about to be overwritten must not be the way back any more (durably) before it changes.
    if (state.previous?.slot === slot) {
      const { previous: _dropped, ...rest } = state;
      state = rest;
      await this.slots.writeState(state);
    }
    const manifest = await this.#extractInto(slot, bundleFile, o.expectedVersion);
    if (!o.force) {
      try {
        this.#refuseVersion(state, manifest.version);
      } catch (err) {
        await this.fs.remove(this.slots.slotDir(slot)).catch(() => {});
        throw err;
      }
    }
    await this.slots.writeState({
      ...state,
      pending: {
        slot,
        version: manifest.version,
        attempts: 0,
        deadline: new Date(this.#o.now() + this.#o.updateDeadlineMs).toISOString(),
      },
      last: this.#event('applied', manifest.version, `slot ${slot}`),
    });
    await this.slots.switchTo(slot);
    await this.#o.restart?.();
    return { slot, version: manifest.version };
  }

  #refuseVersion(state: UpdateState, version: string): void {
    if (compareVersions(version, state.committedVersion) <= 0)
      throw new UpdateError(
        'not-newer',
        `${version} is not newer than the running ${state.committedVersion}`,
      );
    if (state.rejected?.includes(version))
      throw new UpdateError(
        'rejected',
        `${version} was rolled back on this box before (use --force to retry)`,
      );
  }

  /**
   * At every start of the service, before the application in `current` runs: decides which slot
   * runs, rolls back when the version on trial used up its attempts or its deadline, or when a
   * committed version is in a crash loop, and makes the symlink match the state.
   */
  async bootCheck(): Promise<BootDecision> {
    const state = await this.#state();
    const now = this.#o.now();
    let decision: Omit<BootDecision, 'repaired'>;
    if (state.pending) {
      const p = state.pending;
      const manifest = await this.slots.readManifest(p.slot);
      const reason =
        manifest?.version !== p.version
          ? `slot ${p.slot} does not hold ${p.version}`
          : p.attempts >= this.#o.maxAttempts
            ? `${p.version} started ${p.attempts} times without passing its health gate`
            : now > Date.parse(p.deadline)
              ? `${p.version} did not pass its health gate by ${p.deadline}`
              : undefined;
      if (reason) {
        const back = await this.#rollbackPending(state, reason, 'rolled-back');
        decision = { action: 'rolled-back', slot: back.current, version: back.committedVersion, reason };
      } else {
        await this.slots.writeState({ ...state, pending: { ...p, attempts: p.attempts + 1 } });
        decision = { action: 'try-pending', slot: p.slot, version: p.version };
      }
    } else {
      const window = this.#o.crashLoop.windowMs;
      const starts = [...(state.starts ?? []).filter((t) => t <= now && now - t < window), now];
      const prev = state.previous;
      const prevOk =
        prev !== undefined &&
        !state.rejected?.includes(prev.version) &&
        (await this.slots.readManifest(prev.slot))?.version === prev.version;
      if (starts.length >= this.#o.crashLoop.starts && prevOk) {
        const reason = `${state.committedVersion} started ${starts.length} times in ${Math.round(window / 60_000)} min without reaching healthy`;
        const back = await this.#rollbackCommitted(state, reason, true);
        decision = {
          action: 'crash-loop-rollback',
          slot: back.current,
          version: back.committedVersion,
          reason,
        };
      } else {
        await this.slots.writeState({ ...state, starts });
        decision = { action: 'start', slot: state.current, version: state.committedVersion };
      }
    }
    const repaired = (await this.slots.linkedSlot()) !== decision.slot;
    if (repaired) await this.slots.switchTo(decision.slot);
    return { ...decision, repaired };
  }

  /** The health gate passed: a version on trial becomes the committed one; a committed one is healthy. */
  async commit(): Promise<{ committed: boolean; version: string }> {
    const state = await this.#state();
    const p = state.pending;
    if (!p) {
      if (state.starts?.length) await this.slots.writeState({ ...state, starts: [] });
      return { committed: false, version: state.committedVersion };
    }
    const { pending: _p, ...rest } = state;
    await this.slots.writeState({
      ...rest,
      current: p.slot,
      committedVersion: p.version,
      previous: { slot: state.current, version: state.committedVersion },
      starts: [],
      rejected: (state.rejected ?? []).filter((v) => v !== p.version),
      last: this.#event('committed', p.version, `slot ${p.slot}`),
    });
    if ((await this.slots.linkedSlot()) !== p.slot) await this.slots.switchTo(p.slot);
    return { committed: true, version: p.version };
  }

  /**
   * Back to the other version: a version on trial is cancelled; otherwise the committed version
   * gives way to the previous one. The restart callback is then asked.
   */
  async rollback(reason = 'asked by a technician'): Promise<{ slot: SlotName; version: string }> {
    const state = await this.#state();
    const next = state.pending
      ? await this.#rollbackPending(state, reason, 'rolled-back')
      : await this.#rollbackCommitted(state, reason, false);
    await this.#o.restart?.();
    return { slot: next.current, version: next.committedVersion };
  }

  async #rollbackPending(
    state: UpdateState,
    reason: string,
    kind: UpdateEvent['kind'],
  ): Promise<UpdateState> {
    const p = state.pending as NonNullable<UpdateState['pending']>;
    const { pending: _p, ...rest } = state;
    const next: UpdateState = {
      ...rest,
      starts: [],
      rejected: [...new Set([...(state.rejected ?? []), p.version])].slice(-20),
      last: this.#event(kind, p.version, reason),
    };
    await this.slots.writeState(next);
    await this.slots.switchTo(state.current);
    return next;
  }

  async #rollbackCommitted(state: UpdateState, reason: string, crashLoop: boolean): Promise<UpdateState> {
    const prev = state.previous;
    if (!prev || (await this.slots.readManifest(prev.slot))?.version !== prev.version)
      throw new UpdateError('nothing-to-roll-back', 'no previous version on this box');
    const next: UpdateState = {
      ...state,
      current: prev.slot,
      committedVersion: prev.version,
      previous: { slot: state.current, version: state.committedVersion },
      starts: [],
      rejected: crashLoop
        ? [...new Set([...(state.rejected ?? []), state.committedVersion])].slice(-20)
        : (state.rejected ?? []),
      last: this.#event(crashLoop ? 'crash-loop-rollback' : 'rolled-back', state.committedVersion, reason),
    };
    await this.slots.writeState(next);
    await this.slots.switchTo(prev.slot);
    return next;
  }

  /**
   * Runs the health gate in the started service. A version on trial commits when every check
   * passes within the gate's time (and its deadline), and rolls back by itself otherwise (then
   * the restart callback starts the old version). A committed version only clears its start count.
   */
  async gate(
    checks: HealthCheck[],
    o: { timeoutMs?: number; retryMs?: number } = {},
  ): Promise<{ result: GateResult; outcome: 'committed' | 'healthy' | 'rolled-back' | 'unhealthy' }> {
    const state = await this.#state();
    const p = state.pending;
    let timeoutMs = o.timeoutMs ?? 120_000;
    if (p) timeoutMs = Math.max(0, Math.min(timeoutMs, Date.parse(p.deadline) - this.#o.now()));
    const result = await runHealthGate(checks, { timeoutMs, ...(o.retryMs ? { retryMs: o.retryMs } : {}) });
    if (result.ok) {
      const c = await this.commit();
      return { result, outcome: c.committed ? 'committed' : 'healthy' };
    }
    if (!p) return { result, outcome: 'unhealthy' };
    const failed = result.checks
      .filter((c) => !c.ok)
      .map((c) => `${c.name}: ${c.detail}`)
      .join('; ');
    await this.rollback(`health gate failed: ${failed}`);
    return { result, outcome: 'rolled-back' };
  }
}

export { UpdateStateError };
