// A subscriber who joins a meeting after the publisher and misses its first keyframe recovers only if
// its PLIs reach the publisher. Chromium names its own outgoing camera SSRC as the sender of those
// PLIs; werift's router delivered a PSFB to the owner of its *sender* SSRC first, which at the relay
// is the subscriber's own published-video receiver, so no PLI was ever relayed (a browser person
// received the other person's video, sent 100+ PLIs and never decoded a frame). The relay routes a
// PLI by its media SSRC (src/relay/werift-fixes.ts, routePliByMediaSsrc).
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { PictureLossIndication, RtcpPayloadSpecificFeedback } from 'werift';
import { LoopbackMediaPeer } from '../device/daemon/loopback-media-peer.js';
import type { SignalPayload } from '../src/core/protocol/relay.js';
import type { ConnectionId } from '../src/relay/meetings.js';
import { Sfu } from '../src/relay/sfu.js';
import { silentLogger } from '../src/util/log.js';
import { CHROMIUM, CHROMIUM_ARGS } from './browser/chromium.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const A = 'alice-connection' as ConnectionId;
const B = 'bob-connection' as ConnectionId;

/** An SFU on loopback whose offers go to `deliver`. */
function sfuFor(deliver: (connection: ConnectionId, payload: SignalPayload) => void): Sfu {
  const sfu = new Sfu({
    log: silentLogger,
    videoCodec: 'VP8',
    mediaAddress: '127.0.0.1',
    sendSignal: deliver,
  });
  cleanups.push(() => sfu.close());
  return sfu;
}

/** A werift publisher wired to the SFU as `connection`; sends undecodable VP8 interframes. */
function publisher(sfu: () => Sfu, connection: ConnectionId): LoopbackMediaPeer {
  const peer = new LoopbackMediaPeer('VP8');
  peer.on('signal', (p) => void sfu().handleSignal(connection, p));
  let n = 0;
  const timer = setInterval(() => {
    n++;
    if (!peer.connected) return;
    // VP8 descriptor (S=1), then a frame header with the P bit set: an interframe, never a keyframe.
    peer.send(
      'video',
      Buffer.concat([Buffer.from([0x10, 0x01, 0x02, 0x03]), Buffer.alloc(600, 7)]),
      n * 3000,
    );
  }, 33);
  cleanups.push(() => clearInterval(timer));
  cleanups.push(() => peer.close());
  return peer;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a late subscriber asks the publisher for a keyframe', () => {
  it('relays a PLI whose sender SSRC is the subscriber’s own published video (as Chromium sends it)', async () => {
    let sfu: Sfu | undefined;
    const alice = publisher(() => sfu as Sfu, A);
    const bob = publisher(() => sfu as Sfu, B);
    sfu = sfuFor((c, p) => void (c === A ? alice : bob).handleSignal(p));
    sfu.add(A, 'm', 'alice');
    await expect.poll(() => alice.connected, { timeout: 10_000 }).toBe(true);
    sfu.add(B, 'm', 'bob');
    let fromAlice = 0;
    bob.on('packet', (p) => {
      if (p.kind === 'video') fromAlice++;
    });
    await expect.poll(() => fromAlice, { timeout: 10_000 }).toBeGreaterThan(10);
    // The relay's own keyframe requests (publisher track, answer, connected) are done by now.
    await settle(500);
    const before = alice.keyframeRequests;

    const transceivers = bob.pc.getTransceivers();
    const ownVideo = transceivers[1]?.sender.ssrc;
    const subscribed = transceivers.find((t, i) => i > 1 && t.kind === 'video');
    const mediaSsrc = subscribed?.receiver.track?.ssrc;
    const transport = subscribed?.receiver.dtlsTransport;
    expect(ownVideo).toBeDefined();
    expect(mediaSsrc).toBeDefined();
    // Bob's answer advertised his video SSRC: the relay knows it as his published video.
    expect(bob.pc.localDescription?.sdp).toContain(`a=ssrc:${ownVideo} `);
    for (let i = 0; i < 3; i++) {
      const pli = new PictureLossIndication({
        senderSsrc: ownVideo as number,
        mediaSsrc: mediaSsrc as number,
      });
      await transport?.sendRtcp([new RtcpPayloadSpecificFeedback({ feedback: pli })]);
      await settle(50);
    }
    await expect.poll(() => alice.keyframeRequests - before, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it.skipIf(!existsSync(CHROMIUM))(
    'relays every PLI of a Chromium subscriber that cannot decode to the publisher',
    async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
      });
      cleanups.push(() => browser.close());
      const page = await browser.newPage();
      await page.route('http://localhost/**', (r) =>
        r.fulfill({ contentType: 'text/html', body: '<html></html>' }),
      );
      await page.goto('http://localhost/late-joiner');
      let sfu: Sfu | undefined;
      const alice = publisher(() => sfu as Sfu, A);
      await page.exposeFunction('toSfu', (p: SignalPayload) => sfu?.handleSignal(B, p));
      // Like src/web/app/call.ts: m-lines 0 and 1 publish (sendonly, replaceTrack), the rest receive.
      await page.evaluate(async () => {
        const w = window as unknown as Record<string, unknown>;
        const toSfu = w.toSfu as (p: unknown) => Promise<void>;
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
        const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
        w.pc = pc;
        pc.onicecandidate = (e) => {
          if (e.candidate)
            void toSfu({
              kind: 'candidate',
              candidate: e.candidate.candidate,
              sdpMid: e.candidate.sdpMid,
              sdpMLineIndex: e.candidate.sdpMLineIndex,
            });
        };
        let published = false;
        w.onOffer = async (sdp: string) => {
          await pc.setRemoteDescription({ type: 'offer', sdp });
          const [audio, video] = pc.getTransceivers();
          if (!published && audio && video) {
            published = true;
            audio.direction = 'sendonly';
            await audio.sender.replaceTrack(stream.getAudioTracks()[0] ?? null);
            video.direction = 'sendonly';
            await video.sender.replaceTrack(stream.getVideoTracks()[0] ?? null);
          }
          await pc.setLocalDescription(await pc.createAnswer());
          await toSfu({ kind: 'description', type: 'answer', sdp: pc.localDescription?.sdp });
        };
      });
      sfu = sfuFor((c, p) => {
        if (c === A) void alice.handleSignal(p);
        else if (p.kind === 'description')
          void page.evaluate(
            (s) => (window as unknown as { onOffer(s: string): Promise<void> }).onOffer(s),
            p.sdp,
          );
      });
      sfu.add(A, 'm', 'alice');
      await expect.poll(() => alice.connected, { timeout: 10_000 }).toBe(true);
      sfu.add(B, 'm', 'bob');

      const inbound = () =>
        page.evaluate(async () => {
          const pc = (window as unknown as { pc: RTCPeerConnection }).pc;
          let found = { packets: 0, plis: 0, frames: 0 };
          (await pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video')
              found = {
                packets: s.packetsReceived ?? 0,
                plis: s.pliCount ?? 0,
                frames: s.framesDecoded ?? 0,
              };
          });
          return found;
        });
      // Bob gets Alice's video, cannot decode it (no keyframe ever) and keeps asking for one.
      await expect.poll(async () => (await inbound()).plis, { timeout: 20_000 }).toBeGreaterThanOrEqual(5);
      const seen = await inbound();
      expect(seen.packets).toBeGreaterThan(0);
      expect(seen.frames).toBe(0);
      // Every one of them reaches Alice (the relay's own requests come on top).
      await expect.poll(() => alice.keyframeRequests, { timeout: 5_000 }).toBeGreaterThanOrEqual(seen.plis);
    },
    40_000,
  );
});
