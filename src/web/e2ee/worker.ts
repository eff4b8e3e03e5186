// The E2EE worker (a dedicated Worker the page starts): holds the relay WebSocket, the person's
// signing key (non-extractable) and every meeting key. A thin shell over WebMeeting: the page's
// messages in, status/view/signalling out to the page, keys out on the transform worker's port only.
import type { E2eeToPage, E2eeToTransform, PageToE2ee } from '../shared/messages.js';
import { webCryptoSigner } from './identity.js';
import type { WebSocketLike } from './relay-client.js';
import { WebMeeting } from './web-meeting.js';

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: E2eeToPage): void;
};

let transformPort: MessagePort | undefined;
let meeting: WebMeeting | undefined;

const toPage = (m: E2eeToPage) => scope.postMessage(m);

/** The page's relay URLs (the redirect allow-list), if it sent any: strings only. */
function relayUrlsOf(m: PageToE2ee): string[] {
  if (m.type !== 'start') return [];
  // From the page, which is trusted, but a structured clone could still carry anything: strings only.
  const urls: unknown = m.relayUrls;
  return Array.isArray(urls) ? urls.filter((u): u is string => typeof u === 'string').slice(0, 64) : [];
}

scope.onmessage = (e: MessageEvent) => {
  const m = e.data as PageToE2ee;
  if (typeof m !== 'object' || m === null) return;
  if (m.type !== 'start') {
    meeting?.handle(m);
    return;
  }
  if (meeting) return; // one meeting per worker: the page starts a new worker to join again
  transformPort = m.transformPort;
  meeting = new WebMeeting({
    toPage,
    toTransform: (k: E2eeToTransform) => transformPort?.postMessage(k),
    openSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
  });
  const started = meeting;
  webCryptoSigner(m.keyPair)
    .then((signer) =>
      started.start({
        relayUrl: m.relayUrl,
        relayUrls: relayUrlsOf(m),
        meetingId: m.meetingId,
        certificatePem: m.certificatePem,
        trust: m.trust,
        signer,
      }),
    )
    .catch((err: Error) => toPage({ type: 'status', status: 'error', text: err.message }));
};
