// Which counter jumps a Sealroom receiver accepts (docs/sframe.md §7). A sender's CTR is
// generation·2^40 + n: the media supervisor gives each worker generation (a restart) its own 2^40
// counters, and n counts the frames (H.264: NAL units; audio shares the KID) that generation sent
// under one KID, which lives at most one epoch (≤ 5 minutes + grace, ~100 000 counters at 720p30).
// A frame far beyond that — one counter pushed to 2^63, say — is refused without moving the window,
// so even a frame that authenticated could not lock its sender out of its own KID.

export const GENERATION_SHIFT = 40n;
/** Largest step ahead of the highest CTR within a generation, and largest n of any generation. */
export const MAX_COUNTER_STEP = 1n << 20n;
/** Largest step in generations (worker restarts during one KID). */
export const MAX_GENERATION_STEP = 256n;

const LOW_MASK = (1n << GENERATION_SHIFT) - 1n;

export function plausibleCounter(ctr: bigint, highest: bigint | undefined): boolean {
  const low = ctr & LOW_MASK;
  if (highest === undefined) return low < MAX_COUNTER_STEP;
  if (ctr <= highest) return true; // the replay window decides
  if (ctr - highest <= MAX_COUNTER_STEP) return true;
  const generations = (ctr >> GENERATION_SHIFT) - (highest >> GENERATION_SHIFT);
  return generations > 0n && generations <= MAX_GENERATION_STEP && low < MAX_COUNTER_STEP;
}
