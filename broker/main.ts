#!/usr/bin/env node
import { EntryBroker } from './broker.js';
import { ConfigError, parseConfig, type RawSettings } from './config/config.js';
import { readSettings, settingSource } from './config/flags.js';
import { PACKAGE_VERSION } from './package-version.js';

/** sysexits.h: an internal software error; systemd's Restart=on-failure and Kubernetes restart on it. */
const EX_SOFTWARE = 70;

async function main(): Promise<void> {
  // Wherever it stands among the options (`entry-broker --log-level debug --version`).
  const options = process.argv.slice(2);
  if (options.slice(0, options.includes('--') ? options.indexOf('--') : undefined).includes('--version')) {
    process.stdout.write(`entry-broker ${PACKAGE_VERSION}\n`);
    return;
  }
  let broker: EntryBroker;
  let raw: RawSettings | undefined;
  try {
    raw = readSettings();
    broker = new EntryBroker(parseConfig(raw));
    // SIGHUP's default ends the process: one sent while the broker starts (a reload by a
    // deploy tool) is heard instead. The certificate is read as the listener opens anyway.
    const b = broker;
    process.on('SIGHUP', () => b.reloadTls());
    await broker.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      // Named as given: a bad ENTRY_PING_INTERVAL is not found by looking for --ping-interval.
      const given = raw && err.setting.startsWith('--') ? settingSource(raw, err.setting.slice(2)) : undefined;
      process.stderr.write(`entry-broker: ${(given ? err.as(given) : err).message}\n`);
      process.exit(2);
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`entry-broker: cannot start: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}\n`);
    process.exit(1);
  }
  let stopping = false;
  let exiting = false;
  // Before the drain is done: the clients still connected are told, then the process exits.
  const exitNow = (code: number) => {
    if (exiting) return;
    exiting = true;
    void broker.abandon().finally(() => process.exit(code));
  };
  const stop = (signal: string, exitCode = 0) => {
    if (stopping) {
      // Asked again (Ctrl-C twice): exit now; what the drain had not ended is the ledger's.
      if (signal === 'SIGINT' || signal === 'SIGTERM') {
        broker.log.warn('drain cut short by a second signal', { signal, sessions: broker.sessionCount });
        exitNow(1);
      }
      return;
    }
    stopping = true;
    broker.log.info('draining', { signal, sessions: broker.sessionCount });
    const timer = setTimeout(() => {
      // Out of time: sessions still open make it a failed stop; an idle broker's is not.
      const open = broker.sessionCount;
      if (open > 0) broker.log.warn('drain timed out: exiting with sessions open', { sessions: open, drainTimeoutMs: broker.config.limits.drainTimeoutMs });
      exitNow(open > 0 ? exitCode || 1 : exitCode);
    }, broker.config.limits.drainTimeoutMs);
    timer.unref();
    void broker.stop().then(() => process.exit(exitCode));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Faults inside a request, an upgrade or a socket handler are caught at their own boundary.
  // What reaches the process is outside all of them:
  // - an unhandled rejection is a promise chain nobody awaited (a background write, a timer's
  //   task); the code that started it has moved on and left nothing half-done, so the broker
  //   logs it and keeps serving rather than ending every session over one lost promise;
  // - an uncaught exception stopped synchronous code at an unknown point, so the broker's state
  //   can no longer be trusted: it logs it, drains (every client gets a CLOSE reason and every
  //   session's processes are ended) and exits with EX_SOFTWARE (70) for the supervisor to restart.
  process.on('unhandledRejection', (reason) => broker.fault('process', reason, { kind: 'unhandledRejection' }));
  process.on('uncaughtException', (err) => {
    broker.fault('process', err, { kind: 'uncaughtException', action: 'draining, then exit 70' });
    stop('uncaughtException', EX_SOFTWARE);
  });
  // SIGHUP reloads the TLS certificate and key (also reloaded when the files change): heard
  // from the start, above.
}

void main();
