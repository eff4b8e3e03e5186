// Logs a technician can read at a terminal: `17:42:01.123 INFO  relay: device authenticated
// deviceId=sr-… roomName="Huddle 2"`. JSON (one object per line, for the journal) with --log-json.
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w.:/@+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  if (v instanceof Object && 'message' in v && typeof v.message === 'string')
    return JSON.stringify(v.message);
  return JSON.stringify(v);
}

export function formatLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toISOString().slice(11, 23);
  const level = LEVELS[entry.level as number] ?? String(entry.level);
  const fields = Object.entries(entry)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
  return `${time} ${level} ${String(entry.name ?? '')}: ${String(entry.msg ?? '')}${fields ? ` ${fields}` : ''}`;
}

/** A pino logger for command-line processes: readable lines on stderr, or JSON lines with json=true. */
export function cliLogger(name: string, opts: { json?: boolean; level?: string } = {}): Logger {
  const level = opts.level ?? process.env.SEALROOM_LOG_LEVEL ?? 'info';
  const redact = {
    paths: ['*.token', '*.secret', '*.privateKey', '*.key', 'authorization', '*.authorization'],
    censor: '[redacted]',
  };
  if (opts.json) return pino({ name, level, redact }, process.stderr);
  let pending = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        process.stderr.write(`${formatLogLine(pending.slice(0, nl))}\n`);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
      done();
    },
  });
  return pino({ name, level, redact, base: {} }, stream);
}
