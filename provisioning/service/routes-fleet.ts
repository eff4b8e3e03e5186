// STUB (issue 13, owner H-fleet): fleet status, health history, sites and profiles, remote actions.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TokenScope } from '../store/store.js';
import type { ResolvedOptions } from './app.js';

type AuthFor = (scope: TokenScope) => (req: FastifyRequest) => Promise<void>;
type Hook = (req: FastifyRequest) => Promise<void>;

export function registerFleetRoutes(
  _v1: FastifyInstance,
  _opts: ResolvedOptions,
  _auth: AuthFor,
  _deviceAuth: Hook,
): void {}
