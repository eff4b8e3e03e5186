// The E2EE worker's logic, free of Worker glue (Node tests drive it with `ws` and a real relay): one
// person in one meeting. Authenticates to the relay with the person certificate, asks to join (never
// creates), runs the core's ParticipantSession, verifies every identity with the TrustStore, and
// tells the page only what it may know — status, the verified view, the SFU's signalling — while the
// keys go to the transform worker and nowhere else.
//
// Trust: names come only from certificates verified here (verified-roster.ts). Of the relay's roster
// only `sharing` is read — which member's stream goes in the content slot — and kept only if that
// id is a verified member. Reconnects after a dropped connection as a room does (see #lost).
import {
  type E2eeMessage,
  type KeysEvent,
  type ParticipantSession,
  type RosterMember,
  type SessionEvent,
  type SessionOutput,
  validateE2eeMessage,
} from '../../core/e2ee/index.js';
import type { ServerMessage } from '../../core/protocol/relay.js';
import { RelayRedirect } from '../../core/protocol/relay-requests.js';
import { TrustStore } from '../../pki/trust-store.js';
import type {
  E2eeToPage,
  E2eeToTransform,
  MeetingStatus,
  MeetingView,
  PageToE2ee,
  SignalPayload,
  TransformKeys,
  TrustAnchorsJson,
} from '../shared/messages.js';
import { type AsyncSigner, type OpenSocket, RelayClient, RelayRefusal } from './relay-client.js';
import { RelayEndpoints } from '../../../device/daemon/relay-endpoints.js';
import { createParticipantSession } from './session-factory.js';
import { anchorsFromJson, type Verify, verifiedMembers } from './verified-roster.js';

export interface WebMeetingDeps {
  toPage(m: E2eeToPage): void;
  toTransform(m: E2eeToTransform): void;
  openSocket: OpenSocket;
  /** The trust check (default: a TrustStore over the anchors of `start`). */
  makeVerify?: (anchors: TrustAnchorsJson) => Verify;
  /** E2EE tick (default 250 ms, as the rooms). */
  tickMs?: number;
  leaderSilentAfterMs?: number;
  connectTimeoutMs?: number;
}

export interface StartParams {
  relayUrl: string;
  /**
   * The page's relay URLs (the service's `web.relayUrls`, also its CSP connect-src): a clustered
   * relay's redirect is followed only to one of these origins, or to the link relay's host name.
   */
  relayUrls?: string[];
  meetingId: string;
  certificatePem: string;
  trust: TrustAnchorsJson;
  signer: AsyncSigner;
}

const DEFAULT_TICK_MS = 250;
/** How long a dropped connection is retried before the page is told it is over (as the rooms' resume). */
const RECONNECT_DEADLINE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FINAL: ReadonlySet<MeetingStatus> = new Set(['denied', 'left', 'ended', 'refused', 'error']);
/**
 * Join refusals retried while reconnecting: the meeting is not back yet, the cluster cannot place it
 * now, or the node's request budget is spent for a moment (the loop backs off to 2 s).
 */
const RETRY_CODES = new Set([
  'no-meeting',
  'participant-exists',
  'cluster-unavailable',
  'no-node',
  'rate-limited',
  '',
]);
/** Close code of a clustered relay node that no longer hosts the meeting (CLOSE.moved). */
const CLOSE_MOVED = 4012;
/** Fixed words: nothing a redirect says (its URL, its meeting) reaches the page. */
const REDIRECT_REFUSED_TEXT = 'The relay tried to send you to a server this organisation does not use';

/** A redirect the worker did not follow (the reason is for the console, never the page). */
class RedirectRefused extends Error {
  readonly code = 'redirect-refused';
}

/** Plain-language words for relay refusals a person may see. */
function refusalText(code: string, message: string): string {
  if (code === 'no-meeting') return 'There is no such meeting (check the link)';
  if (code === 'rooms-only') return 'Only rooms can do that';
  if (code === 'locked') return 'The meeting is locked';
  if (code.startsWith('certificate-'))
    return `The relay refused your sign-in certificate (${code}): sign in again`;
  return `The relay refused: ${message} (${code})`;
}

function isRelayUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'wss:' || u.protocol === 'ws:';
  } catch {
    return false;
  }
}

