// Pure formatting of the page. The code and people's lines come from the room screen's own formatting
// (kiosk-ui/src/format.ts), so a person reads exactly what the rooms show and compares like with like.
import { identityText } from '../../../kiosk-ui/src/format.js';

export { codeRows, securityCodeGroups } from '../../../kiosk-ui/src/format.js';

export interface Labelled {
  kind: 'room' | 'person';
  name: string;
  email: string;
  org: string;
}

/** `Alice Smith · alice@example.org · Example Corp · signed in`, or `Huddle 2 · Example Corp`: the room screen's line. */
export function participantLine(p: Labelled): string {
  return identityText({ kind: p.kind, roomName: p.name, email: p.email, org: p.org });
}

/** "until 21:14 (in 11 h 58 min)". */
export function expiryText(notAfter: Date, now: Date): string {
  const ms = notAfter.getTime() - now.getTime();
  const hhmm = `${String(notAfter.getHours()).padStart(2, '0')}:${String(notAfter.getMinutes()).padStart(2, '0')}`;
  if (ms <= 0) return `expired at ${hhmm}`;
  const min = Math.floor(ms / 60_000);
  const rel = min >= 60 ? `${Math.floor(min / 60)} h ${min % 60} min` : `${min} min`;
  return `until ${hhmm} (in ${rel})`;
}
