// Reads the SFU's offer for what the page needs to label media: each m-section's mid, kind, direction
// and `a=msid:<publisher participant id> <audio|video|content>` (docs/relay.md). The offer comes from
// the relay, an attacker: the labels only pick which verified roster member a tile is drawn under and
// whether it goes in the content slot; the names come from the E2EE worker's verified view, and a
// stream whose msid names nobody in it is shown as unverified.

export type MediaLabel = 'audio' | 'video' | 'content';

export interface OfferSection {
  index: number;
  mid: string;
  kind: 'audio' | 'video' | string;
  /** Direction as the relay wrote it (sendonly: it sends us a publisher's media). */
  direction: 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';
  /** From a=msid, when present and well formed. */
  publisher?: string;
  label?: MediaLabel;
  /** Video: the first payload type's codec (the SFU uses one video codec per deployment). */
  codec?: 'vp8' | 'h264';
}

const LABELS = new Set<MediaLabel>(['audio', 'video', 'content']);
/** Participant ids as the relay makes them: short tokens; anything else is ignored, not echoed. */
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_SECTIONS = 512;

export function parseOffer(sdp: string): OfferSection[] {
  const out: OfferSection[] = [];
  let current: OfferSection | undefined;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line.startsWith('m=')) {
      if (out.length >= MAX_SECTIONS) break;
      current = {
        index: out.length,
        mid: '',
        kind: line.slice(2).split(' ')[0] ?? '',
        direction: 'sendrecv',
      };
      out.push(current);
      continue;
    }
    if (!current) continue;
    if (line.startsWith('a=mid:')) current.mid = line.slice(6).slice(0, 64);
    else if (/^a=(sendonly|recvonly|sendrecv|inactive)$/.test(line))
      current.direction = line.slice(2) as OfferSection['direction'];
    else if (line.startsWith('a=rtpmap:') && current.kind === 'video' && !current.codec) {
      const name = /^a=rtpmap:\d+ ([A-Za-z0-9-]+)\//.exec(line)?.[1]?.toLowerCase();
      if (name === 'vp8' || name === 'h264') current.codec = name;
    } else if (line.startsWith('a=msid:')) {
      const [stream, track] = line.slice(7).split(' ');
      if (stream && ID.test(stream) && track && LABELS.has(track as MediaLabel)) {
        current.publisher = stream;
        current.label = track as MediaLabel;
      }
    }
  }
  return out;
}

/**
 * The m-lines this page publishes on (recvonly at the relay), in the order docs/relay.md fixes for a
 * person: first audio = microphone, first video = camera, second video = content (screen share).
 */
export function publishLines(sections: OfferSection[]): {
  microphone?: string;
  camera?: string;
  content?: string;
} {
  const out: { microphone?: string; camera?: string; content?: string } = {};
  for (const s of sections) {
    if (s.direction !== 'recvonly' || !s.mid) continue;
    if (s.kind === 'audio' && !out.microphone) out.microphone = s.mid;
    else if (s.kind === 'video' && !out.camera) out.camera = s.mid;
    else if (s.kind === 'video' && !out.content) out.content = s.mid;
  }
  return out;
}

/** mid → what the relay says that m-line carries (sendonly sections with a valid msid only). */
export function subscriptions(
  sections: OfferSection[],
): Map<string, { publisher: string; label: MediaLabel }> {
  const map = new Map<string, { publisher: string; label: MediaLabel }>();
  for (const s of sections) {
    if (s.direction !== 'sendonly' || !s.publisher || !s.label || !s.mid) continue;
    // A label must match the m-line's media kind: an "audio" label on a video line is a lie.
    const kindOk = s.label === 'audio' ? s.kind === 'audio' : s.kind === 'video';
    if (kindOk) map.set(s.mid, { publisher: s.publisher, label: s.label });
  }
  return map;
}
