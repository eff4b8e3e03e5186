// MediaPort over the media worker's supervisor (device/media): real GStreamer pipelines, SFrame in
// the worker, werift to the relay's SFU. The worker always answers the SFU's offers.
import type { KeysEvent } from '../../src/core/e2ee/index.js';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import type { RosterLabel } from '../media/ipc.js';
import type { MediaSupervisor } from '../media/supervisor.js';
import type { MediaPort } from './media-port.js';

export class WorkerMedia implements MediaPort {
  readonly #supervisor: MediaSupervisor;
  #active = false;
  #meetingId: string | undefined;
  readonly #resetListeners: (() => void)[] = [];

  constructor(supervisor: MediaSupervisor) {
    this.#supervisor = supervisor;
    // A restarted worker has a new, unconnected PeerConnection: ask for a fresh offer.
    supervisor.on('ready', ({ restarts }) => {
      if (restarts === 0 || !this.#active) return;
      this.#supervisor.connect('answer');
      for (const l of this.#resetListeners) l();
    });
  }

  connect(): void {
    this.#active = true;
    this.#supervisor.disconnect();
    this.#supervisor.connect('answer');
  }

  disconnect(): void {
    this.#active = false;
    this.#supervisor.disconnect();
  }

  signal(payload: SignalPayload): void {
    this.#supervisor.signal(payload);
  }

  onSignal(listener: (payload: SignalPayload) => void): void {
    this.#supervisor.on('signal', listener);
  }

  onReset(listener: () => void): void {
    this.#resetListeners.push(listener);
  }

  keys(event: KeysEvent): void {
    // Another meeting's keys never linger beside this one's, even if nobody called endMeeting().
    if (this.#meetingId !== undefined && event.meetingId !== this.#meetingId) this.#supervisor.clearKeys();
    this.#meetingId = event.meetingId;
    this.#supervisor.setKeys(event);
  }

  endMeeting(): void {
    this.#meetingId = undefined;
    this.#supervisor.clearKeys();
  }

  labels(participants: RosterLabel[]): void {
    this.#supervisor.setRoster(participants);
  }

  async close(): Promise<void> {
    await this.#supervisor.stop();
  }
}
