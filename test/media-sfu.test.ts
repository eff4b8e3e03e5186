// The worker against an SFU-shaped peer: the relay offers (recvonly m-lines for what the room
// publishes), the worker answers without being told to connect, and publishes audio and video whose
// every payload is SFrame under the room's KID plus the sender-authentication trailer (a tag for the
// other member, none the relay could check or make) — what the relay forwards is ciphertext only.
import { afterAll, describe, expect, it } from 'vitest';
import { RTCPeerConnection, type RtpPacket } from 'werift';
import { makeKid } from '../src/core/e2ee/sender-keys.js';
import { SFrameReceiver, decodeHeader } from '../src/core/sframe/index.js';
import { FrameAssembler } from '../device/media/frame-assembler.js';
import { FrameAuthVerifier } from '../src/core/frame-auth/node.js';
import { splitTrailer, splitTrailerNal } from '../device/media/auth-layout.js';
import { openH264AccessUnit } from '../device/media/frame-protect.js';
import { splitProtectedNal } from '../device/media/h264-protect.js';
import { openAuthenticated, openH264Authenticated } from '../device/media/sender-auth.js';
import { depacketizeH264 } from '../device/media/rtp-payload.js';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import { opusCodecParameters, videoCodecParameters } from '../device/media/transport.js';
import { authKeys, meetingKeys, newMeetingKey, waitFor, worker } from './media-harness.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await Promise.all(cleanup.map((c) => c()));
});

describe('worker against an SFU-shaped offerer', () => {
  it('answers the relay’s offer and publishes only SFrame-protected media under its KID', async () => {
    const mk = newMeetingKey();
    const room: MediaSupervisor = worker({ codec: 'h264', pattern: 'red' });
    cleanup.push(() => room.stop());
    await room.start();
    // Room 3 in a meeting with member 5 (who is not connected here): it tags every frame for 5.
    const keys = meetingKeys(mk, 4, 3, [3, 5]);
    const [fromRoom] = authKeys(mk, 5, [3, 5]);
    if (!fromRoom) throw new Error('no auth key');
    const member5 = new FrameAuthVerifier(5, [{ peerIndex: 3, key: fromRoom.receive }]);
    room.setKeys(keys);

    const sfu = new RTCPeerConnection({
      iceServers: [],
      codecs: { video: [videoCodecParameters('h264')], audio: [opusCodecParameters()] },
      headerExtensions: { video: [], audio: [] },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      iceInterfaceAddresses: { udp4: '127.0.0.1' },
      iceUseIpv6: false,
    });
    cleanup.push(() => sfu.close());
    const got = { video: [] as RtpPacket[], audio: [] as RtpPacket[] };
    for (const kind of ['video', 'audio'] as const) {
      sfu.addTransceiver(kind, { direction: 'recvonly' }).onTrack.subscribe((track) => {
        track.onReceiveRtp.subscribe((p) => got[kind].push(p));
      });
    }
    room.on('signal', (p) => {
      if (p.kind === 'description') void sfu.setRemoteDescription({ type: p.type, sdp: p.sdp });
      else
        void sfu.addIceCandidate({
          candidate: p.candidate,
          sdpMid: p.sdpMid ?? undefined,
          sdpMLineIndex: p.sdpMLineIndex ?? undefined,
        });
    });
    sfu.onIceCandidate.subscribe((c) => {
      const j = c?.toJSON();
      if (j?.candidate)
        room.signal({
          kind: 'candidate',
          candidate: j.candidate,
          sdpMid: j.sdpMid ?? null,
          sdpMLineIndex: j.sdpMLineIndex ?? null,
        });
    });
    const offer = await sfu.createOffer();
    await sfu.setLocalDescription(offer);
    room.signal({ kind: 'description', type: 'offer', sdp: offer.sdp });

    await waitFor('media at the SFU', () => got.video.length > 60 && got.audio.length > 30);

    const kid = makeKid(4, 3);
    const right = new SFrameReceiver({ replayWindow: 4096 });
    right.setKey(kid, keys.sendKey);
    const wrong = new SFrameReceiver({ replayWindow: 4096 });
    wrong.setKey(kid, newMeetingKey());

    // Video: valid H.264 RTP structure, every NAL body an SFrame of our KID, decryptable only with our key.
    const assembler = new FrameAssembler();
    // Arrival order: the assembler reorders (and a sort would break at the 16-bit wrap).
    const frames = got.video.flatMap((p) => assembler.push({ ...p.header, payload: p.payload }));
    const units = frames.map((f) => depacketizeH264(f.payloads)).filter((u): u is Uint8Array[] => !!u);
    expect(units.length).toBeGreaterThan(20);
    for (const frame of units) {
      // The last NAL unit is the trailer (type 12), with one tag: for member 5.
      const { units: sealed, trailer } = splitTrailerNal(frame);
      expect(trailer.receivers).toEqual([5]);
      for (const unit of sealed) {
        expect([1, 5, 7, 8]).toContain((unit[0] as number) & 0x1f);
        expect(decodeHeader(splitProtectedNal(unit).sframe).kid).toBe(kid);
      }
      expect(() => openH264AccessUnit(wrong, sealed)).toThrow();
    }
    let opened = 0;
    for (const frame of units) {
      openH264Authenticated(right, member5, frame);
      opened++;
    }
    expect(opened).toBe(units.length);

    // Audio: one SFrame per Opus frame, then the trailer.
    for (const p of got.audio.slice(0, 20)) {
      expect(decodeHeader(splitTrailer(p.payload).frame).kid).toBe(kid);
      expect(openAuthenticated('opus', right, member5, p.payload).frame.length).toBeGreaterThan(0);
    }
  }, 60_000);
});
