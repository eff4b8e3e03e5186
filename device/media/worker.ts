// Entry point of the media worker process (forked by MediaSupervisor). Reads typed IPC commands,
// drives the MediaEngine, answers pings, and on shutdown or SIGTERM stops every pipeline before
// exiting (the binding's pending bus polls otherwise keep the process alive).
import { createLogger } from '../../src/util/log.js';
import { MediaEngine } from './engine.js';
import { type FromWorker, type ToWorker, parseToWorker } from './ipc.js';

const log = createLogger('media-worker');
const loopbackOnly = process.env.SEALROOM_MEDIA_LOOPBACK === '1';
const engine = new MediaEngine(log, loopbackOnly);
const STATS_INTERVAL_MS = Number(process.env.SEALROOM_MEDIA_STATS_MS ?? 1000);

function send(msg: FromWorker): void {
  if (process.connected) process.send?.(msg);
}

engine.on('message', send);

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'ping':
      return send({ type: 'pong', id: msg.id });
    case 'start':
      await engine.start(msg.settings);
      return;
    case 'stop':
      engine.stopPipelines();
      return;
    case 'keys':
      return engine.setKeys(msg);
    case 'clear-keys':
      return engine.clearKeys();
    case 'roster':
      return engine.setRoster(msg.participants);
    case 'connect':
      return engine.connect(msg.role);
    case 'disconnect':
      return engine.disconnect();
    case 'signal':
      return engine.handleSignal(msg.payload);
    case 'controls':
      return engine.setControls(msg);
    case 'keyframe':
      return engine.requestKeyframe();
    case 'probe':
      return send(engine.probe(msg.id));
    case 'inject-fault':
      if (!engine.injectCameraFault()) {
        send({ type: 'error', code: 'ipc', message: 'this profile has no injectable camera fault' });
      }
      return;
    case 'wall-open':
      return engine.openWall(msg.sessionId);
    case 'wall-answer':
      return engine.answerWall(msg.sessionId, msg.sdp);
    case 'wall-close':
      return engine.closeWall(msg.sessionId);
    case 'shutdown':
      return exit(0);
  }
}

// Commands run one after another: a 'signal' must not overtake the 'connect' before it.
let queue: Promise<void> = Promise.resolve();
process.on('message', (raw: unknown) => {
  const parsed = parseToWorker(raw);
  if (!parsed.ok) {
    log.warn({ error: parsed.error }, 'invalid IPC message dropped');
    send({ type: 'error', code: 'ipc', message: `invalid message: ${parsed.error}` });
    return;
  }
  queue = queue
    .then(() => handle(parsed.message))
    .catch((err: unknown) => {
      log.error({ err: (err as Error).message, type: parsed.message.type }, 'IPC command failed');
      send({ type: 'error', code: 'transport', message: (err as Error).message });
    });
});

const statsTimer = setInterval(() => send(engine.stats()), STATS_INTERVAL_MS);

let exiting = false;
async function exit(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  clearInterval(statsTimer);
  try {
    await Promise.race([engine.shutdown(), new Promise((r) => setTimeout(r, 2000))]);
  } finally {
    process.exit(code);
  }
}

process.on('SIGTERM', () => void exit(0));
process.on('SIGINT', () => void exit(0));
// The daemon went away: a worker must not outlive it.
process.on('disconnect', () => void exit(0));

send({ type: 'ready', pid: process.pid });
