// STUB (issue 13, owner H-auth): /console/ (the built UI), /console/auth/*, /console/api/me, /claim.
import type { FastifyInstance } from 'fastify';
import type { ResolvedOptions, ServiceOptions } from '../service/app.js';

export async function registerConsole(
  _app: FastifyInstance,
  _options: ServiceOptions,
  _opts: ResolvedOptions,
): Promise<void> {}
