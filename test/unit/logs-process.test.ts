import { describe, expect, it } from 'vitest';
import { stillTheSameRun } from '../../broker/docker/logs-process.js';

/** Why an attach's log stream ended: the container (stopped, or restarted since) or the link to the engine. */
describe('stillTheSameRun', () => {
  const started = '2026-12-05T07:00:00.000000000Z';

  it('holds for a container running on since the attach began: the link to the engine broke', () => {
    expect(stillTheSameRun({ StartedAt: started }, { Running: true, Restarting: false, StartedAt: started })).toBe(true);
  });

  it('fails for a container that stopped', () => {
    expect(stillTheSameRun({ StartedAt: started }, { Running: false, Restarting: false, StartedAt: started })).toBe(false);
  });

  it('fails for a container running again after a restart, its start time moved on', () => {
    expect(stillTheSameRun({ StartedAt: started }, { Running: true, Restarting: false, StartedAt: '2026-12-05T07:00:01.000000000Z' })).toBe(false);
  });

  it('fails for a container its restart policy is bringing back', () => {
    expect(stillTheSameRun({ StartedAt: started }, { Running: true, Restarting: true, StartedAt: started })).toBe(false);
  });
});
