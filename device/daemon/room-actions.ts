// RoomActions as the daemon provides them: meeting actions go to the meeting client, media controls
// to the media supervisor (when a worker runs) and into the state the kiosk and HID LEDs mirror.
import type { MediaSupervisor } from '../media/supervisor.js';
import type { RoomActions } from './actions.js';
import type { MeetingClient } from './meeting-client.js';
import type { StateStore } from './state.js';

export function createRoomActions(deps: {
  /** The meeting client once the device has its certificate (undefined while enrolling). */
  meeting: () => MeetingClient | undefined;
  state: StateStore;
  supervisor?: MediaSupervisor;
}): RoomActions {
  const { state, supervisor } = deps;
  const meeting = (): MeetingClient => {
    const client = deps.meeting();
    if (!client)
      throw new Error('this room is not enrolled yet: IT must claim it with the code on the screen');
    return client;
  };
  return {
    startMeeting: async () => meeting().startMeeting(),
    joinMeeting: async (id) => meeting().joinMeeting(id),
    leaveMeeting: async () => deps.meeting()?.leaveMeeting(),
    admit: async (id) => meeting().admit(id),
    deny: async (id) => meeting().deny(id),
    lockMeeting: async (locked) => meeting().lockMeeting(locked),
    acknowledgeLeaderChange: async () => meeting().acknowledgeLeaderChange(),
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
