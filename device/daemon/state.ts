// The daemon's observable state: one object that the kiosk UI renders, the HID LEDs mirror and the
// local control API reports. Every part of the daemon writes its own slice through `update`; readers
// subscribe to 'change'. Pure data, no I/O.
import { EventEmitter } from 'node:events';

export type Phase = 'starting' | 'enrolling' | 'idle' | 'in-meeting' | 'error';

export interface VerifiedIdentity {
  /** Participant id inside the meeting. */
  participantId: string;
  /** A room (device certificate) or a signed-in person (short-lived person certificate, issue 12). */
  kind: 'room' | 'person';
  /**
   * From the participant's X.509 certificate (subject), verified on this device against its pinned
   * anchors. For a person: deviceId = 'person:' + email, roomName = the person's name.
   */
  deviceId: string;
  roomName: string;
  org: string;
  /** A person's email (certificate SAN); '' for a room. */
  email: string;
}

export interface RosterEntry extends VerifiedIdentity {
  isLeader: boolean;
  isSelf: boolean;
  /** The member's SFrame sender index (KID): what the wall's video slots name. */
  senderIndex?: number;
}

/** One video m-line of the kiosk page's wall connection (device/media/ipc.ts WallSlot). */
export interface WallSlotView {
  mid: string;
  kind: 'remote' | 'self' | 'content';
  senderIndex?: number;
}

export interface MeetingView {
  meetingId: string;
  role: 'leader' | 'participant';
  /** 'waiting': asked to join, the leader has not admitted us yet. */
  status: 'connecting' | 'waiting' | 'active' | 'denied' | 'ended';
  leader?: VerifiedIdentity;
  /** 40 digits as 8 groups of 5, separated by spaces; absent until the first key is certified. */
  securityCode?: string;
  keyEpoch?: number;
  roster: RosterEntry[];
  /** Join requests this room can admit or deny (only when it leads). */
  waiting: VerifiedIdentity[];
  locked: boolean;
  /** Sending paused until a fresh certified key arrives ("Rekeying…"). */
  rekeying: boolean;
  /** No valid heartbeat from the leader for 3 intervals: media stopped ("Lost contact with the meeting leader"). */
  leaderLost?: boolean;
  /** Set when the leader changed since the code was last confirmed: attendees should re-check. */
  leaderChanged: boolean;
}

export interface EnrollmentView {
  status: 'generating-key' | 'registering' | 'awaiting-claim' | 'fetching-certificate' | 'enrolled' | 'error';
  activationCode?: string;
  expiresAt?: string;
  /** What IT opens or scans (QR) to claim this device. */
  claimUrl?: string;
  message?: string;
}

export interface MediaView {
  micMuted: boolean;
  cameraOff: boolean;
  /** Speaker volume, 0..100. */
  volume: number;
  camera: 'ok' | 'missing' | 'restarting';
  microphone: 'ok' | 'missing' | 'restarting';
  worker: 'stopped' | 'starting' | 'running' | 'restarting';
  /** The wall connection's slots (which m-line shows whom) and the active speaker, from the worker. */
  wall?: { slots: WallSlotView[]; activeSpeaker?: number };
}

/** What the update agent reports to provisioning (POST /v1/devices/:id/update-state), and shows. */
export type UpdatePhase =
  | 'idle'
  | 'available'
  | 'downloading'
  | 'waiting'
  | 'installing'
  | 'restarting'
  | 'verifying'
  | 'committed'
  | 'rolled-back'
  | 'failed';

/**
 * The update agent's slice (device/update/agent.ts). `target` is a version taken from the signed
 * TUF metadata only (never from an unverified reply); `error` is for logs and IT, never the screen.
 */
export interface UpdateView {
  state: UpdatePhase;
  /** The version running now. */
  current: string;
  target?: string;
  channel: string;
  /** Download progress, 0..1. */
  progress?: number;
  /** Why an available update waits. */
  waitingFor?: 'meeting' | 'window' | 'paused';
  error?: string;
  checkedAt?: string;
}

export interface Alert {
  id: string;
  level: 'info' | 'warning' | 'error';
  message: string;
  since: string;
}

export interface DeviceState {
  phase: Phase;
  device: { deviceId?: string; roomName?: string; org?: string; site?: string; version: string };
  enrollment?: EnrollmentView;
  meeting?: MeetingView;
  media: MediaView;
  relay: { connected: boolean; url?: string };
  alerts: Alert[];
  /** Start-up diagnostics: name → ok/fail with a message. */
  diagnostics: { name: string; ok: boolean; detail: string }[];
  /** The checks run once at start (crypto known answers, media worker): what failed, and when. */
  selfTest?: { ok: boolean; failed: string[]; at: string };
  /** Over-the-air updates (present when the box runs from A/B slots with the update agent on). */
  update?: UpdateView;
  /** Increases on every change, so clients can drop stale pushes. */
  revision: number;
}

export function initialState(version: string): DeviceState {
  return {
    phase: 'starting',
    device: { version },
    media: {
      micMuted: false,
      cameraOff: false,
      volume: 60,
      camera: 'ok',
      microphone: 'ok',
      worker: 'stopped',
    },
    relay: { connected: false },
    alerts: [],
    diagnostics: [],
    revision: 0,
  };
}

export class StateStore extends EventEmitter<{ change: [DeviceState] }> {
  #state: DeviceState;

  constructor(initial: DeviceState) {
    super();
    this.#state = initial;
  }

  get(): DeviceState {
    return this.#state;
  }

  /** Applies a change to a fresh copy (readers never see a half-made state) and notifies. */
  update(change: (draft: DeviceState) => void): DeviceState {
    const draft = structuredClone(this.#state);
    change(draft);
    draft.revision = this.#state.revision + 1;
    this.#state = draft;
    this.emit('change', draft);
    return draft;
  }

  raiseAlert(id: string, level: Alert['level'], message: string): void {
    if (this.#state.alerts.some((a) => a.id === id && a.message === message)) return;
    this.update((s) => {
      s.alerts = s.alerts.filter((a) => a.id !== id);
      s.alerts.push({ id, level, message, since: new Date().toISOString() });
    });
  }

  clearAlert(id: string): void {
    if (!this.#state.alerts.some((a) => a.id === id)) return;
    this.update((s) => {
      s.alerts = s.alerts.filter((a) => a.id !== id);
    });
  }
}
