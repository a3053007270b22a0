import { describe, expect, it } from 'vitest';
import { nextStep } from '../../client/cli/hints.js';

describe('the hint under an unreachable broker', () => {
  it("names a profile's address, which its name does not say", async () => {
    expect(await nextStep('ENTRY_CONNECT_FAILED', { ref: { url: 'https://entry.example', profile: 'prod' }, env: {} })).toBe(
      'Check the broker address (prod is https://entry.example; `enter broker ls` lists them) and that the broker is running.',
    );
  });

  it('does not repeat an address given as such', async () => {
    expect(await nextStep('ENTRY_CONNECT_FAILED', { ref: { url: 'http://127.0.0.1:1' }, env: {} })).toBe('Check the broker address (`enter broker ls` lists the ones you have) and that the broker is running.');
  });

  it('says a bare name was taken as a host because no profile has it', async () => {
    expect(await nextStep('ENTRY_CONNECT_FAILED', { ref: { url: 'http://prdo', bareName: 'prdo' }, env: {} })).toBe(
      'No profile is named "prdo", so it was taken as the host http://prdo: `enter broker ls` lists the profiles.',
    );
  });

  it('names the profile such a bare name is likely a slip for', async () => {
    expect(await nextStep('ENTRY_CONNECT_FAILED', { ref: { url: 'http://prdo', bareName: 'prdo', closeProfile: 'prod' }, env: {} })).toBe(
      'No profile is named "prdo", so it was taken as the host http://prdo: `enter broker ls` lists the profiles. Did you mean -b prod?',
    );
  });
});
