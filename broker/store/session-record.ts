/** What every view of a session starts with: which session, whose, from where, into what. */
export interface SessionSubject {
  id: string;
  user: string;
  /** The client's address. */
  source: string;
  app: string;
  proc: string;
  instance: string;
  /** Container id or pod uid. */
  container: string;
}

/**
 * A live session as the registry shows it, and as `GET /api/sessions` answers it. Types only,
 * no Node: the web console and the CLI read the same shape.
 */
export interface SessionRecord extends SessionSubject {
  /** The Docker host or Kubernetes cluster (the name keeps its first meaning for old readers). */
  dockerHost: string;
  broker: string;
  /** How the other brokers reach the holding broker (--advertise-url), to hand it a resume. */
  brokerUrl?: string;
  startedAt: string;
  bytesIn: number;
  bytesOut: number;
  /** The scripted command; null for an interactive shell (or an attach). */
  command: string[] | null;
  tty: boolean;
  /** A read-only /attach to the container's own output, not a process of its own. */
  attach?: boolean;
}
