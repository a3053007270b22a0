/** A bad setting: the message names it, so start-up can fail with one clear line. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    readonly problem: string,
  ) {
    super(`invalid setting ${setting}: ${problem}`);
    this.name = 'ConfigError';
  }

  /** The same error, naming the setting as the operator gave it (`ENTRY_PING_INTERVAL`). */
  as(setting: string): ConfigError {
    return new ConfigError(setting, this.problem);
  }
}
