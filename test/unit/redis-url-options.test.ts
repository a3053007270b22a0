import { describe, expect, it } from 'vitest';
import { urlOptions } from '../../broker/store/redis-connection.js';

describe('urlOptions', () => {
  it('takes the user, the password, the database and TLS from a Redis URL', () => {
    expect(urlOptions('rediss://entry:p%40ss%2Fw@redis.internal:6380/5')).toEqual({ username: 'entry', password: 'p@ss/w', db: 5, tls: {} });
    expect(urlOptions('redis://:pw@[::1]:6379')).toEqual({ password: 'pw' });
    expect(urlOptions('redis://r:6379')).toEqual({});
  });
});
