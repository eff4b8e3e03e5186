// The media engine, as the daemon uses it.
//
//   const media = new MediaSupervisor({ state, log, settings: (await chooseProfile(await detectDevices(), config)).settings });
//   await media.start();                       // forks the worker (UV_THREADPOOL_SIZE set), plays pipelines
//   media.on('signal', (p) => relay.send({ type: 'signal', payload: p }));   // worker → relay
//   relay.on('signal', (p) => media.signal(p));                              // relay → worker: the worker
//                                              // answers every SFU offer (its PeerConnection is created by
//                                              // the first one; connect('offer') is for peer-to-peer only)
//   media.setKeys({ epoch, sendKid, sendKey, receiveKeys: [{ kid, key }] }); // current + next epoch only
//   media.setRoster([{ senderIndex, name }]);  // gallery labels; senderIndex = parseKid(kid).senderIndex
//   media.setMicMuted(true); media.setCameraOff(true);   // also written into StateStore.media
//   media.requestKeyframe();                   // e.g. after a new subscriber or a new epoch
//   media.on('ready', () => relay.send({ type: 'media', enabled: true }));   // after every (re)start:
//                                              // the worker's PeerConnection is new, ask the SFU to offer
//   await media.stop();                        // pipelines first, then the process (SIGKILL after 3 s)
//
// MediaSupervisor restarts a worker that exits or stops answering pings (backoff 250 ms … 10 s),
// re-sends settings, keys (with a fresh SFrame counter range), roster and controls, keeps
// StateStore.media (worker, camera, microphone, micMuted, cameraOff) current and raises/clears the
// alerts media.worker, media.camera ("Camera unavailable"), media.microphone and media.setup (a
// missing GStreamer element or bad template, by name). The worker never sees identity or meeting keys.
export {
  MediaSupervisor,
  type MediaKeys,
  type MediaSupervisorOptions,
  type StatsMessage,
  type ProbeMessage,
} from './supervisor.js';
export {
  chooseProfile,
  detectDevices,
  parseDeviceMonitor,
  type MediaDevice,
  type ProfileChoice,
} from './devices.js';
export { DEFAULT_SETTINGS, type MediaSettings } from './templates.js';
export type { FromWorker, SettingsPatch, ToWorker } from './ipc.js';
