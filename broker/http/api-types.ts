/**
 * What the JSON API answers, as types only (no Node): the CLI and the web console read the
 * broker's own shapes instead of restating them.
 */
export type { TargetInfo as ContainerInfo } from '../backend/backend.js';

/** `GET /api/whoami`. */
export interface WhoAmI {
  user: string;
  apps: string[];
  roles: string[];
  admin: boolean;
  expiresAt: string;
}