export function pemToDer(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

export function toTransformKeys(e: KeysEvent): TransformKeys {
  return {
    type: 'keys',
    epoch: e.epoch,
    sendKid: e.sendKid.toString(),
    sendKey: Uint8Array.from(e.sendKey),
    receiveKeys: e.receiveKeys.map((k) => ({ kid: k.kid.toString(), key: Uint8Array.from(k.key) })),
    auth: e.auth.map((a) => ({
      peerIndex: a.peerIndex,
      send: Uint8Array.from(a.send),
      receive: Uint8Array.from(a.receive),
    })),
    sending: e.sending,
  };
}

export class WebMeeting {
  readonly #deps: WebMeetingDeps;
  #status: MeetingStatus | undefined;
  #relay: RelayClient | undefined;
  #session: ParticipantSession | undefined;
  #verify: Verify | undefined;
  #tick: ReturnType<typeof setInterval> | undefined;
  #mediaRequested = false;
  #roster: RosterMember[] = [];
  #relaySharing: string | null = null;
  #lastView = '';
  #started = false;
  #reconnecting = false;
  #params: (StartParams & { certificate: Uint8Array }) | undefined;
  #endpoints: RelayEndpoints | undefined;
  /** The relay instance (node) where we last joined: back there → dropped (join anew), else resume. */
  #meetingRelayId = '';
  readonly #view: MeetingView = {
    meetingId: '',
    participantId: '',
    leaderId: '',
    members: [],
    refused: [],
    sending: false,
    sharer: null,
    epoch: 0,
    muted: { audio: false, video: false },
  };
  readonly #refused = new Set<string>();
  #securityCode: string | undefined;

  constructor(deps: WebMeetingDeps) {
    this.#deps = deps;
  }

  get status(): MeetingStatus | undefined {
    return this.#status;
  }

  get #final(): boolean {
    return this.#status !== undefined && FINAL.has(this.#status);
  }

  get participantId(): string {
    return this.#view.participantId;
  }

  /** Page messages other than `start` (the worker shell turns `start` into start()). */
  handle(m: Exclude<PageToE2ee, { type: 'start' }>): void {
    switch (m.type) {
      case 'signal':
        this.#relay?.send({ type: 'signal', payload: m.payload });
        return;
      case 'share':
        void this.#share(m.enabled === true);
        return;
      case 'mute':
        this.#view.muted = { audio: m.audio === true, video: m.video === true };
        this.#postView();
        return;
      case 'leave':
        void this.leave();
        return;
      default:
        return;
    }
  }

  async start(p: StartParams): Promise<void> {
    if (this.#started) throw new Error('already started');
    this.#started = true;
    this.#view.meetingId = p.meetingId.trim().toLowerCase();
    this.#setStatus('connecting', 'Connecting to the meeting');
    try {
      this.#verify = (this.#deps.makeVerify ?? defaultVerify)(p.trust);
    } catch (err) {
      this.#finish('error', `The organisation's trust anchors are unusable: ${(err as Error).message}`);
      return;
    }
    if (!isRelayUrl(p.relayUrl)) {
      this.#finish('refused', 'The meeting link names no valid relay (ws:// or wss://)');
      return;
    }
    let certificate: Uint8Array;
    try {
      certificate = pemToDer(p.certificatePem);
    } catch {
      this.#finish('refused', 'Your sign-in certificate is unreadable: sign in again');
      return;
    }
    // Our own certificate must verify under the anchors the rooms use too, or every room refuses us.
    const own = this.#verify(certificate, p.signer.publicKey);
    if (!own.ok) {
      this.#finish('refused', `Your sign-in certificate does not verify (${own.reason}): sign in again`);
      return;
    }
    this.#params = { ...p, certificate };
    this.#endpoints = new RelayEndpoints(
      [p.relayUrl],
      (p.relayUrls ?? []).filter((u) => typeof u === 'string'),
    );
    try {
      await this.#enter('new');
    } catch (err) {
      if (err instanceof RedirectRefused) this.#finish('refused', REDIRECT_REFUSED_TEXT);
      else if (err instanceof ConnectFailed) {
        const cause = err.cause;
        if (cause instanceof RelayRefusal && cause.code !== 'closed')
          this.#finish('refused', refusalText(cause.code, cause.message));
        else this.#finish('error', `Could not connect to the relay: ${(cause as Error).message}`);
      } else if (err instanceof RelayRefusal) this.#finish('refused', refusalText(err.code, err.message));
      else this.#finish('error', `Could not join: ${(err as Error).message}`);
      return;
    }
    if (!this.#final)
      this.#tick = setInterval(() => this.#guard(() => this.#onTick()), this.#deps.tickMs ?? DEFAULT_TICK_MS);
  }

  /** Connects to the pinned redirect target, or (it failing, or none) the link's relay. */
  async #connect(): Promise<RelayClient> {
    const p = this.#params!;
    const endpoints = this.#endpoints!;
    for (;;) {
      const url = endpoints.next();
      try {
        const relay = await RelayClient.connect({
          url,
          certificatePem: p.certificatePem,
          signer: p.signer,
          openSocket: this.#deps.openSocket,
          ...(this.#deps.connectTimeoutMs ? { timeoutMs: this.#deps.connectTimeoutMs } : {}),
        });
        endpoints.connected(url);
        return relay;
      } catch (err) {
        // A pinned node that cannot be reached: back to the link's relay at once.
        if (endpoints.failed(url) === 'pinned' && !this.#final) continue;
        throw new ConnectFailed(err);
      }
    }
  }

  /**
   * Connects and joins, following the relay's redirects (only to trusted nodes, only into this
   * meeting, at most MAX_REDIRECTS in a row). 'new' joins as a new participant; 'auto' resumes
   * with our participant id unless this is the node that dropped us.
   */
  async #enter(mode: 'new' | 'auto'): Promise<void> {
    const endpoints = this.#endpoints!;
    // Our own count too: a pinned node that cannot be reached resets the endpoints' count.
    for (let hops = 0; ; hops++) {
      if (hops > endpoints.maxRedirects) {
        endpoints.unpin();
        console.warn('refused a relay redirect (too many redirects in a row)');
        throw new RedirectRefused('too many redirects in a row');
      }
      const relay = await this.#connect();
      const join = mode === 'new' || relay.relayId === this.#meetingRelayId ? 'new' : 'resume';
      try {
        await this.#join(relay, join);
        endpoints.settled();
        if (this.#relay === relay) this.#meetingRelayId = relay.relayId;
        return;
      } catch (err) {
        if (this.#relay === relay) this.#relay = undefined; // its close is not a lost meeting
        relay.close();
        if (!(err instanceof RelayRedirect)) throw err;
        const verdict = endpoints.redirect(err.url, err.meetingId, this.#view.meetingId);
        if (!verdict.ok) {
          endpoints.unpin();
          console.warn(`refused a relay redirect (${verdict.reason})`);
          throw new RedirectRefused(verdict.reason);
        }
      }
    }
  }

  /**
   * Joins on an authenticated connection: 'new' as a new participant (a fresh E2EE session, waiting
   * for admission), 'resume' with our participant id and E2EE session after a relay restart (the
   * leader re-admits the members of its signed list as they come back).
   */
  async #join(relay: RelayClient, mode: 'new' | 'resume'): Promise<void> {
    if (this.#final) {
      relay.close(); // left while connecting
      return;
    }
    this.#relay = relay;
    this.#mediaRequested = false;
    const held: ServerMessage[] = [];
    let holding = true; // frames that overtake the join reply wait for the session
    relay.onMessage = (m) => (holding ? held.push(m) : this.#guard(() => this.#onRelay(m)));
    relay.onClose = (code, reason) => {
      if (this.#relay === relay) this.#lost(code, reason);
    };
    try {
      const resume = mode === 'resume' && this.#session !== undefined;
      const reply = await relay.request({
        type: 'join',
        meetingId: this.#view.meetingId,
        ...(resume ? { participantId: this.#view.participantId } : {}),
      });
      if (reply.type !== 'meeting') throw new Error('the relay did not accept the join');
      if (!resume) await this.#newSession(reply.meetingId, reply.participantId);
      if (this.#final) {
        relay.close(); // left (or was refused) while the join was on its way
        return;
      }
      const session = this.#session!;
      if (session.isMember) {
        // Back after a relay restart: in the meeting again once the leader re-admits us at the relay.
        if (reply.status === 'active') this.#setStatus('admitted', 'In the meeting');
        else this.#setStatus('connecting', 'Back at the relay: waiting for the room to let you back in');
      } else {
        this.#setStatus('waiting', 'Waiting for the room to let you in');
        this.#route(session.start()); // the signed binding goes to the leader (again, after a restart)
      }
      if (reply.status === 'active') this.#requestMedia();
    } finally {
      holding = false;
    }
    for (const m of held.splice(0)) this.#guard(() => this.#onRelay(m));
    this.#postView();
  }

  async #newSession(meetingId: string, participantId: string): Promise<void> {
    const p = this.#params!;
    if (this.#session) {
      // The old E2EE identity is gone for good (the leader removes it): drop its keys and view.
      this.#session.state.wipe();
      this.#deps.toTransform({ type: 'wipe' });
      this.#roster = [];
      this.#securityCode = undefined;
      this.#view.leaderId = '';
      this.#view.sending = false;
      this.#view.epoch = 0;
    }
    this.#view.participantId = participantId;
    this.#session = await createParticipantSession({
      meetingId,
      participantId,
      signer: p.signer,
      certificate: p.certificate,
      trustIdentity: (id, key, cert) => this.#trusts(id, key, cert),
      ...(this.#deps.leaderSilentAfterMs ? { leaderSilentAfterMs: this.#deps.leaderSilentAfterMs } : {}),
    });
  }

  /**
   * The relay connection dropped. A revoked certificate (close 4403) ends it. Otherwise reconnect,
   * as a room does: a relay that restarted (another relay id) gets our participant id back and the
   * E2EE session carries on; the same relay dropped us, so the leader removes us and we ask to join
   * again as a new participant. Given up after RECONNECT_DEADLINE_MS.
   */
  #lost(code: number, reason: string): void {
    if (this.#final) return;
    if (code === 4403 || !this.#session) {
      if (code === 4403) this.#finish('refused', refusalText('certificate-revoked', reason));
      else this.#finish('error', `The relay connection closed (${code} ${reason})`);
      return;
    }
    // A node that no longer hosts the meeting (4012): through the link's relay again.
    if (code === CLOSE_MOVED) this.#endpoints?.unpin();
    this.#relay = undefined;
    if (this.#reconnecting) return; // a connection of the reconnect loop: the loop carries on
    this.#reconnecting = true;
    this.#setStatus('connecting', 'Lost the relay: reconnecting');
    this.#postView();
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    try {
      await this.#reconnectLoop();
    } finally {
      this.#reconnecting = false;
    }
  }

  async #reconnectLoop(): Promise<void> {
    const deadline = Date.now() + RECONNECT_DEADLINE_MS;
    let delay = 250;
    let lastError = '';
    while (!this.#final && Date.now() < deadline) {
      await sleep(delay);
      delay = Math.min(delay * 2, 2000);
      if (this.#final) return;
      try {
        await this.#enter('auto');
        return;
      } catch (err) {
        if (err instanceof RedirectRefused) {
          this.#finish('refused', REDIRECT_REFUSED_TEXT);
          return;
        }
        if (err instanceof ConnectFailed) {
          const cause = err.cause;
          if (cause instanceof RelayRefusal && cause.code !== 'closed') {
            this.#finish('refused', refusalText(cause.code, cause.message));
            return;
          }
          lastError = (cause as Error).message;
          continue;
        }
        const code = err instanceof RelayRefusal ? err.code : '';
        lastError = (err as Error).message;
        // The leader may not have re-created the meeting yet, the relay still holds our old id, or
        // the cluster cannot place it right now.
        if (!RETRY_CODES.has(code)) {
          this.#finish('refused', refusalText(code, lastError));
          return;
        }
      }
    }
    this.#finish('error', `Could not get back into the meeting: ${lastError || 'the relay is unreachable'}`);
  }

  async leave(): Promise<void> {
    if (this.#final) return;
    const relay = this.#relay;
    this.#finish('left', 'You left the meeting');
    if (relay?.open) await relay.request({ type: 'leave' }).catch(() => undefined);
    relay?.close();
  }

  // ---- relay ----

  #onRelay(m: ServerMessage): void {
    const session = this.#session;
    if (!session || this.#final) return;
    switch (m.type) {
      case 'e2ee': {
        let message: E2eeMessage;
        try {
          message = validateE2eeMessage(m.payload);
        } catch {
          return; // not a valid E2EE message: dropped, as a room does
        }
        this.#route(session.handle(message));
        return;
      }
      case 'signal':
        if (this.#mediaRequested) this.#deps.toPage({ type: 'signal', payload: m.payload as SignalPayload });
        return;
      case 'meeting':
        if (m.meetingId !== this.#view.meetingId || m.status !== 'active') return;
        this.#requestMedia();
        if (session.isMember) this.#setStatus('admitted', 'In the meeting');
        return;
      case 'roster': {
        if (m.meetingId !== this.#view.meetingId) return;
        // Only who shares: a relay-supplied id, used to pick a verified member's stream, never to name.
        const sharing = (m as { sharing?: unknown }).sharing;
        this.#relaySharing = typeof sharing === 'string' ? sharing : null;
        this.#postView();
        return;
      }
      case 'denied':
        if (m.meetingId === this.#view.meetingId) this.#finish('denied', 'The room did not let you in');
        return;
      case 'ended':
        if (m.meetingId === this.#view.meetingId) this.#finish('ended', 'The meeting has ended');
        return;
      default:
        return;
    }
  }

  #requestMedia(): void {
    if (this.#mediaRequested || !this.#relay?.open) return;
    this.#mediaRequested = true;
    this.#relay.send({ type: 'media', enabled: true });
  }

  async #share(enabled: boolean): Promise<void> {
    const relay = this.#relay;
    if (!relay?.open || this.#status !== 'admitted') {
      this.#deps.toPage({ type: 'share', enabled, ok: false, text: 'Not in the meeting' });
      return;
    }
    try {
      await relay.request({ type: 'share', enabled });
      this.#deps.toPage({
        type: 'share',
        enabled,
        ok: true,
        text: enabled ? 'Sharing your screen' : 'Stopped sharing',
      });
    } catch (err) {
      const text = err instanceof RelayRefusal ? refusalText(err.code, err.message) : (err as Error).message;
      this.#deps.toPage({ type: 'share', enabled, ok: false, text });
    }
  }

  // ---- E2EE ----

  #trusts(participantId: string, identityKey: Uint8Array, certificate: Uint8Array): boolean {
    const verdict = this.#verify?.(certificate, identityKey);
    if (verdict?.ok) return true;
    this.#refused.add(participantId);
    return false;
  }

  #onTick(): void {
    if (this.#session && this.#relay?.open && this.#status && !FINAL.has(this.#status))
      this.#route(this.#session.tick());
  }

  #route(output: SessionOutput): void {
    for (const message of output.outgoing) {
      this.#relay?.send({
        type: 'e2ee',
        ...(message.to !== undefined ? { to: message.to } : {}),
        payload: message as unknown as Record<string, unknown>,
      });
    }
    for (const event of output.events) this.#onEvent(event);
    this.#postView();
  }

  #onEvent(e: SessionEvent): void {
    switch (e.type) {
      case 'keys':
        this.#view.epoch = e.epoch;
        this.#view.sending = e.sending;
        this.#deps.toTransform(toTransformKeys(e)); // the only place keys go
        return;
      case 'joined':
        this.#setStatus('admitted', 'In the meeting');
        return;
      case 'roster':
        this.#roster = e.members;
        this.#view.leaderId = e.leaderId;
        return;
      case 'security-code':
        this.#securityCode = e.code;
        return;
      case 'identity-refused':
        this.#refused.add(e.participantId);
        return;
      case 'removed':
        this.#finish('ended', 'The room removed you from the meeting');
        return;
      default:
        return;
    }
  }

  // ---- to the page ----

  #postView(): void {
    if (!this.#verify || this.#status === undefined) return;
    const refused = this.#refused;
    const members = verifiedMembers(this.#verify, this.#roster, this.#view.participantId, refused);
    const leaderVerified = members.some((m) => m.leader && m.participantId === this.#view.leaderId);
    const view: MeetingView = {
      ...this.#view,
      members,
      refused: [...refused].slice(0, 64),
      sharer: members.some((m) => m.participantId === this.#relaySharing) ? this.#relaySharing : null,
      ...(leaderVerified && this.#securityCode ? { securityCode: this.#securityCode } : {}),
    };
    const text = JSON.stringify(view);
    if (text === this.#lastView) return;
    this.#lastView = text;
    this.#deps.toPage({ type: 'view', view });
  }

  #setStatus(status: MeetingStatus, text: string): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#deps.toPage({ type: 'status', status, text });
  }

  /** A final status: timers stop, the transform's keys are wiped, the session's keys too. */
  #finish(status: MeetingStatus, text: string): void {
    if (this.#status && FINAL.has(this.#status)) return;
    if (this.#tick) clearInterval(this.#tick);
    this.#tick = undefined;
    this.#session?.state.wipe();
    this.#deps.toTransform({ type: 'wipe' });
    this.#view.sending = false;
    this.#setStatus(status, text);
    this.#postView();
    if (status !== 'left') this.#relay?.close();
  }

  #guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      // hostile input never ends the worker; an unexpected throw is reported, the meeting goes on
      this.#deps.toPage({
        type: 'status',
        status: this.#status ?? 'error',
        text: `Internal error: ${(err as Error).message}`,
      });
    }
  }
}

function defaultVerify(json: TrustAnchorsJson): Verify {
  const store = new TrustStore(anchorsFromJson(json));
  return (der, key) => store.verify(der, key);
}

/** Connecting failed (the cause: a RelayRefusal or a network error), as opposed to a join refused. */
class ConnectFailed extends Error {
  constructor(override readonly cause: unknown) {
    super((cause as Error)?.message ?? 'could not connect');
  }
}
