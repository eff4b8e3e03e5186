// STUB (issue 13, owner H-auth): the console session behind a request's cookie. See SPEC.
import type { FastifyRequest } from 'fastify';
import type { ResolvedOptions } from '../service/app.js';
import type { ConsoleUser } from '../service/principal.js';

/** The signed-in console user of this request (valid, unexpired, unrevoked session), if any. */
export async function consoleUserFor(
  _req: FastifyRequest,
  _opts: ResolvedOptions,
): Promise<ConsoleUser | undefined> {
  return undefined;
}
