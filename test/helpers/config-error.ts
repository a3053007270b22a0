import { expect } from 'vitest';
import { ConfigError, parseConfig, type RawSettings } from '../../broker/config/config.js';

/** The ConfigError `action` throws; fails the test when it throws another error, or none. */
export function configErrorOf(action: () => unknown, accepted: string): ConfigError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  return expect.unreachable(accepted);
}

/** The ConfigError thrown by parseConfig (fails the test when nothing is thrown). */
export function configError(raw: RawSettings): ConfigError {
  return configErrorOf(() => parseConfig(raw), 'parseConfig accepted the settings');
}
