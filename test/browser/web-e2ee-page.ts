// A test page for the web participant's E2EE worker in Chromium (test/web-e2ee-chromium.test.ts):
// makes the person's non-extractable Ed25519 key in WebCrypto, starts the real E2EE worker
// (src/web/e2ee/worker.ts) and transform worker (src/web/media/transform-worker.ts) wired by a
// MessageChannel, and records every message the E2EE worker sends to the page — what a page can see.
import type { E2eeToPage, TransformStats, TrustAnchorsJson } from '../../src/web/shared/messages.js';

declare global {
  interface Window {
    webE2ee: ReturnType<typeof createHarness>;
  }
}

function createHarness() {
  let keyPair: CryptoKeyPair | undefined;
  const seen: E2eeToPage[] = [];
  const e2ee = new Worker('/e2ee-worker.js', { name: 'e2ee' });
  const transform = new Worker('/transform-worker.js', { name: 'transform' });
  e2ee.onmessage = (e: MessageEvent) => seen.push(e.data as E2eeToPage);
  let statsId = 0;

  return {
    /** The person's key: generated here, never extractable; returns the raw public key (base64). */
    async makeKey(): Promise<string> {
      keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      const raw = new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
      return btoa(String.fromCharCode(...raw));
    },

    /** Can the page read its private key? (It must not be able to.) */
    async privateKeyExportable(): Promise<boolean> {
      try {
        await crypto.subtle.exportKey('pkcs8', keyPair!.privateKey);
        return true;
      } catch {
        return false;
      }
    },

    start(relayUrl: string, meetingId: string, certificatePem: string, trust: TrustAnchorsJson): void {
      const channel = new MessageChannel();
      transform.postMessage({ type: 'port', port: channel.port2 }, [channel.port2]);
      e2ee.postMessage(
        { type: 'start', relayUrl, meetingId, certificatePem, trust, keyPair, transformPort: channel.port1 },
        [channel.port1],
      );
    },

    leave(): void {
      e2ee.postMessage({ type: 'leave' });
    },

    /** Everything the E2EE worker told the page, structured-cloned as the page received it. */
    seen(): E2eeToPage[] {
      return seen;
    },

    transformStats(): Promise<TransformStats> {
      const id = ++statsId;
      return new Promise((resolve) => {
        const listener = (e: MessageEvent) => {
          if ((e.data as { id?: number }).id !== id) return;
          transform.removeEventListener('message', listener);
          resolve((e.data as { stats: TransformStats }).stats);
        };
        transform.addEventListener('message', listener);
        transform.postMessage({ type: 'stats', id });
      });
    },

    close(): void {
      e2ee.terminate();
      transform.terminate();
    },
  };
}

window.webE2ee = createHarness();
