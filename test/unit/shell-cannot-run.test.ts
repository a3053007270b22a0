import { describe, expect, it } from 'vitest';
import { shellCannotRun } from '../../broker/backend/session-mark.js';

/* What runc (through Docker 2x) said when the reaper's scan could not start, word for word. */
const NO_SH = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown';
const PIDS_FULL = 'OCI runtime exec failed: exec failed: unable to start container process: read init-p: connection reset by peer: unknown';
const FROZEN = 'OCI runtime exec failed: exec failed: cannot exec in a paused container (use --ignore-paused to override): unknown';

describe('shellCannotRun', () => {
  it('holds for an image without a usable /bin/sh, whatever the exit code says', () => {
    expect(shellCannotRun(126, NO_SH)).toBe(true);
    expect(shellCannotRun(undefined, NO_SH)).toBe(true);
    expect(shellCannotRun(126, 'exec: "/bin/sh": permission denied')).toBe(true);
    // A /bin/sh that ran and gave up so, without the runtime saying anything.
    expect(shellCannotRun(127, 'sh: tr: not found')).toBe(true);
  });

  it('does not hold for an exec the runtime could not start for a passing reason', () => {
    expect(shellCannotRun(126, PIDS_FULL)).toBe(false);
    expect(shellCannotRun(126, FROZEN)).toBe(false);
    expect(shellCannotRun(1, 'no answer')).toBe(false);
    expect(shellCannotRun(undefined, 'no answer')).toBe(false);
  });
});
