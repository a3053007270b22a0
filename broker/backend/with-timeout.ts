/**
 * `work`, or a failure once `ms` have passed without an answer: an ETIMEDOUT error naming
 * `what`, or the error `failure` makes when the time is up (it may say what was under way then).
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof what === 'string' ? Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' }) : what()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
