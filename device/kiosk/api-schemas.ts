// Request bodies of the local control API (TypeBox → JSON schema, validated by fastify).
import { type Static, Type } from '@sinclair/typebox';

export const Empty = Type.Object({}, { additionalProperties: false });

/** Meeting ids are typed on a keypad and read aloud: short, no spaces or punctuation beyond '-'. */
export const JoinBody = Type.Object(
  { meetingId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' }) },
  { additionalProperties: false },
);
export type JoinBody = Static<typeof JoinBody>;

export const ParticipantBody = Type.Object(
  { participantId: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);
export type ParticipantBody = Static<typeof ParticipantBody>;

export const LockBody = Type.Object({ locked: Type.Boolean() }, { additionalProperties: false });
export type LockBody = Static<typeof LockBody>;

export const MuteBody = Type.Object({ muted: Type.Boolean() }, { additionalProperties: false });
export type MuteBody = Static<typeof MuteBody>;

export const CameraBody = Type.Object({ off: Type.Boolean() }, { additionalProperties: false });
export type CameraBody = Static<typeof CameraBody>;

export const VolumeBody = Type.Object(
  { volume: Type.Integer({ minimum: 0, maximum: 100 }) },
  { additionalProperties: false },
);
export type VolumeBody = Static<typeof VolumeBody>;

/** The kiosk page's SDP answer for a wall session (ICE credentials and its DTLS fingerprint). */
export const WallAnswerBody = Type.Object(
  { sdp: Type.String({ minLength: 1, maxLength: 65536 }) },
  { additionalProperties: false },
);
export type WallAnswerBody = Static<typeof WallAnswerBody>;
