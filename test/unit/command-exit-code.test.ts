import { describe, expect, it } from 'vitest';
import { commandExitCode } from '../../broker/docker/exec-process.js';

// As runc and Docker word them (Docker 20.10).
const NOT_FOUND = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-command": executable file not found in $PATH: unknown';
const NO_FILE = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "/opt/none": stat /opt/none: no such file or directory: unknown';
const NO_WORKDIR = 'OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/nonexistent") set in config.json failed: no such file or directory: unknown';
const NOT_EXECUTABLE = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown';

describe('commandExitCode', () => {
  it('says 127 for a command that does not exist, as shells and docker run do', () => {
    expect(commandExitCode(126, NOT_FOUND)).toBe(127);
    expect(commandExitCode(126, NO_FILE)).toBe(127);
  });

  it('keeps 126 for what exists and cannot be run, a missing working directory included (as docker exec)', () => {
    expect(commandExitCode(126, NO_WORKDIR)).toBe(126);
    expect(commandExitCode(126, NOT_EXECUTABLE)).toBe(126);
    expect(commandExitCode(3, undefined)).toBe(3);
  });
});
