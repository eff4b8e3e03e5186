// Remote actions on the device with a fake service: each runs once, results are re-sent until taken,
// the ledger survives a restart, and a hostile reply is bounded.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ActionResult } from '../../provisioning/client/device-client.js';
import { ProvisioningHttpError } from '../../provisioning/client/http.js';
import { ACTIONS_FILE, DeviceActions, MAX_ACTIONS_PER_REPLY, parseActions } from './actions.js';

class FakeService {
  reports: { id: string; result: ActionResult }[] = [];
  failNext = 0;
  answer: Error | undefined;
  async report(id: string, result: ActionResult): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new TypeError('fetch failed');
    }
    if (this.answer) throw this.answer;
    this.reports.push({ id, result });
  }
}

describe('DeviceActions', () => {
  let dir: string;
  let svc: FakeService;
  let restarts: string[];
  let collected: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-actions-'));
    svc = new FakeService();
    restarts = [];
    collected = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const make = () =>
    new DeviceActions({
      stateDir: dir,
      report: (id, r) => svc.report(id, r),
      collectLogs: async () => {
        collected++;
        return new Uint8Array([0x1f, 0x8b, 1, 2, 3]);
      },
      restart: (id) => restarts.push(id),
    });

  it('reports restart done before restarting, once, even when the reply repeats it and after a restart', async () => {
    const a = make();
    await a.receive([{ id: 'act-1', kind: 'restart' }]);
    expect(svc.reports).toEqual([{ id: 'act-1', result: { status: 'done', message: 'daemon restarting' } }]);
    expect(restarts).toEqual(['act-1']);
    await a.receive([{ id: 'act-1', kind: 'restart' }]);
    // A new process reads the ledger: the same id is not done again.
    const b = make();
    await b.receive([{ id: 'act-1', kind: 'restart' }]);
    expect(restarts).toEqual(['act-1']);
    expect(svc.reports).toHaveLength(1);
    expect(statSync(join(dir, ACTIONS_FILE)).mode & 0o777).toBe(0o600);
  });

  it('uploads a collect-logs bundle, and re-sends a result the service did not take', async () => {
    const a = make();
    svc.failNext = 1;
    await a.receive([{ id: 'logs-1', kind: 'collect-logs' }]);
    expect(svc.reports).toEqual([]);
    expect(a.entries[0]).toMatchObject({ id: 'logs-1', status: 'done', reported: false, attempts: 1 });
    expect(collected).toBe(1);
    // Next heartbeat (nothing new in it): the result goes out, with a freshly collected bundle.
    await a.receive(undefined);
    expect(svc.reports).toHaveLength(1);
    expect(svc.reports[0]!.result.status).toBe('done');
    expect(Buffer.from(svc.reports[0]!.result.bundle!).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(collected).toBe(2);
    await a.receive([{ id: 'logs-1', kind: 'collect-logs' }]);
    expect(collected).toBe(2);
    expect(svc.reports).toHaveLength(1);
  });

  it('stops re-sending once the service says the action is gone (409/404)', async () => {
    const a = make();
    svc.answer = new ProvisioningHttpError(409, 'action already finished', 'action-finished');
    await a.receive([{ id: 'x-1', kind: 'unknown-thing' }]);
    expect(a.entries[0]).toMatchObject({ status: 'failed', message: 'unsupported', reported: true });
  });

  it('fails unknown kinds as unsupported', async () => {
    const a = make();
    await a.receive([{ id: 'a1', kind: 'format-disk' }]);
    expect(svc.reports).toEqual([{ id: 'a1', result: { status: 'failed', message: 'unsupported' } }]);
    expect(restarts).toEqual([]);
  });

  it('asks for a renewal and reports it when the runner finishes it', async () => {
    const a = make();
    expect(await a.receive([{ id: 'r1', kind: 'renew-certificate' }])).toEqual({ renew: true });
    expect(svc.reports).toEqual([]);
    // Survives a restart while waiting.
    const b = make();
    await b.load();
    expect(b.renewPending).toBe(true);
    await b.renewFinished(true, 'new certificate 0abc');
    expect(svc.reports).toEqual([{ id: 'r1', result: { status: 'done', message: 'new certificate 0abc' } }]);
    expect(b.renewPending).toBe(false);
    expect(await b.receive([{ id: 'r1', kind: 'renew-certificate' }])).toEqual({ renew: false });
  });

  it('bounds a hostile reply: 10 000 actions, huge or odd ids, wrong shapes', async () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ({ id: `bulk-${i}`, kind: 'format-disk' }));
    const parsed = parseActions(many);
    expect(parsed.actions).toHaveLength(MAX_ACTIONS_PER_REPLY);
    expect(parsed.dropped).toBe(10_000 - MAX_ACTIONS_PER_REPLY);
    expect(
      parseActions([
        { id: 'x'.repeat(1_000_000), kind: 'restart' },
        { id: '../../etc/passwd', kind: 'restart' },
        { id: 'ok', kind: 7 },
        null,
        'restart',
        { id: 'dup', kind: 'restart' },
        { id: 'dup', kind: 'restart' },
      ]),
    ).toEqual({ actions: [{ id: 'dup', kind: 'restart' }], dropped: 6 });
    expect(parseActions({ id: 'a', kind: 'restart' })).toEqual({ actions: [], dropped: 1 });

    const a = make();
    await a.receive(many);
    expect(svc.reports).toHaveLength(MAX_ACTIONS_PER_REPLY);
    await a.receive([{ id: 'y'.repeat(100_000), kind: 'restart' }]);
    expect(restarts).toEqual([]);
    expect(readFileSync(join(dir, ACTIONS_FILE), 'utf8').length).toBeLessThan(64 * 1024);
  });
});
