// Room controls end to end without hardware: a stand-in with node-hid's HIDAsync surface, a real
// StateStore and the room double behind RoomActions; discovery with hotplug, unplug mid-read and
// permission errors; and the real node-hid path on this machine (no HID devices at all).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Device } from 'node-hid';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initialState, StateStore } from '../device/daemon/state.js';
import { HidRoomController } from '../device/hid/controller.js';
import { loadKnownDescriptors, readSysfsDescriptor } from '../device/hid/descriptor-files.js';
import { explainOpenError, type HidBackend, HidManager, nodeHidBackend } from '../device/hid/discovery.js';
import { layoutFromDescriptor } from '../device/hid/room-controls.js';
import { silentLogger } from '../src/util/log.js';
import { FakeHidDevice } from './hid-fake-device.js';
import { RoomDouble } from './kiosk-room-double.js';

const DESCRIPTOR = loadKnownDescriptors().find((d) => d.name === 'uc-camera-speakerphone-gadget')!.bytes;
const POWERCONF = loadKnownDescriptors().find((d) => d.name === 'anker-powerconf-291a-3301')!.bytes;

function deviceInfo(path: string, usagePage: number, product = 'Speak Test'): Device {
  return {
    vendorId: 0x0b0e,
    productId: 0x2456,
    path,
    manufacturer: 'GN',
    product,
    release: 1,
    interface: 3,
    usagePage,
    usage: 5,
  };
}

let store: StateStore;
let room: RoomDouble;

beforeEach(() => {
  store = new StateStore(initialState('t'));
  store.update((s) => {
    s.phase = 'idle';
  });
  room = new RoomDouble(store);
});

async function controllerWith(device: FakeHidDevice, onGone?: (r: string) => void) {
  const controller = new HidRoomController({
    name: 'test speakerphone',
    device,
    layout: layoutFromDescriptor(DESCRIPTOR),
    state: store,
    actions: room,
    log: silentLogger,
    onGone,
  });
  await controller.start();
  return controller;
}

