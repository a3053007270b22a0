import { describe, expect, it } from 'vitest';
import { PromptWatch } from '../../broker/audit/secret-prompt.js';

/** Output chunks, and `{ typed }` for a keystroke between them. */
const asks = (...chunks: Array<string | { typed: string }>) => {
  const w = new PromptWatch();
  for (const c of chunks) {
    if (typeof c === 'string') w.seen(Buffer.from(c));
    else w.typed();
  }
  return w.asksForSecret();
};

describe('PromptWatch', () => {
  it('knows the prompts of sudo, su, ssh, passwd, mysql and a key passphrase', () => {
    for (const prompt of [
      '[sudo] password for alice: ',
      'Password:',
      "alice@db1's password: ",
      'New password: ',
      'Retype new password: ',
      'Enter password: ',
      `Enter passphrase for key '/home/alice/.ssh/${'k'.repeat(150)}': `,
      'Enter PIN for token? ',
      'Passwort: ',
      'Пароль: ',
      'Enter your API token: ',
      'Client secret: ',
      // OpenSSL writes the two words apart.
      'Enter pass phrase for k.pem:',
      'Enter PEM pass phrase:',
      // A coloured prompt ends in its colour's reset; a title set on the way shows nothing.
      '\x1b[1;31mVault password:\x1b[0m ',
      '\x1b]0;deploy\x07Password: \x1b[K',
    ]) {
      expect(asks('some output\r\n', prompt), prompt).toBe(true);
    }
  });

  it('takes an echoed command or a shell prompt for what it is', () => {
    expect(asks('bash-5.2# ')).toBe(false);
    expect(asks('root@web-1:/srv/app# ', 'l', 's')).toBe(false);
    expect(asks('Password: ', '\r\n', 'bash-5.2# ', 'cat passwords.txt')).toBe(false);
    expect(asks('the password was changed\r\n')).toBe(false);
    expect(asks('shopping list:\r\n')).toBe(false);
    expect(asks('\x1b[32malice@web-1\x1b[0m:\x1b[34m~\x1b[0m$ ')).toBe(false);
  });

  it('reads a prompt that came in pieces, and is not put off by an empty chunk after it', () => {
    expect(asks('[sudo] pass', 'word for alice: ')).toBe(true);
    expect(asks('Password: ', '')).toBe(true);
  });

  it('takes a command echoed at a shell prompt that names a secret for a command', () => {
    const typed = (text: string) => [...text].flatMap((ch) => [{ typed: ch }, ch]);
    expect(asks('me@host:~/password-store$ ', ...typed('scp db.tar backup:'))).toBe(false);
    expect(asks('me@otp-gw:~$ ', ...typed('ls ?'))).toBe(false);
    // A secret typed with echo off leaves the prompt as the last output.
    expect(asks('[sudo] password for me: ', { typed: 's' }, { typed: 'e' })).toBe(true);
  });

  it('takes the stars of sudo with pwfeedback for no echo, rubbed-out keys too', () => {
    expect(asks('[sudo] password for me: ', { typed: 's' }, '*', { typed: 'e' }, '*', { typed: '\x7f' }, '\b \b', { typed: 'x' }, '*')).toBe(true);
    expect(asks('Password: ', { typed: 'ab' }, '**')).toBe(true);
    // Letters are an echo: a command typed at a shell whose prompt ends like a question.
    expect(asks('Password: ', { typed: 'l' }, 'l', { typed: '*' }, '*')).toBe(false);
    expect(asks('Password? ', { typed: ' ' }, ' ')).toBe(false);
  });

  it('keeps the end of the output across many small chunks', () => {
    const many = Array.from({ length: 300 }, (_, i) => `${i % 10}`);
    expect(asks(...many, 'Enter pass', 'phrase: ')).toBe(true);
    expect(asks('Password: ', ...many)).toBe(false);
    expect(asks(...many, `${'y'.repeat(250)}\r\nPIN: `)).toBe(true);
  });

  it('looks only at the end of a long chunk', () => {
    expect(asks(`${'x'.repeat(100_000)}\r\nPassword: `)).toBe(true);
    expect(asks(`Password: ${'x'.repeat(100_000)}`)).toBe(false);
  });
});
