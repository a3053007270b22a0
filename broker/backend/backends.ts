import { EntryError } from '../errors.js';
import { placeKey } from '../ledger/session-ledger.js';
import type { Backend, LeftoverPlace, ResolvedTarget, Target, TargetInfo } from './backend.js';
import { decide } from './target.js';

/**
 * Every backend the broker serves, asked together: a target is looked up on all of them, and a
 * name found on two (two Docker hosts, or a host and a cluster) is an ambiguity, not a guess.
 */
export class Backends {
  constructor(readonly all: readonly Backend[]) {}

  async start(): Promise<void> {
    await Promise.all(this.all.map((b) => b.start()));
  }

  stop(): void {
    for (const b of this.all) b.stop();
  }

  async resolve(target: Target): Promise<ResolvedTarget> {
    const answers = (await Promise.all(this.all.map((b) => b.find(target)))).flat();
    return decide(target, answers);
  }

  /** Every target on every backend that answers; rejects only when none does. */
  async list(): Promise<TargetInfo[]> {
    const results = await Promise.allSettled(this.all.map((b) => b.list()));
    if (results.length > 0 && results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
    const out = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    return out.sort(
      (a, b) =>
        a.app.localeCompare(b.app) ||
        a.proc.localeCompare(b.proc) ||
        (Number(a.instance) - Number(b.instance) || a.instance.localeCompare(b.instance)) ||
        a.backend.localeCompare(b.backend) ||
        a.host.localeCompare(b.host),
    );
  }

  /** Ends a session's leftover processes through the backend holding `place`'s host or cluster. */
  endLeftovers(place: LeftoverPlace, session: string, graceMs: number): Promise<boolean> {
    const owner = this.all.find((b) => b.kind === place.backend && Object.hasOwn(b.status(), place.host));
    if (!owner) return Promise.reject(new EntryError('ENTRY_NOT_FOUND', `no ${place.backend} host or cluster named ${JSON.stringify(place.host)} is configured`));
    return owner.endLeftovers(place, session, graceMs);
  }

  /** Every host and cluster this broker has, as a claim of the ledger names them (placeKey). */
  places(): string[] {
    return this.all.flatMap((b) => Object.keys(b.status()).map((host) => placeKey(b.kind, host)));
  }

  hostGauges(): Array<{ backend: string; name: string; up: boolean; containers: number }> {
    return this.all.flatMap((b) => b.gauges().map((g) => ({ backend: b.kind, ...g })));
  }

  /** Per backend kind: whether at least one of its hosts or clusters is reachable. */
  kinds(): Record<string, boolean> {
    return Object.fromEntries(this.all.map((b) => [b.kind, Object.values(b.status()).some(Boolean)]));
  }

  /** Reachability of every host and cluster, by name. */
  status(): Record<string, boolean> {
    return Object.assign({}, ...this.all.map((b) => b.status())) as Record<string, boolean>;
  }
}