describe('HID room controller', () => {
  it('mute button toggles the room mute and answers with the LED Mute usage', async () => {
    const device = new FakeHidDevice(deviceInfo('/dev/hidraw0', 0x0b));
    const controller = await controllerWith(device);
    // Start-up: the lights follow the room (idle, unmuted).
    expect(device.writes.map((w) => [...w])).toEqual([[2, 0, 0]]);
    device.send(2, 0b100, 0);
    await controller.idle();
    expect(room.calls).toEqual([{ action: 'setMicMuted', args: [true] }]);
    expect(store.get().media.micMuted).toBe(true);
    expect([...device.writes.at(-1)!]).toEqual([2, 0b10, 0]);
    device.send(2, 0, 0);
    device.send(2, 0b100, 0);
    await controller.idle();
    expect(store.get().media.micMuted).toBe(false);
    expect([...device.writes.at(-1)!]).toEqual([2, 0, 0]);
    await controller.stop();
    expect(device.closed).toBe(true);
  });

  it('answers a refused mute with the unchanged state, so the device does not drift', async () => {
    const device = new FakeHidDevice(deviceInfo('/dev/hidraw0', 0x0b));
    const controller = await controllerWith(device);
    const before = device.writes.length;
    room.failNext = 'media worker restarting';
    device.send(2, 0b100, 0);
    await controller.idle();
    expect(store.get().media.micMuted).toBe(false);
    expect(device.writes.length).toBe(before + 1);
    expect([...device.writes.at(-1)!]).toEqual([2, 0, 0]);
    await controller.stop();
  });

  it('hook switch starts and leaves meetings, volume buttons step the volume, LEDs follow the UI', async () => {
    const device = new FakeHidDevice(deviceInfo('/dev/hidraw0', 0x0b));
    const controller = await controllerWith(device);
    device.send(2, 0b001, 0); // off-hook while idle
    await controller.idle();
    expect(store.get().phase).toBe('in-meeting');
    expect([...device.writes.at(-1)!]).toEqual([2, 0b01, 0]); // Off-Hook LED on
    device.send(1, 0b10, 0);
    device.send(1, 0, 0);
    device.send(1, 0b10, 0);
    device.send(1, 0, 0);
    device.send(1, 0b01, 0);
    await controller.idle();
    expect(store.get().media.volume).toBe(65);
    // Muting from the touch screen lights the device's mute LED too.
    await room.setMicMuted(true);
    await controller.idle();
    expect([...device.writes.at(-1)!]).toEqual([2, 0b11, 0]);
    device.send(2, 0b000, 0); // on-hook: leave
    await controller.idle();
    expect(store.get().phase).toBe('idle');
    expect([...device.writes.at(-1)!]).toEqual([2, 0b10, 0]);
    expect(room.calls.map((c) => c.action)).toEqual([
      'startMeeting',
      'setVolume',
      'setVolume',
      'setVolume',
      'setMicMuted',
      'leaveMeeting',
    ]);
    await controller.stop();
  });

  it('lights the ring LED while someone waits for this leading room to admit them', async () => {
    const device = new FakeHidDevice(deviceInfo('/dev/hidraw0', 0x0b));
    const controller = await controllerWith(device);
    await room.startMeeting();
    await controller.idle();
    expect([...device.writes.at(-1)!]).toEqual([2, 0b001, 0]);
    room.requestToJoin({ participantId: 'p2', deviceId: 'd2', roomName: 'Huddle', org: 'Partner' });
    await controller.idle();
    expect([...device.writes.at(-1)!]).toEqual([2, 0b101, 0]); // Off-Hook + Ring
    await room.admit('p2');
    await controller.idle();
    expect([...device.writes.at(-1)!]).toEqual([2, 0b001, 0]);
    await controller.stop();
  });

  it('follows a latching mute switch instead of toggling', async () => {
    const device = new FakeHidDevice(deviceInfo('/dev/hidraw0', 0x0b));
    const controller = new HidRoomController({
      name: 'speakermic',
      device,
      // Phone Mute as an absolute no-preferred-state switch, LED Mute as output; no report ids.
      layout: layoutFromDescriptor(
        Uint8Array.from([
          0x05, 0x0b, 0x09, 0x05, 0xa1, 0x01, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x01, 0x09, 0x2f,
          0x81, 0x22, 0x95, 0x07, 0x81, 0x01, 0x05, 0x08, 0x09, 0x09, 0x95, 0x01, 0x91, 0x02, 0x95, 0x07,
          0x91, 0x01, 0xc0,
        ]),
      ),
      state: store,
      actions: room,
      log: silentLogger,
    });
    await controller.start();
    await room.setMicMuted(true); // muted from the touch screen first
    device.send(1); // the switch reaches "muted" too: nothing to do
    await controller.idle();
    expect(room.calls.filter((c) => c.action === 'setMicMuted')).toHaveLength(1);
    device.send(0); // switched to unmuted
    await controller.idle();
    expect(store.get().media.micMuted).toBe(false);
    expect([...device.writes.at(-1)!]).toEqual([0, 0]);
    await controller.stop();
  });

  it('reports an unplug mid-read once and stops writing', async () => {
    const device = new FakeHidDevice(deviceInfo('/dev/hidraw0', 0x0b));
    const reasons: string[] = [];
    const controller = await controllerWith(device, (r) => reasons.push(r));
    device.unplug();
    await room.setMicMuted(true);
    await controller.idle();
    expect(reasons).toEqual(['read failed: could not read from HID device']);
    expect(controller.gone).toBe(true);
    await controller.stop();
  });
});

/** A backend over stand-in devices: the test plugs and unplugs them. */
class FakeBackend implements HidBackend {
  readonly plugged = new Map<string, { info: Device[]; descriptor: Uint8Array; device?: FakeHidDevice }>();
  denied = new Set<string>();
  opened: string[] = [];

