// STUB (issue 13, owner H-alerts): alert rules, incidents (pollable), targets, deliveries.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TokenScope } from '../store/store.js';
import type { ResolvedOptions } from './app.js';

type AuthFor = (scope: TokenScope) => (req: FastifyRequest) => Promise<void>;

export function registerAlertRoutes(_v1: FastifyInstance, _opts: ResolvedOptions, _auth: AuthFor): void {}
