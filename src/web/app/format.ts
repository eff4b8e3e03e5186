// Pure formatting shared by the screens: the security code as the rooms show it, people's labels, times.

// The code is grouped and laid out exactly as the room screen does it, so people compare like with like.
export { codeRows, securityCodeGroups } from '../../../kiosk-ui/src/format.js';

export interface Labelled {
  kind: 'room' | 'person';
  name: string;
  email: string;
  org: string;
}

/** `Alice Smith · alice@example.org · Example Corp · signed in`, or `Huddle 2 · Example Corp` for rooms. */
export function participantLine(p: Labelled): string {
  return p.kind === 'person'
    ? [p.name, p.email, p.org, 'signed in'].filter(Boolean).join(' · ')
    : [p.name, p.org].filter(Boolean).join(' · ');
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
