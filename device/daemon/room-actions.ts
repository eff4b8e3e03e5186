// RoomActions as the daemon provides them: meeting actions go to the meeting client, media controls
// to the media supervisor (when a worker runs) and into the state the kiosk and HID LEDs mirror.
import type { MediaSupervisor } from '../media/supervisor.js';
import type { RoomActions } from './actions.js';
import type { MeetingClient } from './meeting-client.js';
import type { StateStore } from './state.js';

export function createRoomActions(deps: {
  meeting: MeetingClient;
  state: StateStore;
  supervisor?: MediaSupervisor;
}): RoomActions {
  const { meeting, state, supervisor } = deps;
  return {
    startMeeting: () => meeting.startMeeting(),
    joinMeeting: (id) => meeting.joinMeeting(id),
    leaveMeeting: () => meeting.leaveMeeting(),
    admit: (id) => meeting.admit(id),
    deny: (id) => meeting.deny(id),
    lockMeeting: (locked) => meeting.lockMeeting(locked),
    acknowledgeLeaderChange: () => meeting.acknowledgeLeaderChange(),
    async setMicMuted(muted) {
      supervisor?.setMicMuted(muted);
      state.update((s) => {
        s.media.micMuted = muted;
      });
    },
    async setCameraOff(off) {
      supervisor?.setCameraOff(off);
      state.update((s) => {
        s.media.cameraOff = off;
      });
    },
    async setVolume(volume) {
      if (!Number.isInteger(volume) || volume < 0 || volume > 100) throw new Error('volume must be 0..100');
      state.update((s) => {
        s.media.volume = volume;
      });
    },
  };
}
