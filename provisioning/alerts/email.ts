// Alert e-mail over SMTP (nodemailer). Plain text only: the incident's room, site, rule and times,
// and a link to the console's incident list. Nothing from a device goes into a header except the
// summary, stripped of line breaks (no header injection).
import nodemailer, { type TransportOptions, type Transporter } from 'nodemailer';
import type { Incident } from '../store/alerts-store.js';
import { EVENT_WORD, type IncidentEvent } from './incidents.js';

export const DEFAULT_MAIL_FROM = 'Sealroom alerts <alerts@sealroom.invalid>';

export interface Mailer {
  send(to: string, event: IncidentEvent, incident: Incident): Promise<void>;
  close(): void;
}

const oneLine = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();

export function mailSubject(event: IncidentEvent, incident: Pick<Incident, 'summary'>): string {
  return `[Sealroom] ${EVENT_WORD[event]}: ${oneLine(String(incident.summary)).slice(0, 200)}`;
}

export function mailBody(event: IncidentEvent, i: Incident, publicUrl: string): string {
  const line = (label: string, v: unknown) =>
    `${`${label}:`.padEnd(14)}${v === null || v === undefined ? '-' : oneLine(String(v))}`;
  return [
    `Incident ${EVENT_WORD[event].toLowerCase()}: ${oneLine(String(i.summary))}`,
    '',
    line('Room', i.roomName),
    line('Site', i.site),
    line('Device', i.deviceId),
    line('Rule', i.rule),
    line('Status', i.status),
    line('Opened', i.openedAt),
    line('Acknowledged', i.acknowledgedAt ? `${i.acknowledgedAt} by ${i.acknowledgedBy ?? '?'}` : null),
    line('Resolved', i.resolvedAt),
    line('Incident', i.id),
    '',
    `Console: ${publicUrl}/console/#/incidents`,
    '',
  ].join('\n');
}

/** A mailer over `smtpUrl` (smtp:// or smtps://, credentials in the URL if the server needs them). */
export function createMailer(opts: {
  smtpUrl: string;
  from: string;
  publicUrl: string;
  timeoutMs: number;
}): Mailer {
  const transport: Transporter = nodemailer.createTransport({
    url: opts.smtpUrl,
    connectionTimeout: opts.timeoutMs,
    greetingTimeout: opts.timeoutMs,
    socketTimeout: opts.timeoutMs,
  } as TransportOptions);
  return {
    async send(to, event, incident) {
      await transport.sendMail({
        from: opts.from,
        to,
        subject: mailSubject(event, incident),
        text: mailBody(event, incident, opts.publicUrl),
      });
    },
    close: () => transport.close(),
  };
}
