// Finds speakerphones and button boxes, opens them and keeps the set current: node-hid has no hotplug
// events, so the manager polls `devicesAsync()`; a device that disappears (or fails mid-read) is
// closed, one that appears is opened. Permission problems are reported with the fix (the udev rule).
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Device } from 'node-hid';
import type { Logger } from '../../src/util/log.js';
import type { RoomActions } from '../daemon/actions.js';
import type { StateStore } from '../daemon/state.js';
import { type HidDeviceHandle, HidRoomController } from './controller.js';
import { readSysfsDescriptor } from './descriptor-files.js';
import { isRoomControl, layoutFromDescriptor } from './room-controls.js';
import { Page } from './usages.js';

export interface HidBackend {
  enumerate(): Promise<Device[]>;
  open(path: string): Promise<HidDeviceHandle>;
  readDescriptor(path: string): Promise<Uint8Array>;
}

export const UDEV_RULE_PATH = '/etc/udev/rules.d/60-sealroom-hid.rules';

/** The real backend: node-hid (hidraw) for enumeration and I/O, sysfs for report descriptors. */
export function nodeHidBackend(): HidBackend {
  const hid = import('node-hid');
  return {
    async enumerate() {
      return (await hid).devicesAsync();
    },
    async open(path) {
      // node-hid's own message on failure is only "cannot open device with path …"; asking the file
      // system first keeps the errno (EACCES, ENOENT) so the message can say what to do.
      await access(path, constants.R_OK | constants.W_OK);
      return (await hid).HIDAsync.open(path, { nonExclusive: true });
    },
    readDescriptor: (path) => readSysfsDescriptor(path),
  };
}

export type HidDeviceStatus = 'active' | 'no-access' | 'failed' | 'not-a-room-control';

export interface HidDeviceReport {
  path: string;
  product: string;
  vendorId: number;
  productId: number;
  status: HidDeviceStatus;
  message: string;
}

export interface HidManagerOptions {
  state: StateStore;
  actions: RoomActions;
  log: Logger;
  backend?: HidBackend;
  pollMs?: number;
}

/** A readable sentence for why a device could not be used. */
export function explainOpenError(
  path: string,
  product: string,
  err: unknown,
): { status: HidDeviceStatus; message: string } {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM') {
    return {
      status: 'no-access',
      message:
        `No permission to open ${product} (${path}). Install the udev rule ${UDEV_RULE_PATH} ` +
        '(shipped in the sealroom package), run `udevadm control --reload && udevadm trigger`, ' +
        'and make sure the daemon runs as the sealroom user.',
    };
  }
  if (code === 'ENOENT') {
    return { status: 'failed', message: `${product} (${path}) disappeared before it could be opened.` };
  }
  return {
    status: 'failed',
    message: `Could not use ${product} (${path}): ${(err as Error)?.message ?? String(err)}`,
  };
}

function describe(device: Device): string {
  const name = [device.manufacturer, device.product].filter(Boolean).join(' ');
  const ids = `${device.vendorId.toString(16).padStart(4, '0')}:${device.productId.toString(16).padStart(4, '0')}`;
  return name ? `${name} [${ids}]` : `HID device ${ids}`;
}

export class HidManager {
  readonly #o: HidManagerOptions;
  readonly #backend: HidBackend;
  readonly #controllers = new Map<string, HidRoomController>();
  readonly #reports = new Map<string, HidDeviceReport>();
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #stopped = false;
  #enumerationError: string | undefined;

  constructor(options: HidManagerOptions) {
    this.#o = options;
    this.#backend = options.backend ?? nodeHidBackend();
  }

