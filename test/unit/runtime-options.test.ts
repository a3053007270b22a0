import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_ENVIRONMENT, BROKER_NODE_OPTIONS } from '../../broker/runtime-options.js';
import { ROOT } from '../helpers/repo.js';

const read = (path: string) => readFileSync(`${ROOT}/${path}`, 'utf8');
const ENVIRONMENT = Object.entries(BROKER_ENVIRONMENT).map(([k, v]) => `${k}=${v}`);

describe("the broker's node options and environment", () => {
  it('are what the image starts it with', () => {
    const dockerfile = read('deploy/Dockerfile');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entrypoint ?? '[]')).toEqual(['node', ...BROKER_NODE_OPTIONS, '/app/dist/broker/main.js']);
    for (const e of ENVIRONMENT) expect(dockerfile).toMatch(new RegExp(`^\\s+${e}\\b`, 'm'));
  });

  it('are what the systemd unit starts it with', () => {
    const unit = read('deploy/systemd/entry-broker.service');
    expect(/^ExecStart=(.*)$/m.exec(unit)?.[1]).toBe(['/usr/bin/node', ...BROKER_NODE_OPTIONS, '/opt/entry/dist/broker/main.js'].join(' '));
    for (const e of ENVIRONMENT) expect(unit).toContain(`\nEnvironment=${e}\n`);
  });

  it('are what the development setup starts it with', () => {
    const line = read('deploy/dev/up.sh')
      .split('\n')
      .find((l) => /\bnode .*dist\/broker\/main\.js/.test(l));
    expect(line).toContain(`${ENVIRONMENT.join(' ')} node ${BROKER_NODE_OPTIONS.join(' ')} "$root/dist/broker/main.js"`);
  });
});
