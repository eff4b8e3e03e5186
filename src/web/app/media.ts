// The person's own camera, microphone and screen. A missing camera or microphone is not fatal: the
// person joins without it and the page says so.

export interface LocalMedia {
  microphone: MediaStreamTrack | null;
  camera: MediaStreamTrack | null;
  /** Why a device is missing, for the screen. */
  problems: string[];
}

const CAMERA: MediaTrackConstraints = {
  width: { ideal: 1280 },
  height: { ideal: 720 },
  frameRate: { ideal: 30 },
};
const MICROPHONE: MediaTrackConstraints = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
};

function reason(err: unknown): string {
  const name = (err as { name?: string }).name;
  if (name === 'NotAllowedError') return 'permission was refused';
  if (name === 'NotFoundError') return 'none was found';
  if (name === 'NotReadableError') return 'it is in use by another program';
  return (err as Error).message || String(err);
}

export async function openCamera(): Promise<MediaStreamTrack> {
  const s = await navigator.mediaDevices.getUserMedia({ video: CAMERA });
  return s.getVideoTracks()[0]!;
}

export async function openLocalMedia(): Promise<LocalMedia> {
  const out: LocalMedia = { microphone: null, camera: null, problems: [] };
  if (!navigator.mediaDevices?.getUserMedia) {
    out.problems.push('This browser cannot use a camera or microphone here.');
    return out;
  }
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: MICROPHONE });
    out.microphone = s.getAudioTracks()[0] ?? null;
  } catch (err) {
    out.problems.push(`No microphone: ${reason(err)}. Others will not hear you.`);
  }
  try {
    out.camera = await openCamera();
  } catch (err) {
    out.problems.push(`No camera: ${reason(err)}. Others will not see you.`);
  }
  return out;
}

/** The screen, a window or a tab, as the person picks it (no audio: the content line is video only). */
export async function openScreen(): Promise<MediaStreamTrack> {
  const s = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 15 } },
    audio: false,
  });
  const track = s.getVideoTracks()[0];
  if (!track) throw new Error('no screen was picked');
  // Text on a screen matters more than motion.
  track.contentHint = 'detail';
  return track;
}

export function screenRefusal(err: unknown): string {
  const name = (err as { name?: string }).name;
  if (name === 'NotAllowedError') return 'Screen sharing was cancelled or not allowed.';
  return `The screen could not be shared: ${reason(err)}.`;
}