  devices(): HidDeviceReport[] {
    return [...this.#reports.values()];
  }

  controller(path: string): HidRoomController | undefined {
    return this.#controllers.get(path);
  }

  start(): Promise<void> {
    this.#stopped = false;
    const first = this.scan();
    this.#timer = setInterval(() => void this.scan(), this.#o.pollMs ?? 2000);
    this.#timer.unref();
    return first;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#scanning;
    await Promise.all([...this.#controllers.values()].map((c) => c.stop()));
    this.#controllers.clear();
    this.#reports.clear();
    this.#o.state.clearAlert('hid-access');
  }

  /** One pass of discovery; overlapping calls share the running pass. */
  scan(): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    const { log } = this.#o;
    let found: Device[];
    try {
      found = await this.#backend.enumerate();
      this.#enumerationError = undefined;
    } catch (err) {
      // Say it once per distinct failure (e.g. node-hid's binary cannot load), not every poll.
      const message = (err as Error).message;
      if (this.#enumerationError !== message)
        log.error({ err }, 'HID enumeration failed; room buttons unavailable');
      this.#enumerationError = message;
      return;
    }
    // hidapi lists one entry per top-level collection: group them by device node.
    const byPath = new Map<string, Device[]>();
    for (const d of found) {
      if (!d.path) continue;
      byPath.set(d.path, [...(byPath.get(d.path) ?? []), d]);
    }
    for (const path of [...this.#reports.keys()]) {
      if (!byPath.has(path)) await this.#forget(path, 'unplugged');
    }
    for (const [path, entries] of byPath) {
      if (this.#stopped) return;
      const known = this.#reports.get(path);
      // Retry devices that failed (permissions may have been fixed), not working or ignored ones.
      if (known && (known.status === 'active' || known.status === 'not-a-room-control')) continue;
      if (!entries.some((e) => e.usagePage === Page.Telephony)) continue;
      await this.#adopt(path, entries[0]!);
    }
    this.#updateAlert();
  }

  async #adopt(path: string, info: Device): Promise<void> {
    const { log, state, actions } = this.#o;
    const product = describe(info);
    const report = (status: HidDeviceStatus, message: string) => {
      const previous = this.#reports.get(path);
      this.#reports.set(path, {
        path,
        product,
        vendorId: info.vendorId,
        productId: info.productId,
        status,
        message,
      });
      // Say it once, not on every poll.
      if (previous?.message !== message) {
        const level = status === 'active' || status === 'not-a-room-control' ? 'info' : 'warn';
        log[level]({ path, product, status }, message);
      }
    };
    let layout: ReturnType<typeof layoutFromDescriptor>;
    try {
      layout = layoutFromDescriptor(await this.#backend.readDescriptor(path));
    } catch (err) {
      const { status, message } = explainOpenError(path, product, err);
      report(
        status,
        status === 'failed' ? `Could not read the report descriptor of ${product}: ${message}` : message,
      );
      return;
    }
    if (!isRoomControl(layout)) {
      report('not-a-room-control', `${product} has no mute, hook or volume buttons; ignored.`);
      return;
    }
    let device: HidDeviceHandle;
    try {
      device = await this.#backend.open(path);
    } catch (err) {
      const { status, message } = explainOpenError(path, product, err);
      report(status, message);
      return;
    }
    const controller = new HidRoomController({
      name: product,
      device,
      layout,
      state,
      actions,
      log,
      onGone: (reason) => {
        void this.#forget(path, reason);
      },
    });
    this.#controllers.set(path, controller);
    await controller.start();
    report('active', `${product} connected: mute, hook and volume buttons active.`);
  }

  async #forget(path: string, reason: string): Promise<void> {
    const controller = this.#controllers.get(path);
    const known = this.#reports.get(path);
    this.#controllers.delete(path);
    this.#reports.delete(path);
    if (known)
      this.#o.log.info({ path, product: known.product, reason }, `${known.product} removed (${reason})`);
    await controller?.stop();
    this.#updateAlert();
  }

  #updateAlert(): void {
    const blocked = [...this.#reports.values()].filter((r) => r.status === 'no-access');
    if (blocked.length === 0) {
      this.#o.state.clearAlert('hid-access');
    } else {
      this.#o.state.raiseAlert(
        'hid-access',
        'warning',
        `Room buttons unavailable: no permission to open ${blocked.map((b) => b.product).join(', ')}. IT: install the Sealroom udev rule.`,
      );
    }
  }
}
