// The incident lifecycle as a pure state machine: open → acknowledged → resolved (or open →
// resolved). Resolution is automatic (the condition cleared); acknowledging only says someone is on
// it. A resolved incident is final: the condition coming back opens a NEW incident.
import type { Condition } from './rules.js';

export type IncidentStatus = 'open' | 'acknowledged' | 'resolved';
export type IncidentEvent = 'incident.opened' | 'incident.acknowledged' | 'incident.resolved';

/** What to do with (rule, device) given the current unresolved incident (if any) and the condition. */
export type Step = { do: 'open' } | { do: 'resolve'; id: string } | { do: 'none' };

export function step(current: { id: string; status: IncidentStatus } | undefined, c: Condition): Step {
  if (c.state === 'unknown') return { do: 'none' };
  if (!current || current.status === 'resolved') return c.state === 'on' ? { do: 'open' } : { do: 'none' };
  return c.state === 'off' ? { do: 'resolve', id: current.id } : { do: 'none' };
}

/** Acknowledge: only an open incident; an acknowledged one stays as is (idempotent); resolved refuses. */
export function acknowledge(status: IncidentStatus): 'acknowledge' | 'already' | 'resolved' {
  if (status === 'open') return 'acknowledge';
  return status === 'acknowledged' ? 'already' : 'resolved';
}

export const EVENT_WORD: Record<IncidentEvent, string> = {
  'incident.opened': 'OPENED',
  'incident.acknowledged': 'ACKNOWLEDGED',
  'incident.resolved': 'RESOLVED',
};
