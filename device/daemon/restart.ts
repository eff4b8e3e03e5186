// IT's "restart the daemon" action (device/enrollment/actions.ts reports it done first). Under
// systemd the daemon exits with RESTART_EXIT_CODE and the unit (Restart=always) starts it again.
// Where nothing would start it again (a terminal, `sealroom demo`, whose parent does not respawn its
// parts) every part is stopped and started again in this process, on the same control port, so the
// room screen's page reconnects to the fresh daemon.
import type { Logger } from '../../src/util/log.js';

/**
 * Exit status of a restart IT asked for (EX_TEMPFAIL): the unit's Restart=always starts the daemon
 * again, and the journal tells it apart from a crash (1) or a stop (0).
 */
export const RESTART_EXIT_CODE = 75;

/**
 * How a requested restart happens: 'exit' when systemd runs the daemon as sealroom-daemon.service
 * (Type=notify: $INVOCATION_ID and $NOTIFY_SOCKET are both set; a terminal inside a user unit has the
 * first only) or $SEALROOM_RESTART=exit; 'in-process' otherwise or with $SEALROOM_RESTART=in-process.
 */
export function restartMode(env: NodeJS.ProcessEnv = process.env): 'exit' | 'in-process' {
  if (env.SEALROOM_RESTART === 'exit' || env.SEALROOM_RESTART === 'in-process') return env.SEALROOM_RESTART;
  return env.INVOCATION_ID && env.NOTIFY_SOCKET ? 'exit' : 'in-process';
}

export interface RestarterOptions {
  mode: 'exit' | 'in-process';
  /** The running daemon: its control URL (the port is kept) and how to stop all of its parts. */
  current(): { controlUrl: string; stop(): Promise<void> };
  /** Starts every part again on this control port. */
  boot(controlPort: number): Promise<void>;
  /** Graceful stop of the whole process with this exit status. */
  exit(code: number): Promise<void> | void;
  log: Logger;
}

/** Returns the restart function; calls while one runs are ignored. */
export function createRestarter(o: RestarterOptions): () => Promise<void> {
  let running = false;
  return async () => {
    if (running) return;
    running = true;
    try {
      if (o.mode === 'exit') {
        o.log.info({ code: RESTART_EXIT_CODE }, 'restart requested by IT: exiting for the service manager');
        await o.exit(RESTART_EXIT_CODE);
        return;
      }
      const cur = o.current();
      const port = Number(new URL(cur.controlUrl).port);
      await cur.stop();
      await o.boot(port);
      o.log.info({ port }, 'daemon restarted in-process');
    } catch (err) {
      // Half-stopped parts are worse than a clean exit: let whatever runs us (or the user) start it.
      o.log.error({ err: (err as Error).message }, 'in-process restart failed: exiting');
      await o.exit(RESTART_EXIT_CODE);
    } finally {
      running = false;
    }
  };
}
