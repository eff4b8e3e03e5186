// Shapes of the service's JSON (SPEC "Fixed HTTP contract"); the pages only read these fields.
// Where the store already names a shape the API sends as is, it is imported as a type only
// (erased by esbuild: no server code reaches the bundle).
import type {
  ActionKind,
  ActionRecord,
  FleetSummary,
  HealthSample,
  PeripheralKind,
  PeripheralView,
} from '../../store/fleet-store.js';
import type { AuditEntry, DeviceStatus } from '../../store/store.js';
import type {
  RolloutSummary,
  StoredUpdateState,
  UpdatePolicy,
  UpdatePolicyChange,
} from '../../store/update-store.js';

export type { ActionKind, AuditEntry, DeviceStatus, FleetSummary, HealthSample, PeripheralKind };
export type Peripheral = PeripheralView;

export interface DeviceSummary {
  id: string;
  status: DeviceStatus;
  roomName: string | null;
  site: string | null;
  softwareVersion: string;
  lastSeenAt: string | null;
  certSerial: string | null;
  certNotAfter: string | null;
  createdAt: string;
  online: boolean;
  inMeeting: boolean;
  meetingState: string | null;
  configVersion: number;
  reportedConfigVersion: number | null;
  configPending: boolean;
  openIncidents: number;
}

export interface DeviceList {
  total: number;
  items: DeviceSummary[];
  nextCursor: string | null;
}

export interface DeviceDetail extends DeviceSummary {
  policy: string | null;
  inventory: Record<string, unknown>;
  config: Record<string, unknown>;
  claimedAt: string | null;
  claimedBy: string | null;
  revokedAt: string | null;
  health: Record<string, unknown> | null;
  peripherals?: Peripheral[];
  certificate?: { serial: string; notBefore: string; notAfter: string; daysLeft: number } | null;
  configOverride?: Record<string, unknown> | null;
  profileVersion?: number | null;
  selfTest?: { ok: boolean; failed: string[]; at: string } | null;
  /** Absent from services older than issue 14. */
  update?: DeviceUpdate;
}

/** The device's update card: what IT assigned (effective config) and what it last reported. */
export interface DeviceUpdate extends UpdatePolicy {
  channelPending: boolean;
  reported: StoredUpdateState | null;
}

export type Rollout = RolloutSummary;
export type { UpdatePolicy, UpdatePolicyChange };

/** The store keeps any kind a newer service may have queued; the pages know these three. */
export interface DeviceAction extends Omit<ActionRecord, 'kind'> {
  kind: ActionKind;
}
