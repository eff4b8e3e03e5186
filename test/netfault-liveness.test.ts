// The liveness checks on their own, with peers that stop answering WebSocket pings (ws `autoPong:
// false`) while their TCP connection stays perfectly open — what a silent cut looks like from either
// end. Each check is compared with a peer that answers, over the same rounds.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import { createDevelopmentCa } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

const poll = <T>(f: () => T) => expect.poll(f, { timeout: 10_000, interval: 20 });
const cleanup: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('relay liveness', () => {
  it('drops a connection that stops answering pings, keeps one that answers', async () => {
    const ca = await createDevelopmentCa();
    const relay: Relay = await startRelay({
      log: silentLogger,
      trust: { caPems: [ca.certPem] },
      livenessIntervalMs: 150,
    });
    cleanup.push(() => relay.close());
    const connect = async (autoPong: boolean) => {
      const ws = new WebSocket(relay.url, { autoPong });
      cleanup.push(() => ws.terminate());
      const state = { closed: false };
      ws.on('close', () => {
        state.closed = true;
      });
      ws.on('error', () => undefined);
      await new Promise<void>((r) => ws.once('open', () => r()));
      return state;
    };
    const answering = await connect(true);
    const silent = await connect(false);
    await poll(() => silent.closed).toBe(true);
    // The same rounds passed for both: the one that answers pings is still there.
    expect(answering.closed).toBe(false);
    const health = (await (await fetch(`http://127.0.0.1:${relay.port}/healthz`)).json()) as {
      connections: number;
    };
    expect(health.connections).toBe(1);
  });
});

describe('room liveness (RelayConnection)', () => {
  /** A relay stand-in: challenge, accept any auth, then only pings (answered or not) go by. */
  async function fakeRelay(autoPong: boolean): Promise<string> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong });
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const c of server.clients) c.terminate();
          server.close(() => r());
        }),
    );
    server.on('connection', (ws) => {
      ws.on('error', () => undefined);
      ws.send(JSON.stringify({ type: 'challenge', nonce: 'bm9uY2U', relayId: 'fake' }));
      ws.on('message', () =>
        ws.send(
          JSON.stringify({
            type: 'authenticated',
            identity: { deviceId: 'sr-test', roomName: 'Huddle', org: 'Test' },
          }),
        ),
      );
    });
    await new Promise<void>((r) => server.once('listening', () => r()));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    return `ws://127.0.0.1:${address.port}/v1/ws`;
  }

  it('gives up on a relay that stops answering pings, stays with one that answers', async () => {
    const credentials = {
      certificatePem: 'not checked by the stand-in',
      identityKey: generateKeyPairSync('ed25519').privateKey,
    };
    const liveness = { intervalMs: 50, timeoutMs: 300 };
    const open = async (autoPong: boolean) => {
      const connection = await RelayConnection.connect(
        await fakeRelay(autoPong),
        credentials,
        2_000,
        liveness,
      );
      cleanup.push(() => connection.terminate());
      const state = { closed: false };
      connection.on('close', () => {
        state.closed = true;
      });
      return { connection, state };
    };
    const answering = await open(true);
    const silent = await open(false);
    await poll(() => silent.state.closed).toBe(true);
    expect(silent.connection.open).toBe(false);
    // Give the answering one the same allowance again, measured by the silent one's fate.
    const again = await open(false);
    await poll(() => again.state.closed).toBe(true);
    expect(answering.state.closed).toBe(false);
    expect(answering.connection.open).toBe(true);
  });
});
