// A scripted stand-in for the E2EE worker (src/web/e2ee/worker.ts), built into the page only by
// test/web-ui.test.ts (`build-web.mjs --e2ee-entry`): it reports every message the page sends on a
// BroadcastChannel and posts whatever the test tells it to (statuses, views, the "relay's" signalling,
// keys for the transform worker), so the page's screens and media plumbing can be driven exactly.
import type { E2eeToPage, E2eeToTransform, PageToE2ee } from '../src/web/shared/messages.js';

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: E2eeToPage): void;
};

const bus = new BroadcastChannel('sealroom-web-ui-stub');
let transformPort: MessagePort | undefined;

bus.onmessage = (e: MessageEvent) => {
  const cmd = e.data as { cmd: 'emit'; message: E2eeToPage } | { cmd: 'keys'; keys: E2eeToTransform };
  if (cmd.cmd === 'emit') scope.postMessage(cmd.message);
  else if (cmd.cmd === 'keys') transformPort?.postMessage(cmd.keys);
};

scope.onmessage = (e: MessageEvent) => {
  const m = e.data as PageToE2ee;
  if (m.type === 'start') {
    transformPort = m.transformPort;
    transformPort.onmessage = (ev) => bus.postMessage({ seen: { type: 'transform-ack', data: ev.data } });
    bus.postMessage({
      seen: {
        type: 'start',
        relayUrl: m.relayUrl,
        meetingId: m.meetingId,
        certificatePem: m.certificatePem,
        trust: m.trust,
        privateType: m.keyPair.privateKey.type,
        privateExtractable: m.keyPair.privateKey.extractable,
        algorithm: m.keyPair.privateKey.algorithm.name,
        hasPort: m.transformPort instanceof MessagePort,
      },
    });
    scope.postMessage({ type: 'status', status: 'connecting', text: 'Connecting to the meeting' });
    scope.postMessage({ type: 'status', status: 'waiting', text: 'Waiting for the room to let you in' });
    return;
  }
  bus.postMessage({ seen: m });
};
