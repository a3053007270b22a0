import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type BrokerConfig, parseConfig } from '../../broker/config/config.js';
import { OPTIONS } from '../../broker/config/flags.js';
import { SETTINGS, type SettingName, findSettingsTable, plainText, settingsTable } from '../../broker/config/settings.js';

/** Where parseConfig puts each numeric and boolean setting. */
const READ: Partial<Record<SettingName, (c: BrokerConfig) => number | boolean>> = {
  'clock-tolerance': (c) => c.auth.clockToleranceSec,
  'ping-interval': (c) => c.limits.pingIntervalMs,
  'peer-timeout': (c) => c.limits.peerTimeoutMs,
  'stall-timeout': (c) => c.limits.stallTimeoutMs,
  'tcp-keepalive': (c) => c.limits.tcpKeepAliveMs,
  'resume-grace': (c) => c.limits.resumeGraceMs,
  'max-frame': (c) => c.limits.maxFrameBytes,
  'start-timeout': (c) => c.limits.startTimeoutMs,
  'open-timeout': (c) => c.limits.openTimeoutMs,
  'idle-timeout': (c) => c.limits.idleTimeoutMs,
  'max-session': (c) => c.limits.maxSessionMs,
  'max-sessions': (c) => c.limits.maxSessions,
  'body-timeout': (c) => c.limits.bodyTimeoutMs,
  'handshake-timeout': (c) => c.limits.handshakeTimeoutMs,
  'kill-grace': (c) => c.limits.killGraceMs,
  'drain-timeout': (c) => c.limits.drainTimeoutMs,
  'session-ttl': (c) => c.limits.sessionTtlMs,
  'max-user-sessions': (c) => c.limits.maxUserSessions,
  'auth-failure-limit': (c) => c.limits.authFailureLimit,
  'auth-failure-window': (c) => c.limits.authFailureWindowMs,
  'redis-cluster': (c) => c.redis.cluster,
  'recording-max-bytes': (c) => c.audit.recordingMaxBytes,
  'recording-retention-days': (c) => c.audit.retentionDays,
  'audit-max-events': (c) => c.audit.maxEvents,
  'record-input': (c) => c.audit.recordInput,
  'watch-banner': (c) => c.audit.watchBanner,
  'log-backlog': (c) => c.logBacklogBytes,
  dev: (c) => c.dev,
};

describe('the README broker options table', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const place = findSettingsTable(readme);
  const table = place ? readme.slice(place.start, place.end).trimEnd() : '';
  const rows = table
    .split('\n')
    .slice(2)
    .map((line) => line.split(/(?<!\\)\|/).map((c) => c.trim()))
    .map(([, flag, shown]) => ({ name: /^`--([a-z-]+)/.exec(flag ?? '')?.[1] ?? flag ?? '', shown: shown ?? '' }));

  it('is the table rendered from broker/config/settings.ts (node dist/broker/config/print-settings.js --readme README.md)', () => {
    expect(table).toBe(settingsTable());
  });

  it('has exactly one row for every broker option, and none for anything else', () => {
    const names = rows.map((r) => r.name);
    expect([...names].sort()).toEqual(Object.keys(OPTIONS).sort());
    expect(new Set(names).size).toBe(names.length);
  });

  it('shows each option the default --help shows', () => {
    for (const { name, shown } of rows) {
      const option = OPTIONS[name] as { defaultDescription?: string } | undefined;
      expect(option?.defaultDescription, name).toBe(shown === '' ? undefined : plainText(shown.replace(/\\\|/g, '|')));
    }
  });

  it('shows, for every number and switch, the default parseConfig fills in', () => {
    const config = parseConfig({ 'jwt-public-key': '/k.pem' });
    const typed = Object.entries(SETTINGS).filter(([, s]) => s.type !== 'string');
    for (const [name] of typed) {
      const read = READ[name as SettingName];
      expect(read, `${name}: say where parseConfig puts it`).toBeDefined();
      const shown = rows.find((r) => r.name === name)?.shown;
      const value = shown === 'on' ? true : shown === 'off' ? false : Number(/^`(\d+)`$/.exec(shown ?? '')?.[1]);
      expect(read!(config), name).toBe(value);
    }
  });
});
