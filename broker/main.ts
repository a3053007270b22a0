#!/usr/bin/env node
import { EntryBroker } from './broker.js';
import { ConfigError, parseConfig } from './config/config.js';
import { readSettings } from './config/flags.js';

async function main(): Promise<void> {
  let broker: EntryBroker;
  try {
    broker = new EntryBroker(parseConfig(readSettings()));
    await broker.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`entry-broker: ${err.message}\n`);
      process.exit(2);
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`entry-broker: cannot start: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    broker.log.info('draining', { signal, sessions: broker.sessionCount });
    const timer = setTimeout(() => process.exit(1), broker.config.limits.drainTimeoutMs);
    timer.unref();
    void broker.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP reloads the TLS certificate and key (also reloaded when the files change).
  process.on('SIGHUP', () => broker.reloadTls());
}

void main();
