/** A failure on the way to the process (connection, auth, lookup): not the process's exit code. */
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The HTTP status of a plain answer (a refused upgrade, a proxy's page), when there was one. */
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
