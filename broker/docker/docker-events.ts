import type { Readable } from 'node:stream';

/** A container as the index keeps it: what resolution and the container list need. */
export interface IndexedContainer {
  id: string;
  /** Without the leading slash. */
  name: string;
  image: string;
  /** Docker's state word: created, running, paused, restarting, exited, dead. */
  state: string;
  labels: Record<string, string>;
  /** Creation time, seconds since the epoch. */
  created: number;
}

/** One container event from `GET /events`, as far as the index cares. */
export interface ContainerEvent {
  id: string;
  action: string;
  attributes: Record<string, string>;
  /** Seconds since the epoch. */
  time: number;
}

/** Event attributes that are not labels (Docker merges labels and these into one map). */
const NON_LABEL_ATTRIBUTES = new Set(['name', 'image', 'exitCode', 'signal', 'oldName', 'execID', 'execDuration']);

/** The state a container is in after an event, or undefined when the event does not change it. */
const STATE_AFTER: Record<string, string> = {
  create: 'created',
  start: 'running',
  restart: 'running',
  unpause: 'running',
  pause: 'paused',
  die: 'exited',
};

/**
 * Events that say nothing about a container's identity or state: the index skips them without
 * looking further (exec events come with every session, health checks every few seconds).
 */
const IGNORED = /^(exec_|health_status|top|attach|detach|resize|commit|copy|export|archive-path|extract-to-dir|kill|stop|oom)/;

export function eventLabels(attributes: Record<string, string>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) if (!NON_LABEL_ATTRIBUTES.has(k)) labels[k] = v;
  return labels;
}

/** Whether an event can change the index at all (exec_*, health_status and the like cannot). */
export function eventMatters(event: ContainerEvent): boolean {
  return event.action === 'destroy' || !IGNORED.test(event.action);
}

/**
 * What an event does to the index: remove the container, update it, or nothing. `previous` is
 * the indexed record, if any; labels come from the event itself, so label changes follow.
 */
export function applyEvent(event: ContainerEvent, previous: IndexedContainer | undefined): { remove: true } | { update: IndexedContainer } | undefined {
  if (event.action === 'destroy') return previous ? { remove: true } : undefined;
  if (!eventMatters(event)) return undefined;
  const attrs = event.attributes;
  const state = STATE_AFTER[event.action] ?? previous?.state;
  if (!state) return undefined;
  return {
    update: {
      id: event.id,
      name: attrs['name'] ?? previous?.name ?? event.id.slice(0, 12),
      image: attrs['image'] ?? previous?.image ?? '',
      state,
      labels: eventLabels(attrs),
      created: previous?.created ?? event.time,
    },
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One line of the events stream as a container event; undefined for another type of event, and
 * a reason for a line that is not a well-formed event (the engine, or whatever answers on its
 * socket, sent something else): such a line is skipped, never trusted.
 */
export function parseEventLine(line: string): ContainerEvent | undefined | { skip: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { skip: 'not JSON' };
  }
  if (!isRecord(raw)) return { skip: 'not an object' };
  const type = raw['Type'] ?? 'container';
  if (type !== 'container') return undefined;
  const actor = isRecord(raw['Actor']) ? raw['Actor'] : {};
  const id = actor['ID'] ?? raw['id'];
  const action = raw['Action'] ?? raw['status'];
  if (typeof id !== 'string' || id === '' || typeof action !== 'string' || action === '') return { skip: 'no id or action' };
  const attributes: Record<string, string> = {};
  if (isRecord(actor['Attributes'])) for (const [k, v] of Object.entries(actor['Attributes'])) if (typeof v === 'string') attributes[k] = v;
  const time = typeof raw['time'] === 'number' && Number.isFinite(raw['time']) ? raw['time'] : Math.floor(Date.now() / 1000);
  return { id, action, attributes, time };
}

/**
 * Parses the newline-delimited JSON of an events stream, container events only. Lines that are
 * not well-formed events are skipped: counted in `skipped`, and told to `onSkip` (a debug log).
 */
export function readEvents(stream: Readable, onEvent: (e: ContainerEvent) => void, onSkip?: (why: string, line: string) => void): { skipped: number } {
  const counts = { skipped: 0 };
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const parsed = parseEventLine(line);
      if (parsed === undefined) continue;
      if ('skip' in parsed) {
        counts.skipped++;
        onSkip?.(parsed.skip, line.slice(0, 200));
        continue;
      }
      onEvent(parsed);
    }
  });
  return counts;
}
