import { ClientError } from './client-error.js';

/** A code from the broker's registry (broker/errors.ts), not a proxy's word for its status. */
const REGISTRY_CODE = /^ENTRY_[A-Z0-9_]+$/;

/**
 * The broker's reason in the JSON body of an error answer (`{error, message}`, see
 * broker/http/raw-answer.ts), for an API call and a refused upgrade alike; undefined when the
 * body is not the broker's (a proxy's page, or a proxy's JSON whose `error` is no registry code),
 * for the caller to name the status instead.
 */
export function refusalFromBody(text: string, status: number | undefined): ClientError | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const { error, message } = body as { error?: unknown; message?: unknown };
  if (typeof error !== 'string' || !REGISTRY_CODE.test(error)) return undefined;
  return new ClientError(error, typeof message === 'string' && message !== '' ? message : `broker answered HTTP ${status}: ${error}`, status);
}
