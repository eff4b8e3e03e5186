// Where a client connects to a (possibly clustered) relay, and which redirects it follows
// (docs/relay.md "Several nodes"). Pure — no I/O, no node: imports — so the room's meeting client
// and the browser's E2EE worker share it.
//
// Entries are the relay URLs the client was configured with (any node of the cluster). A `redirect`
// reply names the node hosting a meeting; the client follows it only to a URL it already trusts:
// an entry, a node on an entry's host name (any port, never downgraded from wss to ws), or an
// allow-listed origin. Anything else is refused: a relay (or one node) that could send a room to a
// host of its choosing could make it talk to a server outside the organisation's control.
// At most MAX_REDIRECTS in a row: two nodes pointing at each other must not spin forever.

export const MAX_REDIRECTS = 3;

export type RedirectVerdict = { ok: true; url: string } | { ok: false; reason: string };

/** A ws:// or wss:// URL without credentials, normalised; undefined for anything else. */
export function parseRelayUrl(raw: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return undefined;
  if (url.username || url.password) return undefined;
  url.hash = '';
  return url;
}

/**
 * May a client configured with `entries` (and `allow`, origins or URLs) follow a redirect to `raw`?
 * Returns the normalised URL to connect to, or why not (for the log: never shown to people).
 */
export function redirectAllowed(
  raw: string,
  entries: readonly string[],
  allow: readonly string[] = [],
): RedirectVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    return { ok: false, reason: 'not a ws:// or wss:// URL' };
  if (url.username || url.password) return { ok: false, reason: 'carries credentials' };
  url.hash = '';
  const parsedEntries = entries.map(parseRelayUrl).filter((u): u is URL => u !== undefined);
  if (parsedEntries.some((e) => e.href === url.href)) return { ok: true, url: url.href };
  for (const a of allow) {
    const origin = parseRelayUrl(a);
    if (origin && origin.origin === url.origin) return { ok: true, url: url.href };
  }
  const sameHost = parsedEntries.filter((e) => e.hostname === url.hostname);
  if (sameHost.length === 0) return { ok: false, reason: 'a host that is not one of the relay entries' };
  // A TLS entry never hands the room to a clear-text socket (a downgrade the network could read).
  if (url.protocol === 'ws:' && sameHost.every((e) => e.protocol === 'wss:'))
    return { ok: false, reason: 'a downgrade from wss:// to ws://' };
  return { ok: true, url: url.href };
}

/**
 * The entry list, round-robin on failure (a dead entry is skipped, a working one is kept), the
 * pinned redirect target, and the count of redirects followed in a row.
 */
export class RelayEndpoints {
  readonly entries: readonly string[];
  readonly allow: readonly string[];
  readonly maxRedirects: number;
  #index = 0;
  /** Entries that failed since the last successful connection (a whole round → back off). */
  #failedInRound = 0;
  #pinned: string | undefined;
  #hops = 0;

  constructor(entries: readonly string[], allow: readonly string[] = [], maxRedirects = MAX_REDIRECTS) {
    const valid: string[] = [];
    for (const entry of entries) {
      const url = parseRelayUrl(entry.trim());
      if (!url) throw new Error(`not a relay URL (ws:// or wss://): ${entry}`);
      if (!valid.includes(url.href)) valid.push(url.href);
    }
    if (valid.length === 0) throw new Error('no relay URL');
    this.entries = valid;
    this.allow = allow;
    this.maxRedirects = maxRedirects;
  }

  get pinned(): string | undefined {
    return this.#pinned;
  }

  /** Redirects followed since the last request the relay answered itself. */
  get hops(): number {
    return this.#hops;
  }

  /** Where to connect now: the pinned redirect target, else the current entry. */
  next(): string {
    return this.#pinned ?? (this.entries[this.#index % this.entries.length] as string);
  }

  /** Connected to `url`. */
  connected(_url: string): void {
    this.#failedInRound = 0;
  }

  /**
   * Connecting to `url` failed. A pinned target is dropped (back to the entries, and the redirect
   * count starts again: the next node may place the meeting elsewhere); an entry makes way for the
   * next one. Returns 'pinned' | 'entry' | 'round' (every entry failed in a row: back off).
   */
  failed(url: string): 'pinned' | 'entry' | 'round' {
    if (this.#pinned !== undefined && url === this.#pinned) {
      this.#pinned = undefined;
      this.#hops = 0;
      return 'pinned';
    }
    this.#index = (this.#index + 1) % this.entries.length;
    this.#failedInRound++;
    if (this.#failedInRound >= this.entries.length) {
      this.#failedInRound = 0;
      return 'round';
    }
    return 'entry';
  }

  /**
   * A `redirect` reply arrived. `expectedMeetingId`: the meeting the request named (join, resume);
   * a redirect to another one is refused — a node must never silently switch a room's meeting.
   * On success the target is pinned and counted.
   */
  redirect(url: string, meetingId: string, expectedMeetingId?: string): RedirectVerdict {
    if (expectedMeetingId !== undefined && meetingId !== expectedMeetingId)
      return { ok: false, reason: 'a redirect to a different meeting' };
    if (this.#hops >= this.maxRedirects)
      return { ok: false, reason: `more than ${this.maxRedirects} redirects in a row` };
    const verdict = redirectAllowed(url, this.entries, this.allow);
    if (!verdict.ok) return verdict;
    this.#hops++;
    this.#pinned = verdict.url;
    return verdict;
  }

  /** The relay answered a create/join itself: the redirect chain is over. */
  settled(): void {
    this.#hops = 0;
  }

  /** Back to the entries (the node closed us with 4012 'moved', the meeting ended, a refusal). */
  unpin(): void {
    this.#pinned = undefined;
    this.#hops = 0;
  }

  /** What to show as "the relay" on a screen: an entry as configured; a pinned node only by origin. */
  display(url: string): string {
    if (this.entries.includes(url)) return url;
    return parseRelayUrl(url)?.origin ?? '';
  }
}
