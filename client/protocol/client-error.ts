/** A failure on the way to the process (connection, auth, lookup): not the process's exit code. */
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
