// Shapes of the service's JSON (SPEC "Fixed HTTP contract"); the pages only read these fields.

export type DeviceStatus = 'pending' | 'active' | 'revoked' | 'decommissioned';

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

export interface FleetSummary {
  devices: number;
  online: number;
  offline: number;
  inMeeting: number;
  pending: number;
  openIncidents: number;
  sites: string[];
}

export type PeripheralKind = 'camera' | 'microphone' | 'speaker' | 'display' | 'hid';

export interface Peripheral {
  kind: PeripheralKind;
  state: 'ok' | 'missing' | 'changed' | 'new';
  name: string | null;
  expected: string | null;
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
}

export interface HealthSample {
  at: string;
  loadPercent: number | null;
  temperatureC: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  diskUsedBytes: number | null;
  diskTotalBytes: number | null;
}

export type ActionKind = 'restart' | 'renew-certificate' | 'collect-logs';

export interface DeviceAction {
  id: string;
  deviceId: string;
  kind: ActionKind;
  status: 'queued' | 'sent' | 'done' | 'failed' | 'expired';
  createdAt: string;
  createdBy: string;
  sentAt: string | null;
  finishedAt: string | null;
  result: { message?: string; bundleBytes?: number } | null;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  deviceId: string | null;
  tokenId: string | null;
  details: Record<string, unknown>;
}
