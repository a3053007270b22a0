import { describe, expect, it } from 'vitest';
import { ExecConnection } from '../../client/protocol/connection.js';

/** Nothing listens on port 9 of loopback: a refusal that names a header came before any connection. */
const broker = 'http://127.0.0.1:9';

describe('ExecConnection.open with a value no HTTP header can carry', () => {
  it('names the app, not the broker address, for a name past Latin-1', async () => {
    await expect(ExecConnection.open({ broker, token: 't', target: { app: '日本', proc: 'web', instance: 1 } })).rejects.toMatchObject({
      code: 'ENTRY_BAD_REQUEST',
      message: 'the app name "日本" has a character an HTTP header cannot carry (a line break, a control character, or one past U+00FF)',
    });
  });

  it('names the token without showing it, for a token with a line break', async () => {
    const err = (await ExecConnection.open({ broker, token: 'secret-part\n', target: { app: 'shop', proc: 'web', instance: 1 } }).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code: string };
    expect(err).toMatchObject({ code: 'ENTRY_BAD_REQUEST' });
    expect(err.message).toMatch(/^the access token has a character an HTTP header cannot carry/);
    expect(err.message).not.toContain('secret-part');
  });

  it('passes Latin-1 names on to the connection, which then fails only for want of a broker', async () => {
    await expect(ExecConnection.open({ broker, token: 't', target: { app: 'café', proc: 'web', instance: 1 } })).rejects.toMatchObject({ code: 'ENTRY_CONNECT_FAILED' });
  });
});
