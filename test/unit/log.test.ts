import { describe, expect, it } from 'vitest';
import { createLogger, MAX_LOG_STRING_CHARS, redact } from '../../broker/log.js';
import { EntryError } from '../../broker/errors.js';

/** Shaped like a JWT (made here, so that no token-like string sits in the tree). */
const SECRET = [JSON.stringify({ alg: 'RS256' }), 'secret'].map((part) => Buffer.from(part).toString('base64url')).join('.') + '.c2ln-SECRET-VALUE';

describe('redact', () => {
  it('hides keys that name tokens, tickets, secrets and authorization, in any case', () => {
    const out = redact({
      token: SECRET,
      accessToken: SECRET,
      'access-token': SECRET,
      ticket: SECRET,
      jwtSecret: SECRET,
      Authorization: SECRET,
      password: SECRET,
      cookie: SECRET,
    });
    for (const value of Object.values(out)) expect(value).toBe('[redacted]');
    expect(Object.keys(out)).toHaveLength(8);
  });

  it('keeps other fields as they are', () => {
    expect(redact({ user: 'alice', app: 'shop', n: 3, nested: { a: 1 } })).toEqual({ user: 'alice', app: 'shop', n: 3, nested: { a: 1 } });
  });

  it('turns an Error into its message and code', () => {
    expect(redact({ error: new EntryError('ENTRY_NOT_FOUND') })).toEqual({ error: { message: 'container not found', code: 'ENTRY_NOT_FOUND' } });
  });
});

describe('createLogger', () => {
  function capture(level: Parameters<typeof createLogger>[0]) {
    const lines: string[] = [];
    return { lines, log: createLogger(level, (line) => lines.push(line)) };
  }

  it('writes one JSON object per line with time, level and message', () => {
    const { lines, log } = capture('debug');
    log.info('listening', { url: 'http://127.0.0.1:8022' });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(parsed['level']).toBe('info');
    expect(parsed['msg']).toBe('listening');
    expect(parsed['url']).toBe('http://127.0.0.1:8022');
    expect(Number.isNaN(Date.parse(String(parsed['time'])))).toBe(false);
  });

  it('never writes a token passed under a secret-looking key', () => {
    const { lines, log } = capture('debug');
    log.debug('d', { token: SECRET });
    log.info('i', { accessToken: SECRET, user: 'alice' });
    log.warn('w', { authorization: `Bearer ${SECRET}` });
    log.error('e', { ticket: SECRET, secret: SECRET });
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain('SECRET-VALUE');
    }
    expect(lines[1]).toContain('alice');
  });

  it('drops messages below its level and writes nothing when silent', () => {
    const warn = capture('warn');
    warn.log.debug('d');
    warn.log.info('i');
    warn.log.warn('w');
    warn.log.error('e');
    expect(warn.lines.map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(['warn', 'error']);
    const silent = capture('silent');
    silent.log.error('e', { x: 1 });
    expect(silent.lines).toHaveLength(0);
  });
});

describe('credentials by shape', () => {
  it('masks JWTs and credential query parameters inside any string, messages and errors included', () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    log.info(`refused ${SECRET}`, { url: '/enter?app=a&ticket=abcDEF123_-x&proc=b', error: new Error(`bad ${SECRET}`), argv: ['curl', `-H`, `Authorization: Bearer ${SECRET}`] });
    expect(lines[0]).not.toContain('SECRET-VALUE');
    expect(lines[0]).not.toContain('abcDEF123_-x');
    expect(lines[0]).toContain('ticket=[redacted]');
    expect(lines[0]).toContain('&proc=b');
  });

  it('scans a long hostile string in linear time, and writes at most MAX_LOG_STRING_CHARS of it', () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    // Every `eyJ` of one long run was a match start of its own: quadratic, minutes for this.
    const path = `/${'eyJ-'.repeat(250_000)}`;
    const started = performance.now();
    log.info('request', { path, reason: `app name missing or invalid: ${path}` });
    expect(performance.now() - started).toBeLessThan(2_000);
    const line = JSON.parse(lines[0]!) as { path: string };
    expect(line.path.length).toBeLessThan(MAX_LOG_STRING_CHARS + 40);
    expect(line.path).toMatch(new RegExp(`…\\[${path.length - MAX_LOG_STRING_CHARS} more characters\\]$`));
  });

  it('masks a list of strings as a command line and cuts each long element as a string is cut', () => {
    const long = 'x'.repeat(3 * MAX_LOG_STRING_CHARS);
    const argv = redact({ argv: ['mysql', '--password', 'hunter2', long] })['argv'] as string[];
    expect(argv.slice(0, 3)).toEqual(['mysql', '--password', '[redacted]']);
    expect(argv[3]).toBe(`${'x'.repeat(MAX_LOG_STRING_CHARS)}…[${2 * MAX_LOG_STRING_CHARS} more characters]`);
  });

  it('still masks a JWT after a separator, and cuts only after masking', () => {
    const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    for (const text of [`Bearer ${jwt}`, `token=${jwt}`, `"${jwt}"`, `${'x '.repeat(MAX_LOG_STRING_CHARS / 2 - 10)}${jwt}`]) {
      const out = redact({ text })['text'] as string;
      expect(out).not.toContain('c2lnbmF0dXJl');
      expect(out).not.toContain('eyJzdWIi');
    }
  });
});
