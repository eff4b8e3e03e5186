// How many frames a room has decrypted (worker: and decoded) from another room's current sender
// index: the one media-flow check the meeting and network-fault tests share.
import type { Daemon } from '../device/daemon/daemon.js';
import { SyntheticMedia } from '../device/daemon/synthetic-media.js';
import type { StatsMessage } from '../device/media/supervisor.js';
import { parseKid } from '../src/core/e2ee/index.js';

export function framesFrom(
  receiver: Daemon,
  sender: Daemon,
  lastStats: ReadonlyMap<Daemon, StatsMessage>,
): number {
  const last = sender.meeting?.keyHistory.at(-1);
  if (!last) return 0;
  const senderIndex = parseKid(last.sendKid).senderIndex;
  const media = receiver.media;
  if (media instanceof SyntheticMedia) {
    const d = media.decoded.get(senderIndex);
    return d ? d.audio + d.video : 0;
  }
  const remote = lastStats.get(receiver)?.remotes.find((r) => r.senderIndex === senderIndex);
  return remote ? remote.videoFrames + remote.audioFrames : 0;
}
