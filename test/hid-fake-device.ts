// A stand-in for one node-hid HIDAsync device (no HID hardware here): same methods and events, with
// hooks for the test to press buttons, unplug it mid-read, and see what the host wrote back.
import { EventEmitter } from 'node:events';
import type { Device } from 'node-hid';

export class FakeHidDevice extends EventEmitter {
  readonly writes: Buffer[] = [];
  readonly featureReports: Buffer[] = [];
  closed = false;
  #unplugged = false;
  #pending: ((data: Buffer | undefined) => void)[] = [];

  constructor(readonly info: Device) {
    super();
  }

  // --- the HIDAsync surface ---
  async read(_timeoutMs?: number): Promise<Buffer | undefined> {
    if (this.#unplugged) throw new Error('could not read from HID device');
    return new Promise((resolve) => this.#pending.push(resolve));
  }

  async write(values: number[] | Buffer): Promise<number> {
    if (this.#unplugged || this.closed) throw new Error('Cannot write to hid device');
    const buf = Buffer.from(values);
    this.writes.push(buf);
    return buf.length;
  }

  async sendFeatureReport(data: number[] | Buffer): Promise<number> {
    if (this.#unplugged) throw new Error('could not send feature report to device');
    this.featureReports.push(Buffer.from(data));
    return data.length;
  }

  async getFeatureReport(reportId: number, length: number): Promise<Buffer> {
    const b = Buffer.alloc(length);
    b[0] = reportId;
    return b;
  }

  async getDeviceInfo(): Promise<Device> {
    return this.info;
  }

  async setNonBlocking(_noBlock: boolean): Promise<void> {}

  pause(): void {}

  resume(): void {}

  async close(): Promise<void> {
    this.closed = true;
    this.removeAllListeners();
  }

  // --- what the test does to it ---
  /** The device sends an input report (first byte = report id when it uses ids). */
  send(...bytes: number[]): void {
    const data = Buffer.from(bytes);
    const waiting = this.#pending.shift();
    if (waiting) waiting(data);
    else this.emit('data', data);
  }

  /** Pulled out while the host reads: node-hid reports it as a read error. */
  unplug(): void {
    this.#unplugged = true;
    for (const waiting of this.#pending.splice(0)) waiting(undefined);
    this.emit('error', new Error('could not read from HID device'));
  }
}
