// One structured logger for every process (pino). Technicians read it with `| npx pino-pretty` or as
// JSON lines in the journal. Secrets never go into log fields: callers log ids, not keys or tokens.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.SEALROOM_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['*.token', '*.secret', '*.privateKey', '*.key', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  });
}

/** A logger that drops everything: for tests and library code used without a process. */
export const silentLogger: Logger = pino({ level: 'silent' });
