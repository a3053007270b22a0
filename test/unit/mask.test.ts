import { describe, expect, it } from 'vitest';
import { maskArgv, maskCredentials, withoutCredentials } from '../../broker/mask.js';
import { urlList } from '../../broker/url-list.js';

// Shaped like a JWT; signed by nobody.
const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLW5vYm9keQ';

describe('maskCredentials', () => {
  it.each([
    ['export GITHUB_TOKEN=ghp_AAAABBBBCCCCDDDD1234', 'export GITHUB_TOKEN=[redacted]'],
    ['DJANGO_SECRET_KEY="a b" ./manage.py', 'DJANGO_SECRET_KEY=[redacted] ./manage.py'],
    ['curl -H "Authorization: Bearer sk-live-0123456789abcdef" x', 'curl -H "Authorization: Bearer [redacted]" x'],
    ['Authorization: Basic dXNlcjpwYXNz', 'Authorization: Basic [redacted]'],
    [`Authorization: Bearer ${JWT}`, 'Authorization: Bearer [redacted-jwt]'],
    ['http --auth-type bearer --auth Bearer:x Bearer sk_0123456789abcdefXYZ', 'http --auth-type bearer --auth Bearer:x Bearer [redacted]'],
    ['mysql --password=S3cretPw -u root', 'mysql --password=[redacted] -u root'],
    ['vault login --token s.abc123 -v', 'vault login --token [redacted] -v'],
    ['psql postgres://app:hunter2@db/x', 'psql postgres://app:[redacted]@db/x'],
    ['redis-cli -u redis://:Tr0ub@r@10.0.0.5:6379/0 ping', 'redis-cli -u redis://:[redacted]@10.0.0.5:6379/0 ping'],
    ['Authorization: 0123456789abcdefXYZ', 'Authorization: [redacted]'],
    ['curl -u deploy:Hunter2pw https://x', 'curl -u deploy:[redacted] https://x'],
    ['curl "https://x/?password=hunter2&api_key=K123&q=1"', 'curl "https://x/?password=[redacted]&api_key=[redacted]&q=1"'],
    [`wget https://x/?access_token=${JWT}`, 'wget https://x/?access_token=[redacted]'],
  ])('masks %s', (typed, kept) => {
    expect(maskCredentials(typed)).toBe(kept);
  });

  it.each([
    'docker run -u 1000:1000 img',
    'docker exec -u www-data:www-data c',
    'ls --color auto',
    'PWD=/home/x TOKEN_FILE=/run/t cat $TOKEN_FILE',
    'missing bearer token',
    'authorization: failed for user alice',
    'git log --author alice',
    'psql --no-password mydb',
    'https://example.com/a:b@c',
    'curl http://host:8080/path@v2',
    'curl http://[::1]:8080/a?b=c@d',
  ])(
    'leaves %s as it is',
    (text) => {
      expect(maskCredentials(text)).toBe(text);
    },
  );
});

describe('maskArgv', () => {
  it('masks the argument after an option named like a secret, and each argument as a command line', () => {
    expect(maskArgv(['vault', 'login', '--token', 's.abc', '-v'])).toEqual(['vault', 'login', '--token', '[redacted]', '-v']);
    expect(maskArgv(['curl', '-H', `Authorization: Bearer ${JWT}`, 'https://x'])).toEqual(['curl', '-H', 'Authorization: Bearer [redacted-jwt]', 'https://x']);
    expect(maskArgv(['env', 'API_KEY=k1', 'run'])).toEqual(['env', 'API_KEY=[redacted]', 'run']);
    expect(maskArgv(['ls', '--color', 'auto'])).toEqual(['ls', '--color', 'auto']);
  });
});

describe('withoutCredentials', () => {
  it('leaves out the user information of each URL a setting lists, even one that makes the URL invalid', () => {
    expect(withoutCredentials('redis://:pa/ss@a:7000, rediss://u:p@ss@b:7000')).toBe('redis://[credentials]@a:7000,rediss://[credentials]@b:7000');
  });

  it('keeps a value without user information as it is', () => {
    expect(withoutCredentials('redis://a:6379/2')).toBe('redis://a:6379/2');
  });
});

describe('urlList', () => {
  it('splits at a comma only where another URL starts, so a password keeps its comma', () => {
    expect(urlList('redis://:a,b@h1:7000,redis://h2:7000')).toEqual(['redis://:a,b@h1:7000', 'redis://h2:7000']);
    expect(urlList('redis://:x,rediss://@h1:1')).toEqual(['redis://:x', 'rediss://@h1:1']);
  });
});