  plug(path: string, descriptor: Uint8Array, pages = [0x0b, 0x0c]) {
    this.plugged.set(path, { info: pages.map((p) => deviceInfo(path, p)), descriptor });
  }

  async enumerate() {
    return [...this.plugged.values()].flatMap((p) => p.info);
  }

  async open(path: string) {
    const entry = this.plugged.get(path);
    if (!entry) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    if (this.denied.has(path))
      throw Object.assign(new Error(`EACCES: permission denied, access '${path}'`), { code: 'EACCES' });
    entry.device = new FakeHidDevice(entry.info[0]!);
    this.opened.push(path);
    return entry.device;
  }

  async readDescriptor(path: string) {
    const entry = this.plugged.get(path);
    if (!entry) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
    return entry.descriptor;
  }
}

describe('HID discovery', () => {
  let manager: HidManager | undefined;
  afterEach(async () => {
    await manager?.stop();
    manager = undefined;
  });

  it('opens speakerphones as they appear and closes them when they go', async () => {
    const backend = new FakeBackend();
    manager = new HidManager({ state: store, actions: room, log: silentLogger, backend });
    await manager.scan();
    expect(manager.devices()).toEqual([]);
    backend.plug('/dev/hidraw3', DESCRIPTOR);
    backend.plug('/dev/hidraw4', POWERCONF);
    // A keyboard: no telephony collection, never opened.
    backend.plug('/dev/hidraw1', DESCRIPTOR, [0x01, 0x0c]);
    await manager.scan();
    expect(manager.devices().map((d) => [d.path, d.status])).toEqual([
      ['/dev/hidraw3', 'active'],
      ['/dev/hidraw4', 'active'],
    ]);
    expect(backend.opened).toEqual(['/dev/hidraw3', '/dev/hidraw4']);
    // The PowerConf's mute button works through the manager's controller.
    const powerconf = backend.plugged.get('/dev/hidraw4')!.device!;
    powerconf.send(2, 0b100);
    await manager.controller('/dev/hidraw4')!.idle();
    expect(store.get().media.micMuted).toBe(true);
    expect([...powerconf.writes.at(-1)!]).toEqual([2, 0b10]);
    // Both devices mirror the room: the other one's LED followed too.
    await manager.controller('/dev/hidraw3')!.idle();
    expect([...backend.plugged.get('/dev/hidraw3')!.device!.writes.at(-1)!]).toEqual([2, 0b10, 0]);
    // Unplugged between polls.
    const first = backend.plugged.get('/dev/hidraw3')!.device!;
    backend.plugged.delete('/dev/hidraw3');
    await manager.scan();
    expect(first.closed).toBe(true);
    expect(manager.devices().map((d) => d.path)).toEqual(['/dev/hidraw4']);
  });

  it('drops a device that fails mid-read and picks it up again on the next poll', async () => {
    const backend = new FakeBackend();
    manager = new HidManager({ state: store, actions: room, log: silentLogger, backend });
    backend.plug('/dev/hidraw3', DESCRIPTOR);
    await manager.scan();
    const device = backend.plugged.get('/dev/hidraw3')!.device!;
    device.unplug();
    await new Promise((r) => setImmediate(r));
    expect(manager.devices()).toEqual([]);
    expect(device.closed).toBe(true);
    await manager.scan();
    expect(manager.devices().map((d) => d.status)).toEqual(['active']);
    expect(backend.opened).toEqual(['/dev/hidraw3', '/dev/hidraw3']);
  });

  it('explains permission errors, raises a screen alert, and recovers when access is granted', async () => {
    const backend = new FakeBackend();
    manager = new HidManager({ state: store, actions: room, log: silentLogger, backend });
    backend.plug('/dev/hidraw5', DESCRIPTOR);
    backend.denied.add('/dev/hidraw5');
    await manager.scan();
    const [report] = manager.devices();
    expect(report!.status).toBe('no-access');
    expect(report!.message).toMatch(/No permission to open GN Speak Test \[0b0e:2456\] \(\/dev\/hidraw5\)/);
    expect(report!.message).toContain('/etc/udev/rules.d/60-sealroom-hid.rules');
    expect(store.get().alerts.find((a) => a.id === 'hid-access')?.message).toMatch(/udev rule/);
    backend.denied.clear();
    await manager.scan();
    expect(manager.devices()[0]!.status).toBe('active');
    expect(store.get().alerts.find((a) => a.id === 'hid-access')).toBeUndefined();
  });

  it('ignores a telephony device without room buttons', async () => {
    const backend = new FakeBackend();
    manager = new HidManager({ state: store, actions: room, log: silentLogger, backend });
    // Only an LED output, no buttons.
    backend.plug(
      '/dev/hidraw6',
      Uint8Array.from([0x05, 0x08, 0x09, 0x09, 0x75, 0x01, 0x95, 0x01, 0x91, 0x02]),
    );
    await manager.scan();
    expect(manager.devices()[0]!.status).toBe('not-a-room-control');
    expect(backend.opened).toEqual([]);
  });
});

