// What the benchmarks' sending rooms share: a werift PeerConnection on 127.0.0.1 offering K streams to a
// real media worker exactly as the relay's SFU would (bench:media, bench:wall), or straight to a page
// (bench:wall's direct mode), and the RTP writing of one encoded frame.
import { MediaStreamTrack, RTCPeerConnection, RtpHeader, RtpPacket } from 'werift';
import type { VideoCodec } from '../../device/media/bitstream.js';
import type { MediaSupervisor } from '../../device/media/supervisor.js';
import { opusCodecParameters, videoCodecParameters } from '../../device/media/transport.js';
import { loopbackCandidatesOnly } from '../../device/media/wall/peer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One outgoing stream pair and its sequence numbers. */
export interface OutStream {
  video: MediaStreamTrack;
  audio: MediaStreamTrack;
  vseq: number;
  aseq: number;
}

/**
 * A PeerConnection with K sendonly video (+ audio unless `videoOnly`) tracks, ICE on 127.0.0.1; a
 * PLI on any video track calls `onKeyframeRequest`. `extra(i)` adds per-stream fields (keys).
 */
export function offeringPeer<T extends object>(
  codec: VideoCodec,
  k: number,
  opts: { videoOnly?: boolean; onKeyframeRequest: () => void; extra: (i: number) => T },
): { pc: RTCPeerConnection; streams: (OutStream & T)[] } {
  const pc = new RTCPeerConnection({
    iceServers: [],
    ...(opts.videoOnly ? { bundlePolicy: 'max-bundle' as const } : {}),
    codecs: { video: [videoCodecParameters(codec)], audio: opts.videoOnly ? [] : [opusCodecParameters()] },
    headerExtensions: { video: [], audio: [] },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceUseIpv6: false,
  });
  const streams = Array.from({ length: k }, (_, i) => ({
    video: new MediaStreamTrack({ kind: 'video' }),
    audio: new MediaStreamTrack({ kind: 'audio' }),
    vseq: i * 1000,
    aseq: i * 1000,
    ...opts.extra(i),
  }));
  for (const s of streams) {
    const v = pc.addTransceiver(s.video, { direction: 'sendonly' });
    if (!opts.videoOnly) pc.addTransceiver(s.audio, { direction: 'sendonly' });
    v.sender.onPictureLossIndication.subscribe(opts.onKeyframeRequest);
  }
  return { pc, streams };
}

async function connected(pc: RTCPeerConnection, what: string): Promise<void> {
  const deadline = Date.now() + 15000;
  while (pc.connectionState !== 'connected') {
    if (Date.now() > deadline) throw new Error(`bench sender: ${what} did not connect`);
    await sleep(100);
  }
}

/** Offers to a real media worker through its signalling, as the SFU does; resolves once connected. */
export async function offerToWorker(pc: RTCPeerConnection, receiver: MediaSupervisor): Promise<void> {
  receiver.removeAllListeners('signal');
  receiver.on('signal', (p) => {
    if (p.kind === 'description') void pc.setRemoteDescription({ type: p.type, sdp: p.sdp });
    else
      void pc.addIceCandidate({
        candidate: p.candidate,
        sdpMid: p.sdpMid ?? undefined,
        sdpMLineIndex: p.sdpMLineIndex ?? undefined,
      });
  });
  pc.onIceCandidate.subscribe((c) => {
    const j = c?.toJSON();
    if (j?.candidate)
      receiver.signal({
        kind: 'candidate',
        candidate: j.candidate,
        sdpMid: j.sdpMid ?? null,
        sdpMLineIndex: j.sdpMLineIndex ?? null,
      });
  });
  receiver.disconnect();
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  receiver.signal({ kind: 'description', type: 'offer', sdp: offer.sdp });
  await connected(pc, 'PeerConnection');
}

/** Offers to a page without trickle (`answer` returns its SDP); resolves once connected. */
export async function offerToPage(
  pc: RTCPeerConnection,
  answer: (offer: string) => Promise<string>,
): Promise<void> {
  await pc.setLocalDescription(await pc.createOffer());
  const gathered = Date.now() + 3000;
  while (pc.iceGatheringState !== 'complete' && Date.now() < gathered) await sleep(50);
  const offer = loopbackCandidatesOnly(pc.localDescription?.sdp ?? '');
  await pc.setRemoteDescription({ type: 'answer', sdp: await answer(offer) });
  await connected(pc, 'page');
}

/** One frame's RTP payloads on `track`: the given timestamp, the next sequence numbers, marker last. */
export function writeFrame(
  stream: OutStream,
  kind: 'video' | 'audio',
  payloads: readonly Uint8Array[],
  timestamp: number,
  payloadType: number,
): void {
  const track = kind === 'video' ? stream.video : stream.audio;
  payloads.forEach((payload, i) => {
    const seq = ((kind === 'video' ? stream.vseq : stream.aseq) + 1) & 0xffff;
    if (kind === 'video') stream.vseq = seq;
    else stream.aseq = seq;
    const header = new RtpHeader({
      sequenceNumber: seq,
      timestamp,
      marker: kind === 'video' && i === payloads.length - 1,
      payloadType,
    });
    const bytes = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    track.writeRtp(new RtpPacket(header, bytes));
  });
}
