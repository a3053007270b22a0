/** The Entry client API: run commands in containers through a broker. */
export { run, spawn, exitCodeOf, type ExecOptions, type SpawnOptions, type RunOptions, type RunResult, type RemoteProcess } from './api.js';
export { ClientError } from './protocol/client-error.js';
export { ExecConnection, type ConnectOptions, type ExecConnectionEvents, type ReconnectStatus, type SessionEnd, type Target } from './protocol/connection.js';
