import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Host key checking for ssh:// Docker hosts against an OpenSSH known_hosts file: plain and
 * hashed (`|1|salt|hash`) host patterns, `[host]:port` for ports other than 22. A host with no
 * matching line is refused (ssh2 itself accepts any key when not told otherwise).
 */
export function knownHostsVerifier(file: string): (host: string, port: number) => (key: Buffer) => boolean {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('@'));
  const entries = lines.flatMap((l) => {
    const [hosts, , b64] = l.split(/\s+/);
    if (!hosts || !b64) return [];
    return [{ patterns: hosts.split(','), key: Buffer.from(b64, 'base64') }];
  });
  return (host, port) => {
    const name = port === 22 ? host : `[${host}]:${port}`;
    const matches = (pattern: string): boolean => {
      if (pattern.startsWith('|1|')) {
        const [, , salt, hash] = pattern.split('|');
        if (!salt || !hash) return false;
        return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
      }
      return pattern === name;
    };
    return (key) => entries.some((e) => e.patterns.some(matches) && e.key.equals(key));
  };
}
