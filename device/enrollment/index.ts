// device/enrollment — how a room box joins the organisation and stays known to it.
//
// The daemon composer constructs one runner:
//   const runner = new EnrollmentRunner({
//     stateDir,            // e.g. /var/lib/sealroom: identity.key (0600), enrollment.json, device.pem, ca.pem,
//                          // provisioning-ca.pem (the service's TLS CA, pinned at first use)
//     serviceUrl,          // provisioning service base URL: https:// only
//     provisioningCaSha256?, // the TLS CA's SHA-256 to require at first use ($SEALROOM_PROVISIONING_CA_SHA256)
//     softwareVersion,
//     state,               // the daemon's StateStore: runner writes `enrollment` (code, expiresAt, claimUrl,
//                          // status), `device.{deviceId,roomName,org,site}` and phase enrolling → idle
//     heartbeatIntervalMs?, pollIntervalMs?, backoff?, clock?, logger?, collectHealth?, collectInventory?
//   });
//   runner.on('enrolled', (cert) => …)   // { certPem, caCertPem, serial, notAfter, roomName, site, org }
//   runner.on('config', (config, version) => …)
//   runner.on('revoked', (message) => …)  // only with proof: the org CA's CRL listing this device
//   runner.on('ca-rollover', (newCaPem) => …)  // a signed rollover replaced ca.pem: reload the anchors
//   runner.on('restart', (actionId) => …)  // IT's restart action, already reported done (device/daemon/restart.ts)
//   await runner.start(); … await runner.stop();
//   runner.current  → EnrollmentState (phase unregistered | awaiting-claim | enrolled | revoked)
//   runner.identity → { key, deviceId } (sign with key.privateKey; it never leaves the device)
//   runner.fetch    → fetch pinned to the service's TLS CA (use it for GET /v1/revocations)
//
// Trust anchors pinned at enrollment (./trust-anchors.ts): ca.pem, partner CAs from signed config
// (`partnerCas`), the newest CRL — `DeviceTrustAnchors.load(stateDir)`. ca.pem is written at first
// enrollment only; it changes only through `caRollover` in config, signed by the CA it replaces
// (src/pki/ca-rollover.ts).
//
// Remote actions from heartbeat replies (restart, renew-certificate, collect-logs): ./actions.ts, each done
// once (ledger <stateDir>/actions.json); log bundles (.tar.gz, scrubbed, ≤ 8 MiB): ./log-bundle.ts.
//
// Pure core: ./machine.ts (states, events, nextAction, backoffDelay, toView). I/O: ./runner.ts, ./health.ts.
export { ACTIONS_FILE, DeviceActions, parseActions } from './actions.js';
export { collectHealth, collectInventory, type PeripheralKind, peripheralReport } from './health.js';
export { buildLogBundle, LogRing, MAX_BUNDLE_BYTES, readTar, scrubSecrets } from './log-bundle.js';
export {
  backoffDelay,
  type Certificate,
  type EnrollmentAction,
  type EnrollmentEvent,
  type EnrollmentState,
  initialEnrollmentState,
  nextAction,
  reduce,
  toView,
} from './machine.js';
export {
  type Clock,
  EnrollmentRunner,
  type EnrollmentRunnerOptions,
  STATE_FILE,
  systemClock,
} from './runner.js';
export {
  CA_FILE,
  DeviceTrustAnchors,
  type DeviceTrustAnchorsOptions,
  PARTNER_CAS_FILE,
  CRL_FILE,
  REVOCATIONS_FILE,
} from './trust-anchors.js';
