// Which far senders the wall's remote m-lines carry. Pure. Up to `capacity` senders each keep the
// m-line they have (a tile never jumps while its sender stays); more senders than m-lines → the most
// recently active speakers win, a sender that never spoke ranks by when it first appeared.

export interface SenderActivity {
  senderIndex: number;
  /** When this sender was last the active speaker (ms); -Infinity if never. */
  lastSpoke: number;
  /** When its first frame arrived (ms): earlier first among equals. */
  firstSeen: number;
}

const rank = (a: SenderActivity, b: SenderActivity) =>
  b.lastSpoke - a.lastSpoke || a.firstSeen - b.firstSeen || a.senderIndex - b.senderIndex;

/**
 * The new assignment: index = remote m-line, value = sender index or undefined (idle). Senders kept
 * stay on their m-line; newcomers take the lowest free m-lines, in order of first appearance.
 */
export function assignSlots(
  current: readonly (number | undefined)[],
  senders: readonly SenderActivity[],
  capacity = current.length,
): (number | undefined)[] {
  const chosen = [...senders].sort(rank).slice(0, capacity);
  const wanted = new Set(chosen.map((s) => s.senderIndex));
  const next: (number | undefined)[] = Array.from({ length: capacity }, (_, i) => {
    const s = current[i];
    return s !== undefined && wanted.has(s) ? s : undefined;
  });
  const placed = new Set(next.filter((s): s is number => s !== undefined));
  const newcomers = chosen
    .filter((s) => !placed.has(s.senderIndex))
    .sort((a, b) => a.firstSeen - b.firstSeen || a.senderIndex - b.senderIndex);
  for (const s of newcomers) {
    const free = next.indexOf(undefined);
    if (free < 0) break;
    next[free] = s.senderIndex;
  }
  return next;
}

/** m-lines whose sender differs between two assignments (they must restart at a keyframe). */
export function changedLines(
  before: readonly (number | undefined)[],
  after: readonly (number | undefined)[],
): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(before.length, after.length); i++) if (before[i] !== after[i]) out.push(i);
  return out;
}
