// The wall's PeerConnection against a real werift answerer on loopback: the offer's shape, RTP as
// the page receives it (timestamp unchanged, fresh consecutive sequence numbers, marker on the last
// packet of a frame, payload bytes intact), PLI routing, and the one-answer rule.
import { afterEach, describe, expect, it } from 'vitest';
import { type RtpPacket, RTCPeerConnection } from 'werift';
import { videoCodecParameters } from '../transport.js';
import { WallPeer, loopbackCandidatesOnly } from './peer.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

function answerer(): RTCPeerConnection {
  const pc = new RTCPeerConnection({
    iceServers: [],
    codecs: { video: [videoCodecParameters('h264')], audio: [] },
    headerExtensions: { video: [], audio: [] },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceUseIpv6: false,
  });
  open.push(pc);
  return pc;
}

async function answer(pc: RTCPeerConnection, offer: string): Promise<string> {
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  return pc.localDescription?.sdp ?? '';
}

const waitUntil = async (what: string, check: () => boolean, ms = 20000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('WallPeer', () => {
  it('keeps only 127.0.0.1 candidates', () => {
    const sdp = [
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'a=candidate:1 1 udp 2116026367 127.0.0.1 5000 typ host',
      'a=candidate:2 1 udp 2116026367 192.0.2.2 5001 typ host',
      'a=candidate:3 1 udp 2116026367 10.0.0.1 5002 typ host',
      'a=mid:0',
    ].join('\r\n');
    expect(loopbackCandidatesOnly(sdp).split('\r\n')).toEqual([
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'a=candidate:1 1 udp 2116026367 127.0.0.1 5000 typ host',
      'a=mid:0',
    ]);
  });

  it('offers 11 sendonly video m-lines and delivers frames as sent', async () => {
    const peer = await WallPeer.create('h264');
    open.push(peer);
    const offer = peer.offer;
    expect(offer.match(/^m=video /gm)).toHaveLength(11);
    expect(offer).not.toMatch(/^m=(audio|application)/m);
    expect(offer).not.toMatch(/^a=extmap:/m);
    expect([...offer.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) /gm)].map((m) => m[1])).toEqual(
      Array(11).fill('127.0.0.1'),
    );
    expect(peer.mids).toEqual(Array.from({ length: 11 }, (_, i) => String(i)));

    const pc = answerer();
    const got = new Map<string, RtpPacket[]>();
    pc.onTransceiverAdded.subscribe((t) => {
      t.onTrack.subscribe((track) =>
        track.onReceiveRtp.subscribe((p) => {
          const mid = t.mid ?? '?';
          got.set(mid, [...(got.get(mid) ?? []), p]);
        }),
      );
    });
    const sdp = await answer(pc, offer);
    await peer.answer(sdp);
    await expect(peer.answer(sdp)).rejects.toThrow(/already answered/);
    await waitUntil('connected', () => peer.connected);

    // A frame of three packets on remote m-line 3 (sent until the receiver has seen it: the first
    // packets may race the receiver's SRTP setup), then one of one packet.
    const frame = [Buffer.alloc(1200, 1), Buffer.alloc(1200, 2), Buffer.alloc(300, 3)];
    await waitUntil('packets on mid 3', () => {
      peer.send(3, frame, 0x12345678);
      return (got.get('3')?.length ?? 0) >= 3;
    });
    const before = got.get('3')?.length ?? 0;
    peer.send(3, [Buffer.from([0x65, 9, 9])], 0xfffffff0);
    await waitUntil('second frame', () => (got.get('3')?.length ?? 0) > before);
    const packets = got.get('3') as RtpPacket[];
    const last3 = packets.slice(-4);
    expect(last3.map((p) => p.header.timestamp)).toEqual([0x12345678, 0x12345678, 0x12345678, 0xfffffff0]);
    expect(last3.map((p) => p.header.marker)).toEqual([false, false, true, true]);
    for (let i = 1; i < last3.length; i++)
      expect(last3[i]?.header.sequenceNumber).toBe(((last3[i - 1]?.header.sequenceNumber ?? 0) + 1) & 0xffff);
    expect(last3[1]?.payload).toEqual(Buffer.alloc(1200, 2));
    expect(last3[3]?.payload).toEqual(Buffer.from([0x65, 9, 9]));
    // Nothing leaked onto another m-line.
    expect([...got.keys()]).toEqual(['3']);

    // A PLI from the page names the m-line it came for.
    const asked: number[] = [];
    peer.on('keyframeRequest', (line) => asked.push(line));
    const transceivers = pc.getTransceivers();
    const ssrcOf = (i: number) => packetsSsrc(got, String(i));
    await transceivers[3]?.receiver.sendRtcpPLI(ssrcOf(3));
    await waitUntil('PLI on m-line 3', () => asked.includes(3));
    expect(asked).toEqual([3]);
  }, 60_000);
});

function packetsSsrc(got: Map<string, RtpPacket[]>, mid: string): number {
  return got.get(mid)?.[0]?.header.ssrc ?? 0;
}