describe('HID enumeration failures', () => {
  it('logs a failing enumeration once, keeps polling, and recovers', async () => {
    const backend = new FakeBackend();
    let failing = true;
    const enumerate = backend.enumerate.bind(backend);
    backend.enumerate = async () => {
      if (failing) throw new Error('node-hid binding failed to load');
      return enumerate();
    };
    const errors: string[] = [];
    const log = {
      ...silentLogger,
      error: (_o: unknown, msg: string) => errors.push(msg),
    } as unknown as typeof silentLogger;
    const manager = new HidManager({ state: store, actions: room, log, backend });
    await manager.scan();
    await manager.scan();
    await manager.scan();
    expect(errors).toEqual(['HID enumeration failed; room buttons unavailable']);
    failing = false;
    backend.plug('/dev/hidraw3', DESCRIPTOR);
    await manager.scan();
    expect(manager.devices().map((d) => d.status)).toEqual(['active']);
    await manager.stop();
  });
});

describe('real node-hid backend on this machine', () => {
  it('enumerates (no HID devices here) and the manager handles the empty list', async () => {
    const backend = nodeHidBackend();
    const found = await backend.enumerate();
    expect(Array.isArray(found)).toBe(true);
    const manager = new HidManager({ state: store, actions: room, log: silentLogger, backend, pollMs: 50 });
    await manager.start();
    await manager.scan();
    // Every telephony device node that node-hid lists gets a status; on this machine there are none.
    const telephonyPaths = [...new Set(found.filter((d) => d.usagePage === 0x0b).map((d) => d.path))].sort();
    expect(
      manager
        .devices()
        .map((d) => d.path)
        .sort(),
    ).toEqual(telephonyPaths);
    expect(store.get().alerts).toEqual([]);
    await manager.stop();
  });

  it('opening a path that does not exist fails with a clear message', async () => {
    const err = await nodeHidBackend()
      .open('/dev/hidraw-sealroom-missing')
      .catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(explainOpenError('/dev/hidraw-sealroom-missing', 'Speak', err).message).toBe(
      'Speak (/dev/hidraw-sealroom-missing) disappeared before it could be opened.',
    );
  });

  it('node-hid itself refuses a path that is not a hidraw node', async () => {
    const hid = await import('node-hid');
    await expect(hid.HIDAsync.open('/dev/null')).rejects.toThrow(/cannot open device/i);
  });

  it('reads report descriptors from the sysfs layout the kernel uses', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sealroom-sysfs-'));
    try {
      mkdirSync(join(root, 'hidraw7', 'device'), { recursive: true });
      writeFileSync(join(root, 'hidraw7', 'device', 'report_descriptor'), DESCRIPTOR);
      expect(await readSysfsDescriptor('/dev/hidraw7', root)).toEqual(DESCRIPTOR);
      await expect(readSysfsDescriptor('/dev/sda', root)).rejects.toThrow(/not a hidraw device path/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
