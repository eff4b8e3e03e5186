// The join link's fragment: `#meeting=<id>&relay=<ws url>`. The fragment never reaches a server, so the
// meeting id stays out of access logs. Anyone can craft a link: both values are checked here, and the
// page's CSP limits which relays it can reach at all.

/** Same rule as the relay's MeetingId (src/core/protocol/relay.ts). */
const MEETING_ID = /^[a-z0-9-]{4,32}$/;

export interface JoinTarget {
  meetingId: string;
  relayUrl: string;
}

export type FragmentResult =
  | { ok: true; target: JoinTarget }
  | { ok: false; reason: string }
  | { ok: 'none' };

export function parseJoinFragment(hash: string): FragmentResult {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const meeting = params.get('meeting');
  const relay = params.get('relay');
  if (meeting === null && relay === null) return { ok: 'none' };
  if (!meeting || !MEETING_ID.test(meeting)) {
    return { ok: false, reason: 'The link has no valid meeting id (4–32 lower-case letters, digits or -).' };
  }
  const relayUrl = relay ? checkRelayUrl(relay) : undefined;
  if (!relayUrl) return { ok: false, reason: 'The link has no valid relay address (ws:// or wss://).' };
  return { ok: true, target: { meetingId: meeting, relayUrl } };
}

/** A ws: or wss: URL without credentials or fragment, normalised; undefined otherwise. */
export function checkRelayUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return undefined;
  if (url.username || url.password || url.hash) return undefined;
  return url.toString();
}

export function joinFragment(target: JoinTarget): string {
  return `#${new URLSearchParams({ meeting: target.meetingId, relay: target.relayUrl }).toString()}`;
}
