/**
 * A live session as the registry shows it, and as `GET /api/sessions` answers it. Types only,
 * no Node: the web console and the CLI read the same shape.
 */
export interface SessionRecord {
  id: string;
  user: string;
  source: string;
  app: string;
  proc: string;
  instance: string;
  container: string;
  dockerHost: string;
  broker: string;
  /** How the other brokers reach the holding broker (--advertise-url), to hand it a resume. */
  brokerUrl?: string;
  startedAt: string;
  bytesIn: number;
  bytesOut: number;
  /** The scripted command; null for an interactive shell. */
  command: string[] | null;
  tty: boolean;
}
