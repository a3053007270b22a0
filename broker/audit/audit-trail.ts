import { randomUUID } from 'node:crypto';
import { isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import { maskArgv, maskCredentials } from '../mask.js';
import { AuditWriter } from './audit-writer.js';
import type { Refusal, SessionInfo, SessionObserver, SessionTap } from '../session/observer.js';
import type { OutputStream } from '../session/types.js';
import type { Store } from '../store/store.js';
import { CommandLineTracker } from './command-line.js';
import { PromptWatch } from './secret-prompt.js';
import type { AuditEvent } from './events.js';

export interface AuditOptions {
  brokerId: string;
  /** Cap of the stored trail (Redis stream MAXLEN, or the in-memory ring). */
  maxEvents: number;
  /** Command lines matching any of these raise an `alert` event. */
  alertRules: RegExp[];
}

type Fields = Omit<AuditEvent, 'id' | 'time' | 'broker'>;

/**
 * Most characters of a scripted run's command kept in its `exec` event, as for a typed line: the
 * trail is capped by count (Redis) and by size (memory), so one user's 4 MiB command lines must not
 * push everyone else's events out.
 */
export const MAX_AUDIT_ARGV_CHARS = 4096;

/**
 * The command as stored: its arguments in order, cut once MAX_AUDIT_ARGV_CHARS are taken. Each
 * argument costs one more for its place in the list, so that empty ones are not free.
 */
function auditedArgv(argv: readonly string[]): { argv: string[]; truncated: boolean } {
  const kept: string[] = [];
  let left = MAX_AUDIT_ARGV_CHARS;
  for (const arg of argv) {
    if (arg.length + 1 > left) {
      if (left > 1) kept.push(arg.slice(0, left - 1));
      return { argv: kept, truncated: true };
    }
    kept.push(arg);
    left -= arg.length + 1;
  }
  return { argv: kept, truncated: false };
}

/**
 * Writes audit events to the log and to the store (a capped Redis stream when Redis is
 * configured), and follows sessions to write theirs: start, exec, commands, alerts, end.
 */
export class AuditTrail implements SessionObserver {
  private readonly writer: AuditWriter;

  constructor(
    store: Store,
    private readonly log: Logger,
    private readonly options: AuditOptions,
  ) {
    this.writer = new AuditWriter((event) => store.appendAudit(event, options.maxEvents), log);
  }

  record(fields: Fields): void {
    // Stored as the log writes it: a token in a command line (`curl -H "Authorization: Bearer
    // eyJ…"`, `export T=eyJ…`) is masked, not kept for every reader of the trail.
    const event: AuditEvent = { ...maskFields(fields), id: randomUUID(), time: new Date().toISOString(), broker: this.options.brokerId };
    this.log.info('audit', { audit: event.type, ...event, type: undefined });
    // Never fatal: the log line above holds it, and the writer holds it for the store.
    this.writer.add(event);
  }

  /** Events the store has not taken yet. */
  get backlog(): number {
    return this.writer.backlog;
  }

  /** Stores what is held, within a bound (the broker stops). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  started(info: SessionInfo): SessionTap {
    const who = {
      sessionId: info.id,
      user: info.user,
      source: info.source,
      app: info.app,
      proc: info.proc,
      instance: info.instance,
      container: info.container,
      host: info.host,
      ...(info.clientCert ? { clientCert: info.clientCert } : {}),
    };
    this.record({ type: 'session.start', ...who, tty: info.tty });
    if (info.argv) {
      const stored = auditedArgv(info.argv);
      this.record({ type: 'exec', ...who, argv: stored.argv, ...(stored.truncated ? { argvTruncated: true } : {}), runAs: info.runAs, workdir: info.workdir, tty: info.tty });
      // The whole command is matched: padding it past what is stored must not hide it.
      const line = info.argv.join(' ');
      const rule = this.alertRule(line);
      if (rule) this.record({ type: 'alert', ...who, line: line.slice(0, MAX_AUDIT_ARGV_CHARS), exact: true, rule: rule.source });
    }
    const tracker = info.tty ? new CommandLineTracker() : undefined;
    const prompt = tracker ? new PromptWatch() : undefined;
    return {
      ...(tracker && prompt
        ? {
            input: (data: Uint8Array) => {
              prompt.typed();
              for (const { line, exact } of tracker.push(data)) {
                // The prompt is the user's to print (PS1): a hidden line is still held to the rules.
                const hidden = prompt.asksForSecret();
                const text = hidden ? { hidden: true } : { line, exact };
                this.record({ type: 'command', ...who, ...text });
                const rule = this.alertRule(line);
                if (rule) this.record({ type: 'alert', ...who, ...text, rule: rule.source });
              }
            },
            output: (_stream: OutputStream, data: Uint8Array) => prompt.seen(data),
          }
        : {}),
      // One session across connections: the resume is an event of it, `source` and `clientCert` who came back.
      resumed: (r) => this.record({ type: 'session.resumed', ...who, source: r.source, clientCert: r.clientCert, ...(r.via ? { via: r.via } : {}), awayMs: r.awayMs, missedBytes: r.missedBytes }),
      ended: (outcome) => {
        const r = outcome.reason;
        this.record({
          type: 'session.end',
          ...who,
          how: r.kind,
          ...(r.kind === 'exited' ? { exitCode: r.exitCode } : {}),
          ...(r.kind === 'failed' ? { code: r.error.code, reason: r.error.message } : {}),
          durationMs: outcome.durationMs,
          bytesIn: outcome.bytesIn,
          bytesOut: outcome.bytesOut,
        });
      },
    };
  }

  /** The first --alert-rule a command line matches. */
  private alertRule(line: string): RegExp | undefined {
    return this.options.alertRules.find((r) => r.test(line));
  }

  refused(info: Refusal): void {
    this.record({ type: 'session.refused', sessionId: info.id, user: info.user, source: info.source, app: info.app, proc: info.proc, instance: info.instance, code: info.code, reason: info.reason });
  }

  /** An authentication that failed: why, from where, and whom the token claimed to be. */
  authFailure(err: unknown, source: string, claimedUser: string | undefined, target?: { app?: string | undefined }): void {
    const code = isEntryError(err) ? err.code : 'ENTRY_INTERNAL';
    this.record({ type: 'auth.failure', source, code, reason: err instanceof Error ? err.message : String(err), ...(claimedUser ? { claimedUser } : {}), ...(target?.app ? { app: target.app } : {}) });
  }
}

/** The event's strings, and lists of strings (an argv: `--token`, `VALUE` too), with credentials masked. */
function maskFields(fields: Fields): Fields {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = typeof v === 'string' ? maskCredentials(v) : Array.isArray(v) && v.every((x: unknown) => typeof x === 'string') ? maskArgv(v as string[]) : v;
  }
  return out as Fields;
}
