import { EntryError } from '../errors.js';
import type { Identity } from './identity.js';

/** Compiles an app pattern (`*`, `?` wildcards; everything else literal) to a matcher. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function appMatches(patterns: readonly string[], app: string): boolean {
  return patterns.some((p) => p === app || (/[*?]/.test(p) && globToRegExp(p).test(app)));
}

/** Decides whether an identity may enter an app. Throws EntryError (403) when not. */
export class AccessPolicy {
  constructor(private readonly denyApps: readonly string[]) {}

  check(identity: Identity, app: string): void {
    // The deny list wins over everything, admins included: the broker's own containers hold
    // the signing secrets and the Docker socket.
    if (appMatches(this.denyApps, app)) throw new EntryError('ENTRY_APP_DENIED', app);
    if (identity.admin) return;
    if (!appMatches(identity.apps, app)) {
      throw new EntryError('ENTRY_FORBIDDEN', `user ${identity.user} has no grant for app ${app}`);
    }
  }

  /** Whether listing may show this app to the identity (same rule, no throw). */
  allows(identity: Identity, app: string): boolean {
    try {
      this.check(identity, app);
      return true;
    } catch {
      return false;
    }
  }
}
