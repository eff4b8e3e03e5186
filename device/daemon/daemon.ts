// The device daemon composer: one StateStore, the meeting client connected to the relay, a media
// engine (the supervised GStreamer worker, or the synthetic engine on hosts without cameras), and
// the kiosk's local control server on loopback. `sealroom daemon` and `sealroom demo` start it.
import { createPrivateKey } from 'node:crypto';
import { x509 } from '../../src/pki/provider.js';
import { singleField } from '../../src/pki/subject.js';
import type { Logger } from '../../src/util/log.js';
import { createControlServer } from '../kiosk/control-server.js';
import type { SettingsPatch } from '../media/ipc.js';
import { MediaSupervisor } from '../media/supervisor.js';
import type { RoomActions } from './actions.js';
import type { MediaPort } from './media-port.js';
import { MeetingClient } from './meeting-client.js';
import { createRoomActions } from './room-actions.js';
import { initialState, StateStore } from './state.js';
import { SyntheticMedia } from './synthetic-media.js';
import { WorkerMedia } from './worker-media.js';

export type MediaEngine = 'worker' | 'synthetic' | 'none';

export interface DaemonOptions {
  relayUrl: string;
  certificatePem: string;
  identityKeyPem: string;
  log: Logger;
  media?: MediaEngine;
  mediaSettings?: SettingsPatch;
  /** ICE on 127.0.0.1 only (demo, tests). */
  loopbackOnly?: boolean;
  controlHost?: string;
  /** 0 picks a free port. */
  controlPort?: number;
  uiDir?: string;
  version?: string;
}

export interface Daemon {
  state: StateStore;
  actions: RoomActions;
  meeting: MeetingClient;
  media?: MediaPort;
  supervisor?: MediaSupervisor;
  /** The kiosk UI and local control API. */
  controlUrl: string;
  stop(): Promise<void>;
}

export function deviceFromCertificate(certificatePem: string) {
  const cert = new x509.X509Certificate(certificatePem);
  return {
    deviceId: singleField(cert.subjectName, 'CN') ?? '',
    org: singleField(cert.subjectName, 'O') ?? '',
    roomName: singleField(cert.subjectName, 'OU') ?? '',
    site: singleField(cert.subjectName, 'L') ?? '',
  };
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const log = opts.log;
  const state = new StateStore(initialState(opts.version ?? '0.1.0'));
  const device = deviceFromCertificate(opts.certificatePem);
  state.update((s) => {
    s.device = { ...s.device, ...device };
    s.phase = 'starting';
  });

  let supervisor: MediaSupervisor | undefined;
  let media: MediaPort | undefined;
  const engine = opts.media ?? 'worker';
  if (engine === 'worker') {
    supervisor = new MediaSupervisor({
      state,
      log: log.child({ part: 'media' }),
      ...(opts.mediaSettings ? { settings: opts.mediaSettings } : {}),
      ...(opts.loopbackOnly ? { loopbackOnly: true } : {}),
    });
    media = new WorkerMedia(supervisor);
    // Worker errors are reported (and the supervisor restarts what failed); they never end the daemon.
    supervisor.on('error', (e) =>
      log.warn(
        { code: e.code, pipeline: e.pipeline, element: e.element, message: e.message },
        'media worker error',
      ),
    );
  } else if (engine === 'synthetic') {
    media = new SyntheticMedia({ roomName: device.roomName });
  }

  const meeting = new MeetingClient({
    relayUrl: opts.relayUrl,
    credentials: { certificatePem: opts.certificatePem, identityKey: createPrivateKey(opts.identityKeyPem) },
    state,
    log: log.child({ part: 'meeting' }),
    ...(media ? { media } : {}),
  });
  const actions = createRoomActions({ meeting, state, ...(supervisor ? { supervisor } : {}) });
  const control = await createControlServer({
    state,
    actions,
    log,
    host: opts.controlHost ?? '127.0.0.1',
    port: opts.controlPort ?? 0,
    ...(opts.uiDir ? { uiDir: opts.uiDir } : {}),
  });

  const diagnostics: { name: string; ok: boolean; detail: string }[] = [
    { name: 'certificate', ok: true, detail: `${device.roomName} (${device.org})` },
  ];
  if (supervisor) {
    try {
      await supervisor.start();
      diagnostics.push({ name: 'media worker', ok: true, detail: `pid ${supervisor.pid ?? '?'}` });
    } catch (err) {
      diagnostics.push({ name: 'media worker', ok: false, detail: (err as Error).message });
      state.raiseAlert('media', 'error', `Media worker failed to start: ${(err as Error).message}`);
    }
  } else {
    diagnostics.push({
      name: 'media',
      ok: true,
      detail: engine === 'synthetic' ? 'synthetic test media' : 'no media',
    });
  }
  state.update((s) => {
    s.diagnostics = diagnostics;
    s.phase = 'idle';
  });
  void meeting.start();
  log.info({ control: control.url, relay: opts.relayUrl, room: device.roomName }, 'daemon running');

  return {
    state,
    actions,
    meeting,
    ...(media ? { media } : {}),
    ...(supervisor ? { supervisor } : {}),
    controlUrl: control.url,
    stop: async () => {
      await meeting.leaveMeeting().catch(() => undefined);
      await meeting.stop();
      await control.close();
      await media?.close();
    },
  };
}
