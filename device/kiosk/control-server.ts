// The local control server: serves the kiosk UI bundle, the daemon state (GET /api/state and a
// server-sent event stream) and the room actions the screen can trigger. Loopback only. The daemon
// composer creates it with its StateStore and RoomActions; HID and CLI call RoomActions directly.
// The wall routes (the kiosk page's loopback video connection to the media worker) also need the
// kiosk token as a bearer token: the one secret that separates the room screen from any other page
// or process on the box (docs/kiosk.md, "The wall").
import { existsSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import fastifyStatic from '@fastify/static';
import type { TSchema } from '@sinclair/typebox';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../../src/util/log.js';
import type { RoomActions } from '../daemon/actions.js';
import type { DeviceState, StateStore } from '../daemon/state.js';
import { type WallBroker, WallError } from '../daemon/wall-broker.js';
import {
  CameraBody,
  Empty,
  JoinBody,
  LockBody,
  MuteBody,
  ParticipantBody,
  VolumeBody,
  WallAnswerBody,
} from './api-schemas.js';
import { claimQrSvg } from './claim-qr.js';
import { isLoopbackHost, refusalReason } from './request-guard.js';
import { defaultKioskUiDir } from './ui-dir.js';
import { bearerToken, tokenMatches } from './wall-token.js';

export interface ControlServerOptions {
  state: StateStore;
  actions: RoomActions;
  host?: string;
  /** 0 (the default) picks a free port; read the result from `url`. */
  port?: number;
  log: Logger;
  /** The built kiosk UI (default: dist/kiosk-ui at the package root). */
  uiDir?: string;
  /** Comment lines keep the event stream open through idle periods. */
  keepAliveMs?: number;
  /** This daemon start's kiosk token (device/kiosk/wall-token.ts). Without it no wall request is authorised. */
  kioskToken?: string;
  /** The wall sessions (worker media engine with the wall on); without it the wall routes answer 503. */
  wall?: WallBroker;
}

/** Never let a bearer token into a log line, whatever a future log call includes. */
const REDACT_PATHS = [
  'req.headers.authorization',
  'request.headers.authorization',
  'headers.authorization',
  'authorization',
  '*.authorization',
  'token',
  '*.token',
  'kioskToken',
  '*.kioskToken',
  '*.secret',
  '*.key',
  '*.privateKey',
];

/** A wall SDP answer as JSON: 64 KiB of SDP plus the escaping of its line breaks. */
const WALL_ANSWER_BODY_LIMIT = 160 * 1024;

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

/** One server-sent event carrying the whole state; the id lets a client drop stale pushes. */
export function stateEvent(state: DeviceState): string {
  return `id: ${state.revision}\nevent: state\ndata: ${JSON.stringify(state)}\n\n`;
}

class EventStreams {
  readonly #clients = new Set<ServerResponse>();

  add(res: ServerResponse): void {
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
  }

  broadcast(chunk: string): void {
    for (const res of this.#clients) res.write(chunk);
  }

  endAll(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  get size(): number {
    return this.#clients.size;
  }
}

/** Runs an action and turns its rejection into a readable 409 (the room's state did not allow it). */
async function perform<T>(reply: FastifyReply, action: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await action();
  } catch (err) {
    reply.code(409);
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function routeBody(body: TSchema) {
  return { schema: { body } };
}

export async function createControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    throw new Error(`the control server listens on loopback only, not on ${host}`);
  }
  const { state, actions, log } = options;
  const uiDir = options.uiDir ?? defaultKioskUiDir();
  const serverLog = log.child(
    { part: 'control-server' },
    { redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
  );
  const app = Fastify({
    loggerInstance: serverLog,
    // Request lines would flood the journal with SSE reconnects and button presses.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    // Closing never waits for a browser's idle or preconnected keep-alive sockets (a daemon restart
    // must not hang on the screen's Chromium).
    forceCloseConnections: true,
    // Refuse what the schema does not describe instead of silently fixing it up.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  const streams = new EventStreams();

  app.addHook('onRequest', async (req, reply) => {
    const refusal = refusalReason({
      method: req.method,
      hostHeader: req.headers.host,
      origin: req.headers.origin,
      contentType: req.headers['content-type'],
    });
    if (refusal) {
      reply.code(refusal.status).send({ error: refusal.error });
      return reply;
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) serverLog.error({ err }, 'control API request failed');
    const message = err.validation ? `invalid request: ${err.message}` : err.message;
    reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: `no such endpoint: ${req.method} ${req.url}` });
  });

  if (existsSync(uiDir)) {
    await app.register(fastifyStatic, { root: uiDir, index: 'index.html', wildcard: false });
  } else {
    log.warn({ uiDir }, 'kiosk UI bundle missing; run `node scripts/build-kiosk.mjs`');
    app.get('/', async (_req, reply) =>
      reply.code(503).type('text/plain').send('The kiosk UI is not built. Run: node scripts/build-kiosk.mjs'),
    );
  }

  app.get('/favicon.ico', async (_req, reply) => reply.code(204).send());
  app.get('/api/state', async () => state.get());

  app.get('/api/events', (req: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Tell EventSource to reconnect quickly if the daemon restarts.
    res.write('retry: 1000\n\n');
    res.write(stateEvent(state.get()));
    streams.add(res);
    req.raw.socket.setNoDelay(true);
  });

  app.get('/api/enrollment/qr.svg', async (_req, reply) => {
    const claimUrl = state.get().enrollment?.claimUrl;
    if (!claimUrl) return reply.code(404).send({ error: 'no claim URL: the device is not awaiting a claim' });
    return reply
      .type('image/svg+xml')
      .header('cache-control', 'no-store')
      .send(await claimQrSvg(claimUrl));
  });

  app.get('/healthz', async () => ({ ok: true, revision: state.get().revision, streams: streams.size }));

  app.post('/api/meeting/start', routeBody(Empty), async (_req, reply) =>
    perform(reply, () => actions.startMeeting()),
  );
  app.post<{ Body: JoinBody }>('/api/meeting/join', routeBody(JoinBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.joinMeeting(req.body.meetingId);
      return { ok: true };
    }),
  );
  app.post('/api/meeting/leave', routeBody(Empty), async (_req, reply) =>
    perform(reply, async () => {
      await actions.leaveMeeting();
      return { ok: true };
    }),
  );
  app.post<{ Body: ParticipantBody }>('/api/meeting/admit', routeBody(ParticipantBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.admit(req.body.participantId);
      return { ok: true };
    }),
  );
  app.post<{ Body: ParticipantBody }>('/api/meeting/deny', routeBody(ParticipantBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.deny(req.body.participantId);
      return { ok: true };
    }),
  );
  app.post<{ Body: LockBody }>('/api/meeting/lock', routeBody(LockBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.lockMeeting(req.body.locked);
      return { ok: true };
    }),
  );
  app.post('/api/meeting/ack-leader', routeBody(Empty), async (_req, reply) =>
    perform(reply, async () => {
      await actions.acknowledgeLeaderChange();
      return { ok: true };
    }),
  );
  app.post<{ Body: MuteBody }>('/api/media/mute', routeBody(MuteBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.setMicMuted(req.body.muted);
      return { ok: true };
    }),
  );
  app.post<{ Body: CameraBody }>('/api/media/camera', routeBody(CameraBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.setCameraOff(req.body.off);
      return { ok: true };
    }),
  );
  app.post<{ Body: VolumeBody }>('/api/media/volume', routeBody(VolumeBody), async (req, reply) =>
    perform(reply, async () => {
      await actions.setVolume(req.body.volume);
      return { ok: true };
    }),
  );

  /**
   * The wall routes. Order of refusals: the global Host/Origin/content-type guard (403/415), then the
   * kiosk token (401: missing or wrong, compared in constant time), then the body (400), then the
   * wall itself (503 none, 404 unknown session, 409 answered twice).
   */
  const { kioskToken, wall } = options;
  const authorise = async (req: FastifyRequest, reply: FastifyReply) => {
    const presented = bearerToken(req.headers.authorization);
    if (kioskToken !== undefined && tokenMatches(presented, kioskToken)) return;
    // The reason, never the header: a wrong token may be another device's real one.
    serverLog.warn(
      { method: req.method, route: req.routeOptions.url, bearer: presented !== undefined },
      'wall request refused: missing or wrong kiosk token',
    );
    reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'the wall needs the kiosk token' });
    return reply;
  };
  const withWall = async <T>(reply: FastifyReply, run: (w: WallBroker) => Promise<T> | T) => {
    // SDP carries ICE credentials: no cache may keep it.
    reply.header('cache-control', 'no-store');
    if (!wall) {
      reply.code(503);
      return { error: 'no wall on this device: the media worker does not send video to the screen' };
    }
    try {
      return await run(wall);
    } catch (err) {
      if (!(err instanceof WallError)) throw err;
      reply.code(err.status);
      return { error: err.message };
    }
  };

  app.post('/api/wall/sessions', { onRequest: authorise, schema: { body: Empty } }, async (_req, reply) =>
    withWall(reply, async (w) => {
      const session = await w.open();
      reply.code(201);
      return session;
    }),
  );
  app.post<{ Params: { id: string }; Body: WallAnswerBody }>(
    '/api/wall/sessions/:id/answer',
    { onRequest: authorise, schema: { body: WallAnswerBody }, bodyLimit: WALL_ANSWER_BODY_LIMIT },
    async (req, reply) =>
      withWall(reply, (w) => {
        w.answer(req.params.id, req.body.sdp);
        return { ok: true };
      }),
  );
  app.delete<{ Params: { id: string } }>(
    '/api/wall/sessions/:id',
    { onRequest: authorise },
    async (req, reply) =>
      withWall(reply, (w) => {
        w.close(req.params.id);
        return { ok: true };
      }),
  );

  const onChange = (next: DeviceState) => streams.broadcast(stateEvent(next));
  state.on('change', onChange);
  const keepAlive = setInterval(() => streams.broadcast(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
  keepAlive.unref();

  let address: string;
  try {
    address = await app.listen({ host, port: options.port ?? 0 });
  } catch (err) {
    state.off('change', onChange);
    clearInterval(keepAlive);
    throw err;
  }
  const url = address.replace('[::1]', 'localhost');
  log.info({ url }, 'control server listening');

  let closed: Promise<void> | undefined;
  return {
    url,
    close() {
      closed ??= (async () => {
        state.off('change', onChange);
        clearInterval(keepAlive);
        streams.endAll();
        await app.close();
      })();
      return closed;
    },
  };
}
