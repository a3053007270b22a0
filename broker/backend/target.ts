import { EntryError } from '../errors.js';
import type { HostAnswer, ResolvedTarget, Target } from './backend.js';

const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** A pod name (DNS subdomain) as an instance: `web-7d4b9c-x2x9q`. */
const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** An instance number: at most six digits, as the text form (`/^\d{1,6}$/`) allows. */
const MAX_INSTANCE_NUMBER = 999_999;

/**
 * Validates target names before they go anywhere near a label filter or an API path. The
 * instance is a number (`1`, or a StatefulSet ordinal `0`), or a pod's own name for pods
 * without an ordinal (a Deployment's). Where JSON carries it (a ticket's body, web mode's first
 * message) it may be a JSON number, which must then be a whole instance number: `1.5` or `1e7`
 * written as text would pass for a pod name, and no target has them.
 */
export function validateTarget(app: unknown, proc: unknown, given: unknown): Target {
  const instance = typeof given === 'number' && Number.isInteger(given) && given >= 0 && given <= MAX_INSTANCE_NUMBER ? String(given) : given;
  for (const [label, value] of [['app', app], ['proc', proc]] as const) {
    if (typeof value !== 'string' || !NAME_PART.test(value)) {
      throw new EntryError('ENTRY_BAD_REQUEST', `${label} name missing or invalid: ${echo(value)}`);
    }
  }
  if (typeof instance !== 'string' || !(/^\d{1,6}$/.test(instance) || INSTANCE_NAME.test(instance))) {
    throw new EntryError('ENTRY_BAD_REQUEST', `instance must be a number or a pod name, got ${echo(instance)}`);
  }
  return { app: app as string, proc: proc as string, instance: /^\d+$/.test(instance) ? String(Number(instance)) : instance };
}

/** A rejected value as told back: enough to recognise it, never the whole of a huge one. */
function echo(value: unknown): string {
  const text = JSON.stringify(value ?? '') ?? '';
  return text.length > 80 ? `${text.slice(0, 64)}… (${text.length} characters)` : text;
}

export function targetName(t: Target): string {
  return `${t.app}/${t.proc}/${t.instance}`;
}

/**
 * The one running target among every host's answer. More than one running is ambiguous (named
 * with their hosts when there are several); none running but some unreachable host is
 * "unavailable", not "not found", since it may be there.
 */
export function decide(target: Target, answers: readonly HostAnswer[]): ResolvedTarget {
  const name = targetName(target);
  // A candidate whose own labels name another app is never this target, whatever matched it.
  const all = answers.flatMap((a) => (a.ok ? a.found : [])).filter((c) => c.app === undefined || c.app === target.app);
  const unreachable = answers.filter((a): a is Extract<HostAnswer, { ok: false }> => !a.ok);
  const running = all.filter((c) => c.state === 'running');
  if (running.length > 1) {
    const where = running.map((c) => {
      const name = c.namespace ? `${c.namespace}/${c.name}` : c.name;
      return answers.length > 1 ? `${name} on ${c.host}` : name;
    });
    throw new EntryError('ENTRY_AMBIGUOUS', `${name} matches ${where.join(', ')}`);
  }
  if (running.length === 1) return running[0]!;
  if (unreachable.length > 0) {
    // It may well be on the host we cannot ask: say so instead of "not found".
    const first = unreachable[0]!;
    if (first.error && unreachable.length === 1 && all.length === 0) throw first.error;
    // One code when every unreachable host is of one kind; Docker's, the older, when mixed.
    const code = unreachable.every((u) => u.unreachable === first.unreachable) ? first.unreachable : 'ENTRY_DOCKER_UNAVAILABLE';
    throw new EntryError(code, `${unreachable.map((u) => u.label).join(', ')} unreachable (${first.why})`);
  }
  if (all.length === 0) throw new EntryError('ENTRY_NOT_FOUND', name);
  const first = all[0]!;
  throw new EntryError('ENTRY_NOT_RUNNING', `${name} is ${first.state} (${first.name})${first.downReason ? `: ${first.downReason}` : ''}`);
}
