// One opened speakerphone or button box: its input reports become RoomActions calls, and the room
// state goes back to it as LED output reports. The device talks through the same methods as
// node-hid's HIDAsync, so tests drive it with a stand-in that behaves like one.
import type { Logger } from '../../src/util/log.js';
import type { RoomActions } from '../daemon/actions.js';
import type { DeviceState, StateStore } from '../daemon/state.js';
import {
  decodeInputReport,
  encodeLedReports,
  type InputLevels,
  type LedState,
  type RoomButton,
  type RoomControlLayout,
} from './room-controls.js';

/** The part of node-hid's HIDAsync the controller uses (HIDAsync satisfies it as is). */
export interface HidDeviceHandle {
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type, so HIDAsync fits as is.
  on(event: 'data' | 'error', listener: (...args: any[]) => void): unknown;
  removeAllListeners(event?: string): unknown;
  write(values: number[] | Buffer): Promise<number>;
  close(): Promise<void>;
}

export interface ControllerOptions {
  name: string;
  device: HidDeviceHandle;
  layout: RoomControlLayout;
  state: StateStore;
  actions: RoomActions;
  log: Logger;
  /** Volume change per button press, in percent points. */
  volumeStep?: number;
  /** Called once when the device stops answering (unplugged, or a read/write failed). */
  onGone?: (reason: string) => void;
}

export function ledStateFor(state: DeviceState): LedState {
  const meeting = state.phase === 'in-meeting' ? state.meeting : undefined;
  return {
    muted: state.media.micMuted,
    offHook: state.phase === 'in-meeting',
    ring: meeting?.role === 'leader' && meeting.waiting.length > 0,
  };
}

export class HidRoomController {
  readonly #o: ControllerOptions;
  #levels: InputLevels = {};
  #lastLeds: LedState | undefined;
  #queue: Promise<void> = Promise.resolve();
  #gone = false;
  #stopped = false;
  readonly #onChange = () => this.#enqueue(() => this.#syncLeds(false));

  constructor(options: ControllerOptions) {
    this.#o = options;
  }

  get gone(): boolean {
    return this.#gone;
  }

  /** Resolves when every queued press and LED write so far has been handled. */
  idle(): Promise<void> {
    return this.#queue;
  }

  async start(): Promise<void> {
    const { device, state } = this.#o;
    device.on('data', (data: Buffer) => this.#onData(data));
    device.on('error', (err: Error) => this.#lost(`read failed: ${err.message}`));
    state.on('change', this.#onChange);
    // Bring the lights in line with the room right away.
    this.#enqueue(() => this.#syncLeds(true));
    await this.#queue;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#o.state.off('change', this.#onChange);
    await this.#queue;
    this.#o.device.removeAllListeners('data');
    this.#o.device.removeAllListeners('error');
    // Keep an 'error' listener: an EventEmitter without one throws if the reader fails while closing.
    this.#o.device.on('error', () => {});
    try {
      await this.#o.device.close();
    } catch (err) {
      this.#o.log.debug({ err, device: this.#o.name }, 'closing HID device failed (already gone)');
    }
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      this.#o.log.error({ err, device: this.#o.name }, 'HID task failed');
    });
  }

  #onData(data: Buffer): void {
    if (this.#gone || this.#stopped) return;
    const { buttons, levels } = decodeInputReport(this.#o.layout, data, this.#levels);
    this.#levels = levels;
    for (const button of buttons) this.#enqueue(() => this.#press(button));
  }

  async #press(button: RoomButton): Promise<void> {
    const { actions, state, log, name } = this.#o;
    const now = state.get();
    log.info({ device: name, button }, 'room control pressed');
    try {
      switch (button) {
        case 'mute':
          await actions.setMicMuted(!now.media.micMuted);
          break;
        case 'mute-on':
        case 'mute-off':
          if (now.media.micMuted !== (button === 'mute-on')) await actions.setMicMuted(button === 'mute-on');
          break;
        case 'volume-up':
        case 'volume-down': {
          const step = (this.#o.volumeStep ?? 5) * (button === 'volume-up' ? 1 : -1);
          const volume = Math.max(0, Math.min(100, now.media.volume + step));
          if (volume !== now.media.volume) await actions.setVolume(volume);
          break;
        }
        case 'hook-on':
          // The red "end call" button: leave the meeting this room is in.
          if (now.phase === 'in-meeting') await actions.leaveMeeting();
          break;
        case 'hook-off':
          // The green "answer" button while idle starts a meeting, like the touch screen's button.
          if (now.phase === 'idle') await actions.startMeeting();
          break;
      }
    } catch (err) {
      log.warn({ device: name, button, err: (err as Error).message }, 'room control action refused');
    }
    // A speakerphone flips its mute back unless the host answers with the LED Mute usage, so answer
    // every press with the room's actual state, even when nothing changed.
    await this.#syncLeds(true);
  }

  async #syncLeds(force: boolean): Promise<void> {
    if (this.#gone || this.#stopped) return;
    const leds = ledStateFor(this.#o.state.get());
    const last = this.#lastLeds;
    if (!force && last?.muted === leds.muted && last.offHook === leds.offHook && last.ring === leds.ring)
      return;
    this.#lastLeds = leds;
    for (const report of encodeLedReports(this.#o.layout, leds)) {
      try {
        await this.#o.device.write(Buffer.from(report));
      } catch (err) {
        this.#lost(`LED write failed: ${(err as Error).message}`);
        return;
      }
    }
  }

  #lost(reason: string): void {
    if (this.#gone || this.#stopped) return;
    this.#gone = true;
    this.#o.log.warn({ device: this.#o.name, reason }, 'HID device lost (unplugged?)');
    this.#o.onGone?.(reason);
  }
}
