// What a person in the room can ask the daemon to do. The kiosk UI (via the local control API), the
// HID buttons and the CLI all call this one interface; the meeting client and media supervisor
// implement it. Each action resolves when accepted and rejects with a message a person can read.
export interface RoomActions {
  startMeeting(): Promise<{ meetingId: string }>;
  joinMeeting(meetingId: string): Promise<void>;
  leaveMeeting(): Promise<void>;
  admit(participantId: string): Promise<void>;
  deny(participantId: string): Promise<void>;
  lockMeeting(locked: boolean): Promise<void>;
  setMicMuted(muted: boolean): Promise<void>;
  setCameraOff(off: boolean): Promise<void>;
  /** 0..100 */
  setVolume(volume: number): Promise<void>;
  /** Attendees confirmed the code after a leader change: clears the re-check prompt. */
  acknowledgeLeaderChange(): Promise<void>;
}
