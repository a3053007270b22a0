import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMap, parseAllDocuments, parseDocument, type YAMLMap } from 'yaml';
import { parseConfig } from '../../broker/config/config.js';
import { readSettings } from '../../broker/config/flags.js';
import { BROKER_ENVIRONMENT, BROKER_NODE_OPTIONS } from '../../broker/runtime-options.js';
import { TestEngine } from '../helpers/engine.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const sh = promisify(execFile);
const run = async (file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {}) =>
  (await sh(file, args, { maxBuffer: 64 << 20, encoding: 'utf8', ...opts, env: { ...process.env, ...opts.env } })).stdout;
const have = async (file: string, args: string[]) => run(file, args).then(() => true, () => false);

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The broker's flag names, from its own --help: every ENTRY_* setting must name one. */
let brokerFlags: Set<string>;
function checkEntryKeys(where: string, env: Record<string, unknown>): void {
  for (const key of Object.keys(env).filter((k) => k.startsWith('ENTRY_'))) {
    const flag = key.slice('ENTRY_'.length).toLowerCase().replace(/_/g, '-');
    expect(brokerFlags.has(flag) || key === 'ENTRY_DOCKER_HOSTS', `${where}: ${key} is no broker setting`).toBe(true);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * GETs `url` from inside `engine`'s network namespace until it answers `status`; its body.
 * (A node of its own there: fetch from this process would go through the machine's network.)
 */
async function waitInside(engine: TestEngine, url: string, status: number, timeoutMs: number, headers: Record<string, string> = {}): Promise<string> {
  // A timer of its own keeps node running: AbortSignal.timeout's does not, and a fetch whose
  // connection the engine's port proxy closed before the broker listened may never settle.
  const script = `const [url, status, timeoutMs, headers] = process.argv.slice(1);
const deadline = Date.now() + Number(timeoutMs);
const alive = setInterval(() => undefined, 1000);
(async () => {
  let last = '';
  for (;;) {
    try {
      const res = await fetch(url, { headers: JSON.parse(headers), signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.status === Number(status)) {
        clearInterval(alive);
        return process.stdout.write(body);
      }
      last = 'HTTP ' + res.status + ': ' + body;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(url + ' never answered ' + status + ' (last: ' + last + ')');
    await new Promise((r) => setTimeout(r, 250));
  }
})();`;
  return engine.inNamespace(process.execPath, ['-e', script, url, String(status), String(timeoutMs), JSON.stringify(headers)], timeoutMs + 10_000);
}

async function waitForHttp(url: string, status: number, timeoutMs = 60_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === status) return res;
      last = `HTTP ${res.status}: ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} never answered ${status} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  const help = await run(process.execPath, [join(ROOT, 'dist/broker/main.js'), '--help']);
  brokerFlags = new Set([...help.matchAll(/--([a-z][a-z-]+)/g)].map((m) => m[1]!));
  expect(brokerFlags.has('jwt-public-key')).toBe(true);
});

describe('deploy/Dockerfile: built offline, runs unprivileged, answers /healthz', () => {
  const tag = 'entry-broker:packaging-test';
  const work = mkdtempSync(join(tmpdir(), 'entry-packaging-'));
  const containers: string[] = [];
  const dangling = async () => new Set((await run('docker', ['images', '-q', '--no-trunc', '--filter', 'dangling=true'])).split('\n').filter(Boolean));
  let danglingBefore = new Set<string>();

  beforeAll(async () => {
    danglingBefore = await dangling();
    // No registry: a Node base image assembled from this machine's own Node (docker import).
    await run('bash', [join(DEPLOY, 'dev/node-base-image.sh')]);
    // The build context: what the Dockerfile copies, as in a fresh checkout.
    const ctx = join(work, 'ctx');
    mkdirSync(join(ctx, 'deploy'), { recursive: true });
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json']) cpSync(join(ROOT, f), join(ctx, f));
    for (const d of ['proto', 'broker', 'client']) cpSync(join(ROOT, d), join(ctx, d), { recursive: true, filter: (src) => !src.includes('node_modules') });
    cpSync(join(DEPLOY, 'Dockerfile'), join(ctx, 'deploy/Dockerfile'));
    // The build stage reaches the npm registry through the host's network (no docker0 bridge here).
    await run('docker', ['build', '--network', 'host', '--build-arg', 'NODE_IMAGE=entry-node:local', '-f', 'deploy/Dockerfile', '-t', tag, '.'], { cwd: ctx, timeout: 280_000 });
  }, 300_000);
  afterAll(async () => {
    await Promise.all(containers.map((id) => run('docker', ['rm', '-f', id]).catch(() => undefined)));
    // The image and its build stage (left untagged) are ours: a workstation must not gain ~600 MB a run.
    await run('docker', ['rmi', tag]).catch(() => undefined);
    const ours = [...(await dangling())].filter((id) => !danglingBefore.has(id));
    if (ours.length) await run('docker', ['rmi', ...ours]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('is a non-root image with a HEALTHCHECK on /healthz, the broker as entrypoint and the console inside', async () => {
    const [image] = JSON.parse(await run('docker', ['image', 'inspect', tag])) as Doc[];
    const config = image!['Config'];
    expect(config.User).toBe('10001:10001');
    expect(config.Entrypoint).toEqual(['node', ...BROKER_NODE_OPTIONS, '/app/dist/broker/main.js']);
    expect(Object.keys(config.ExposedPorts)).toEqual(['8022/tcp']);
    expect(config.Env).toEqual(expect.arrayContaining(['ENTRY_LISTEN=0.0.0.0:8022', 'ENTRY_RECORDINGS_DIR=/var/lib/entry/recordings', ...Object.entries(BROKER_ENVIRONMENT).map(([k, v]) => `${k}=${v}`)]));
    expect(config.Healthcheck.Test).toEqual(['CMD', 'node', '/app/dist/broker/healthcheck.js']);
    const files = await run('docker', ['run', '--rm', '--network', 'none', '--entrypoint', 'node', tag, '-e',
      "const fs=require('fs');console.log(JSON.stringify({console:fs.existsSync('/app/dist/console/index.html'),ts:fs.existsSync('/app/node_modules/typescript'),rec:fs.statSync('/var/lib/entry/recordings').uid,uid:process.getuid()}))"]);
    // The console is in; dev dependencies are not; recordings are writable by the broker's user.
    expect(JSON.parse(files)).toEqual({ console: true, ts: false, rec: 10001, uid: 10001 });
  });

  it('runs: /healthz, /api/config and the console answer; Docker reports it healthy', async () => {
    const port = await freePort();
    const secret = join(work, 'jwt.secret');
    writeFileSync(secret, randomBytes(48).toString('base64'));
    chmodSync(secret, 0o644);
    // Host networking: this engine may have no docker0 bridge to publish ports through. The
    // address as a flag: the health check finds it where the broker did.
    const id = (await run('docker', ['run', '-d', '--network', 'host', '--health-interval', '1s',
      '-v', `${secret}:/run/secrets/jwt.secret:ro`, tag, '--jwt-secret-file', '/run/secrets/jwt.secret', '--listen', `127.0.0.1:${port}`])).trim();
    containers.push(id);
    const health = await waitForHttp(`http://127.0.0.1:${port}/healthz`, 200, 30_000);
    expect(await health.json()).toEqual({ status: 'ok' });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await (await fetch(`http://127.0.0.1:${port}/api/config`)).json()).toEqual({ version: pkg.version, oidc: null });
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const deadline = Date.now() + 30_000;
    let status = '';
    while (Date.now() < deadline && status !== 'healthy') {
      status = (await run('docker', ['inspect', '-f', '{{.State.Health.Status}}', id])).trim();
      if (status !== 'healthy') await new Promise((r) => setTimeout(r, 300));
    }
    expect(status).toBe('healthy');
  });

  it('compose.yaml brings up the broker and Redis: /readyz says Docker and Redis are there, its own containers are never listed', async (ctx) => {
    const compose = (await have('docker', ['compose', 'version'])) ? ['docker', 'compose'] : (await have('docker-compose', ['version'])) ? ['docker-compose'] : null;
    if (!compose) ctx.skip('neither `docker compose` nor docker-compose is installed (deploy/dev/test.sh installs docker-compose)');
    // Redis without a registry, like the Node base: the machine's redis-server in a small image.
    await run('bash', ['-c', `
      set -euo pipefail
      docker image inspect entry-redis:local >/dev/null 2>&1 && exit 0
      root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
      mkdir -p "$root"/{bin,usr/bin,etc,data,tmp}
      cp "$(command -v busybox)" "$root/bin/busybox"; for a in sh ls cat; do ln -s busybox "$root/bin/$a"; done
      for b in redis-server redis-cli; do
        cp "$(command -v $b)" "$root/usr/bin/$b"
        ldd "$(command -v $b)" | grep -o '/[^ ]*' | while read -r lib; do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
      done
      printf 'root:x:0:0::/root:/bin/sh\\nredis:x:999:999::/data:/bin/sh\\n' > "$root/etc/passwd"
      printf 'root:x:0:\\nredis:x:999:\\n' > "$root/etc/group"
      chown 999:999 "$root/data"
      tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/bin:/bin' -c 'WORKDIR /data' -c 'CMD ["redis-server"]' - entry-redis:local >/dev/null`]);
    const dir = join(work, 'compose');
    mkdirSync(dir, { recursive: true });
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'jwt.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    chmodSync(join(dir, 'jwt.pub.pem'), 0o644);
    // Compose makes a network of its own and publishes a port: on an engine in a network
    // namespace of its own, so that neither touches the machine's engine, bridges or rules.
    const engine = new TestEngine({ networking: true });
    const port = 8022;
    const project = `entrypkg${randomBytes(3).toString('hex')}`;
    const env: Record<string, string> = {
      DOCKER_HOST: engine.host,
      DOCKER_SOCKET: engine.socket,
      ENTRY_IMAGE_TAG: 'packaging-test',
      REDIS_IMAGE: 'entry-redis:local',
      ENTRY_PORT: String(port),
      ENTRY_JWT_PUBLIC_KEY_FILE: join(dir, 'jwt.pub.pem'),
    };
    const dc = (...args: string[]) => run(compose![0]!, [...compose!.slice(1), '-f', join(DEPLOY, 'compose.yaml'), '-p', project, ...args], { env, cwd: DEPLOY, timeout: 120_000 });
    try {
      await engine.start();
      // The socket's group, which the broker's user joins (group_add) to reach the engine.
      env['DOCKER_GID'] = (await run('stat', ['-c', '%g', engine.socket])).trim();
      engine.loadImage(tag);
      engine.loadImage('entry-redis:local');
      await dc('up', '-d', '--no-build');
      const ready = await waitInside(engine, `http://127.0.0.1:${port}/readyz`, 200, 60_000);
      expect(JSON.parse(ready)).toMatchObject({ status: 'ready' });
      const token = await new SignJWT({ apps: ['*'], roles: ['entry-admin'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('ops').setExpirationTime('5m').sign(privateKey);
      const listed = JSON.parse(await waitInside(engine, `http://127.0.0.1:${port}/api/containers`, 200, 10_000, { authorization: `Bearer ${token}` })) as { containers: Array<{ app: string }> };
      expect(listed.containers.map((c) => c.app)).not.toContain('entry');
      const names = (await run('docker', ['-H', engine.host, 'ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Label "entry.app"}}/{{.Label "entry.proc"}}'])).split('\n').filter(Boolean).sort();
      expect(names).toEqual(['entry/broker', 'entry/redis']);
    } finally {
      await dc('down', '-v', '--remove-orphans').catch(() => undefined);
      await engine.destroy();
    }
  }, 150_000);
});

describe('deploy/compose.yaml: parses, and its parts agree', () => {
  const file = readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8');
  const compose = parseDocument(file).toJS() as Doc;
  const broker = compose['services'].broker;
  const redis = compose['services'].redis;
  /** A value as Compose would see it with nothing set: `${X:-default}` → default. */
  const dflt = (v: string) => v.replace(/\$\{[A-Z_]+:?-([^}]*)\}/g, '$1').replace(/\$\{[A-Z_]+\}/g, '');

  it('ports, Redis URL, secrets, volumes, the Docker socket and the deny list line up', () => {
    const env = broker.environment as Record<string, string>;
    const port = dflt(env['ENTRY_LISTEN']!).split(':').pop();
    expect(broker.ports.map((p: string) => dflt(p).split(':').pop())).toEqual([port]);
    const redisUrl = new URL(dflt(env['ENTRY_REDIS_URL']!));
    expect(Object.keys(compose['services'])).toContain(redisUrl.hostname);
    expect(redis.expose).toContain(redisUrl.port);
    // The key is a Compose secret, mounted where ENTRY_JWT_PUBLIC_KEY says.
    const keyPath = dflt(env['ENTRY_JWT_PUBLIC_KEY']!);
    const secretName = keyPath.replace('/run/secrets/', '');
    expect(broker.secrets).toContain(secretName);
    expect(Object.keys(compose['secrets'])).toContain(secretName);
    // Recordings: a named volume where the broker writes them.
    const rec = (broker.volumes as string[]).find((v) => v.endsWith(`:${env['ENTRY_RECORDINGS_DIR']}`));
    expect(rec).toBeDefined();
    expect(Object.keys(compose['volumes'])).toContain(rec!.split(':')[0]);
    // Only the broker has the Docker socket.
    expect(broker.volumes as string[]).toContain('${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock');
    expect(JSON.stringify(redis)).not.toContain('docker.sock');
    // The stack labels itself as app `entry`, which the broker refuses by default.
    expect(parseConfig({ 'jwt-public-key': '/k' }).auth.denyApps).toContain(broker.labels['entry.app']);
    expect(redis.labels['entry.app']).toBe('entry');
    // Every ENTRY_* variable is a broker setting, and with the defaults they make a valid config.
    checkEntryKeys('compose.yaml', env);
    const defaults = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, dflt(String(v))]));
    expect(() => parseConfig(readSettings([], defaults))).not.toThrow();
  });

  it('passes `docker-compose config` (schema and interpolation)', async (ctx) => {
    const compose = (await have('docker', ['compose', 'version'])) ? ['docker', 'compose'] : (await have('docker-compose', ['version'])) ? ['docker-compose'] : null;
    if (!compose) ctx.skip('no docker compose on this machine');
    const key = join(mkdtempSync(join(tmpdir(), 'entry-compose-')), 'k.pem');
    writeFileSync(key, '');
    const out = await run(compose![0]!, [...compose!.slice(1), '-f', join(DEPLOY, 'compose.yaml'), 'config'], { env: { ENTRY_JWT_PUBLIC_KEY_FILE: key }, cwd: DEPLOY });
    const broker = parseDocument(out).toJS().services.broker;
    expect(broker.image).toBe('entry-broker:latest');
    // deploy/broker.env is read: a setting written there (here by its example) reaches the broker.
    const example = /^#\s+(ENTRY_[A-Z_]+)=(\S+)$/m.exec(readFileSync(join(DEPLOY, 'broker.env'), 'utf8'))!;
    const copy = join(dirname(key), 'compose');
    mkdirSync(copy);
    copyFileSync(join(DEPLOY, 'compose.yaml'), join(copy, 'compose.yaml'));
    writeFileSync(join(copy, 'broker.env'), `${example[1]}=${example[2]}\n`);
    const withSetting = await run(compose![0]!, [...compose!.slice(1), '-f', join(copy, 'compose.yaml'), 'config'], { env: { ENTRY_JWT_PUBLIC_KEY_FILE: key }, cwd: copy });
    expect(parseDocument(withSetting).toJS().services.broker.environment[example[1]!]).toBe(example[2]);
  });
});

describe('deploy/helm/entry: lints, renders to YAML whose parts agree, every value documented', () => {
  const chart = join(DEPLOY, 'helm/entry');
  let helm: string;
  const render = async (...set: string[]): Promise<Doc[]> => {
    const out = await run(helm, ['template', 'rel', chart, '--namespace', 'entry', ...set.flatMap((s) => ['--set', s])]);
    const docs = parseAllDocuments(out);
    for (const d of docs) expect(d.errors, String(d.errors)).toEqual([]);
    return docs.map((d) => d.toJS() as Doc).filter(Boolean);
  };
  const one = (docs: Doc[], kind: string, name?: string) => {
    const found = docs.filter((d) => d['kind'] === kind && (!name || d['metadata'].name === name));
    expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
    return found[0]!;
  };
  const subset = (sel: Record<string, string>, labels: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);

  beforeAll(async () => {
    helm = (await run('bash', [join(DEPLOY, 'dev/helm.sh')], { timeout: 120_000 })).trim();
  }, 150_000);

  it('helm lint passes with a key, and refuses to render without one', async () => {
    await run(helm, ['lint', chart, '--strict', '--set', 'auth.jwksUrl=https://id.example/jwks']);
    await expect(run(helm, ['template', 'rel', chart])).rejects.toThrow(/set one of auth.jwksUrl, auth.publicKey/);
    // pods/exec is never bound to the namespace's default ServiceAccount, which every pod may use.
    await expect(run(helm, ['template', 'rel', chart, '--set', 'auth.jwksUrl=https://id.example/jwks', '--set', 'serviceAccount.create=false', '--set', 'kubernetes.enabled=true'])).rejects.toThrow(/name the ServiceAccount to bind/);
    // Brokers that share no state would each keep their own tickets, limits and sessions.
    await expect(run(helm, ['template', 'rel', chart, '--set', 'auth.jwksUrl=https://id.example/jwks', '--set', 'redis.bundled.enabled=false'])).rejects.toThrow(/replicaCount > 1 needs Redis/);
  });

  it('default values: ports, probes, selectors, Secret, Redis and drain time agree', async () => {
    const docs = await render('auth.publicKey=-----BEGIN PUBLIC KEY-----');
    const deploy = one(docs, 'Deployment', 'rel-entry');
    const pod = deploy['spec'].template;
    const c = pod.spec.containers[0];
    const cm = one(docs, 'ConfigMap', 'rel-entry')['data'] as Record<string, string>;
    checkEntryKeys('ConfigMap', cm);
    const httpPort = c.ports.find((p: Doc) => p['name'] === 'http').containerPort;
    expect(String(httpPort)).toBe(cm['ENTRY_LISTEN']!.split(':').pop());
    expect(c.envFrom).toEqual([{ configMapRef: { name: 'rel-entry' } }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTP' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTP' });
    expect(c.startupProbe.httpGet.path).toBe('/healthz');
    expect(deploy['spec'].replicas).toBe(2);
    // The brokers reach each other at the pod's address (Kubernetes expands $(POD_IP)), through their NetworkPolicy.
    const envAt = (name: string) => c.env.findIndex((e: Doc) => e['name'] === name);
    expect(c.env[envAt('POD_IP')]).toEqual({ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
    expect(c.env[envAt('ENTRY_ADVERTISE_URL')]).toEqual({ name: 'ENTRY_ADVERTISE_URL', value: `http://$(POD_IP):${httpPort}` });
    // A variable is expanded from those before it only.
    expect(envAt('POD_IP')).toBeLessThan(envAt('ENTRY_ADVERTISE_URL'));
    const peers = one(docs, 'NetworkPolicy', 'rel-entry')['spec'].ingress.find((r: Doc) => r['from']?.[0]?.podSelector);
    expect(subset(peers.from[0].podSelector.matchLabels, pod.metadata.labels)).toBe(true);
    // Service, PDB, NetworkPolicy and anti-affinity select the broker pods.
    const svc = one(docs, 'Service', 'rel-entry');
    expect(svc['spec'].ports).toEqual([{ name: 'http', port: 8022, targetPort: 'http', protocol: 'TCP' }]);
    expect(subset(svc['spec'].selector, pod.metadata.labels)).toBe(true);
    expect(subset(deploy['spec'].selector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(subset(one(docs, 'PodDisruptionBudget')['spec'].selector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(subset(one(docs, 'NetworkPolicy', 'rel-entry')['spec'].podSelector.matchLabels, pod.metadata.labels)).toBe(true);
    const anti = pod.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(anti.topologyKey).toBe('kubernetes.io/hostname');
    expect(subset(anti.labelSelector.matchLabels, pod.metadata.labels)).toBe(true);
    // The key file the broker reads is in the Secret the pod mounts, under that name.
    const auth = pod.spec.volumes.find((v: Doc) => v['name'] === 'auth');
    const secret = one(docs, 'Secret', auth.secret.secretName);
    const mount = c.volumeMounts.find((m: Doc) => m['name'] === 'auth').mountPath;
    const keyFile = cm['ENTRY_JWT_PUBLIC_KEY']!;
    expect(keyFile.startsWith(`${mount}/`)).toBe(true);
    expect(Buffer.from(secret['data'][keyFile.slice(mount.length + 1)], 'base64').toString()).toBe('-----BEGIN PUBLIC KEY-----');
    // Bundled Redis: the URL names its Service and port; the Service selects its pod.
    // Its URL carries the password from the Secret Redis itself requires it from.
    expect(cm['ENTRY_REDIS_URL']).toBeUndefined();
    const redisUrl = new URL(c.env[envAt('ENTRY_REDIS_URL')].value);
    expect(redisUrl.password).toBe('$(REDIS_PASSWORD)');
    const password = c.env[envAt('REDIS_PASSWORD')];
    expect(envAt('REDIS_PASSWORD')).toBeLessThan(envAt('ENTRY_REDIS_URL'));
    const redisAuth = one(docs, 'Secret', password.valueFrom.secretKeyRef.name);
    expect(Buffer.from(redisAuth['data'][password.valueFrom.secretKeyRef.key], 'base64').toString()).toMatch(/^[A-Za-z0-9]{32}$/);
    const redisSvc = one(docs, 'Service', redisUrl.hostname);
    expect(String(redisSvc['spec'].ports[0].port)).toBe(redisUrl.port);
    const redisPod = one(docs, 'Deployment', redisUrl.hostname)['spec'].template;
    expect(subset(redisSvc['spec'].selector, redisPod.metadata.labels)).toBe(true);
    expect(redisPod.spec.containers[0].ports[0].name).toBe(redisSvc['spec'].ports[0].targetPort);
    const redisC = redisPod.spec.containers[0];
    // A new password restarts both sides: their pods carry its checksum.
    const passwordSum = createHash('sha256').update(Buffer.from(redisAuth['data'].password, 'base64')).digest('hex');
    expect(pod.metadata.annotations['checksum/redis-auth']).toBe(passwordSum);
    expect(redisPod.metadata.annotations['checksum/redis-auth']).toBe(passwordSum);
    expect(redisC.args.slice(-2)).toEqual(['--requirepass', '$(REDIS_PASSWORD)']);
    for (const name of ['REDIS_PASSWORD', 'REDISCLI_AUTH']) expect(redisC.env.find((e: Doc) => e['name'] === name).valueFrom).toEqual(password.valueFrom);
    const redisPolicy = one(docs, 'NetworkPolicy', redisUrl.hostname)['spec'];
    expect(subset(redisPolicy.podSelector.matchLabels, redisPod.metadata.labels)).toBe(true);
    expect(subset(redisPolicy.ingress[0].from[0].podSelector.matchLabels, pod.metadata.labels)).toBe(true);
    // Pods outlive the broker's drain; they run unprivileged; recordings have a volume.
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(cm['ENTRY_DRAIN_TIMEOUT']));
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(c.volumeMounts.find((m: Doc) => m['name'] === 'recordings').mountPath).toBe(cm['ENTRY_RECORDINGS_DIR']);
    // Without Redis, the session ledger is on disk: writable under a read-only root, for as long as the pod lives.
    expect(c.volumeMounts.find((m: Doc) => m['name'] === 'sessions').mountPath).toBe('/var/lib/entry/sessions');
    expect(pod.spec.volumes.find((v: Doc) => v['name'] === 'sessions')).toEqual({ name: 'sessions', emptyDir: {} });
    // The ConfigMap is a valid broker configuration.
    expect(() => parseConfig(readSettings([], cm))).not.toThrow();
  });

  it('the broker and its Redis are the app `entry`, denied by default, whatever the chart is called', async () => {
    for (const name of [[], ['nameOverride=shop'], ['fullnameOverride=web']]) {
      const docs = await render('auth.publicKey=-----BEGIN PUBLIC KEY-----', ...name);
      const pods = docs.filter((d) => d['kind'] === 'Deployment').map((d) => d['spec'].template);
      expect(pods.length, String(name)).toBe(2);
      for (const pod of pods) expect(pod.metadata.labels['entry.app'], String(name)).toBe('entry');
      const cm = docs.find((d) => d['kind'] === 'ConfigMap')!['data'] as Record<string, string>;
      expect(cm['ENTRY_DENY_APPS']!.split(',')).toContain('entry');
    }
  });

  it("uses the node's mounted socket beside the cluster's pods, where a kubeconfig alone means no engine", async () => {
    const docs = await render('auth.jwksUrl=https://id.example/jwks', 'kubernetes.enabled=true', 'docker.hostSocket.enabled=true', 'replicaCount=1');
    const cm = one(docs, 'ConfigMap', 'rel-entry')['data'] as Record<string, string>;
    const c = one(docs, 'Deployment', 'rel-entry')['spec'].template.spec.containers[0];
    expect(`unix://${c.volumeMounts.find((m: Doc) => m['name'] === 'docker-socket').mountPath}`).toBe(cm['ENTRY_DOCKER_HOSTS']);
    expect(cm['ENTRY_KUBECONFIG']).toBe('in-cluster');
    expect(() => parseConfig(readSettings([], cm))).not.toThrow();
  });

  it('everything switched on: OIDC, TLS, metrics with a ServiceMonitor, external Redis from a Secret, host socket, persistence', async () => {
    const docs = await render(
      'auth.jwksUrl=https://id.example/jwks', 'auth.issuer=https://id.example', 'auth.audience=entry-cli',
      'oidc.issuer=https://id.example', 'oidc.clientId=entry-cli',
      'broker.tls.existingSecret=entry-tls', 'metrics.enabled=true', 'metrics.serviceMonitor.enabled=true',
      'redis.existingSecret=entry-redis', 'docker.hostSocket.enabled=true', 'docker.hostSocket.groupId=998',
      'docker.hosts={a=tcp://d1:2376,b=tcp://d2:2376}', 'docker.tls.existingSecret=entry-docker-tls',
      'recordings.persistence.enabled=true', 'podAntiAffinity=hard', 'networkPolicy.allowAllEgress=false',
      'broker.settings.idle-timeout=3600000', 'broker.settings.alert-rule={rm -rf [/~]\\,?,shutdown}',
    );
    const pod = one(docs, 'Deployment', 'rel-entry')['spec'].template;
    const c = pod.spec.containers[0];
    const cm = one(docs, 'ConfigMap', 'rel-entry')['data'] as Record<string, string>;
    checkEntryKeys('ConfigMap', cm);
    expect(cm).toMatchObject({ ENTRY_OIDC_ISSUER: 'https://id.example', ENTRY_OIDC_CLIENT_ID: 'entry-cli', ENTRY_OIDC_SCOPES: 'openid profile offline_access', ENTRY_IDLE_TIMEOUT: '3600000', ENTRY_DOCKER_HOSTS: 'a=tcp://d1:2376,b=tcp://d2:2376' });
    // A list setting as the broker reads lists from its environment: alert rules, which hold
    // commas, one per line.
    expect(cm['ENTRY_ALERT_RULE']).toBe('rm -rf [/~],?\nshutdown');
    expect(parseConfig(readSettings([], { ENTRY_DEV: 'true', ENTRY_LISTEN: '127.0.0.1:0', ENTRY_ALERT_RULE: cm['ENTRY_ALERT_RULE']! })).audit.alertRules.map((r) => r.source)).toEqual(['rm -rf [/~],?', 'shutdown']);
    // Hard anti-affinity: an old pod makes room before the new one is scheduled.
    expect(one(docs, 'Deployment', 'rel-entry')['spec'].strategy.rollingUpdate).toEqual({ maxUnavailable: 1, maxSurge: 1 });
    expect(cm['ENTRY_REDIS_URL']).toBeUndefined();
    expect(c.env).toContainEqual({ name: 'ENTRY_REDIS_URL', valueFrom: { secretKeyRef: { name: 'entry-redis', key: 'redis-url' } } });
    expect(docs.filter((d) => d['kind'] === 'Secret')).toEqual([]);
    expect(docs.some((d) => String(d['metadata']?.name).endsWith('-redis'))).toBe(false);
    expect(c.readinessProbe.httpGet.scheme).toBe('HTTPS');
    const mountOf = (name: string) => c.volumeMounts.find((m: Doc) => m['name'] === name)?.mountPath;
    expect(cm['ENTRY_TLS_CERT']!.startsWith(`${mountOf('tls')}/`)).toBe(true);
    expect(cm['ENTRY_DOCKER_CERT_PATH']).toBe(mountOf('docker-tls'));
    expect(mountOf('docker-socket')).toBe('/var/run/docker.sock');
    expect(pod.spec.securityContext.supplementalGroups).toEqual([998]);
    expect(pod.spec.volumes.find((v: Doc) => v['name'] === 'recordings').persistentVolumeClaim.claimName).toBe(one(docs, 'PersistentVolumeClaim')['metadata'].name);
    // Metrics: the container port, the Service port and the ServiceMonitor agree.
    const metricsPort = c.ports.find((p: Doc) => p['name'] === 'metrics').containerPort;
    expect(cm['ENTRY_METRICS_LISTEN']).toBe(`0.0.0.0:${metricsPort}`);
    const svc = one(docs, 'Service', 'rel-entry');
    expect(svc['spec'].ports.map((p: Doc) => p['name'])).toEqual(['http', 'metrics']);
    const sm = one(docs, 'ServiceMonitor');
    expect(sm['spec'].endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    expect(subset(sm['spec'].selector.matchLabels, svc['metadata'].labels)).toBe(true);
    expect(pod.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(one(docs, 'NetworkPolicy', 'rel-entry')['spec'].policyTypes).toEqual(['Ingress', 'Egress']);
    // (The TLS files exist only in the pod; the rest must be a valid configuration.)
    const { ENTRY_TLS_CERT: _cert, ENTRY_TLS_KEY: _key, ...rest } = cm;
    expect(() => parseConfig(readSettings([], { ...rest, ENTRY_REDIS_URL: 'redis://r:6379' }))).not.toThrow();
  });

  it('several replicas under mTLS: the client CA and the peer CA mounted where the broker reads them, the peer name set, probes on the metrics port', async () => {
    const base = ['auth.jwksUrl=https://id.example/jwks', 'broker.tls.existingSecret=entry-tls'];
    const docs = await render(...base, 'broker.tls.peerCaKey=ca.crt', 'broker.tls.peerName=entry.entry.svc', 'broker.tls.clientCa.existingSecret=entry-clients', 'broker.tls.clientCa.key=clients.pem', 'metrics.enabled=true');
    const pod = one(docs, 'Deployment', 'rel-entry')['spec'].template;
    const c = pod.spec.containers[0];
    const cm = one(docs, 'ConfigMap', 'rel-entry')['data'] as Record<string, string>;
    checkEntryKeys('ConfigMap', cm);
    const mountOf = (name: string) => c.volumeMounts.find((m: Doc) => m['name'] === name)?.mountPath;
    const secretOf = (name: string) => pod.spec.volumes.find((v: Doc) => v['name'] === name)?.secret.secretName;
    expect(cm['ENTRY_PEER_CA']).toBe(`${mountOf('tls')}/ca.crt`);
    expect(cm['ENTRY_TLS_CLIENT_CA']).toBe(`${mountOf('tls-client-ca')}/clients.pem`);
    expect(secretOf('tls-client-ca')).toBe('entry-clients');
    expect(cm['ENTRY_PEER_NAME']).toBe('entry.entry.svc');
    // The kubelet has no client certificate: every probe asks the metrics listener, in plain HTTP.
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) expect(probe.httpGet).toMatchObject({ port: 'metrics', scheme: 'HTTP' });
    // (The TLS files exist only in the pod; the rest must be a valid configuration.)
    const { ENTRY_TLS_CERT: _c, ENTRY_TLS_KEY: _k, ENTRY_PEER_CA: _p, ENTRY_TLS_CLIENT_CA: _ca, ...rest } = cm;
    expect(parseConfig(readSettings([], { ...rest, ENTRY_REDIS_URL: 'redis://r:6379' })).peerTls.name).toBe('entry.entry.svc');
    // Without mTLS the probes stay on the broker port, over HTTPS.
    const plain = one(await render(...base), 'Deployment', 'rel-entry')['spec'].template.spec.containers[0];
    expect(plain.readinessProbe.httpGet).toMatchObject({ port: 'http', scheme: 'HTTPS' });
    await expect(render(...base, 'broker.tls.clientCa.existingSecret=entry-clients')).rejects.toThrow(/needs metrics.enabled/);
    await expect(render('auth.jwksUrl=https://id.example/jwks', 'broker.tls.clientCa.existingSecret=entry-clients', 'metrics.enabled=true')).rejects.toThrow(/needs broker.tls.existingSecret/);
    await expect(render('auth.jwksUrl=https://id.example/jwks', 'broker.tls.peerCaKey=ca.crt')).rejects.toThrow(/peerCaKey names a key of broker.tls.existingSecret/);
  });

  it('kubernetes.enabled: the ServiceAccount the pod runs as gets exactly pods get/list/watch and pods/exec create, and the broker in-cluster config', async () => {
    const exact = [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['create', 'get'] },
    ];
    const cluster = await render('auth.jwksUrl=https://id.example/jwks', 'kubernetes.enabled=true');
    const pod = one(cluster, 'Deployment', 'rel-entry')['spec'].template;
    const sa = one(cluster, 'ServiceAccount');
    expect(pod.spec.serviceAccountName).toBe(sa['metadata'].name);
    expect(pod.spec.automountServiceAccountToken).toBe(true);
    expect(sa['automountServiceAccountToken']).toBe(true);
    expect(one(cluster, 'ClusterRole')['rules']).toEqual(exact);
    const binding = one(cluster, 'ClusterRoleBinding');
    expect(binding['roleRef']).toMatchObject({ kind: 'ClusterRole', name: one(cluster, 'ClusterRole')['metadata'].name });
    expect(binding['subjects']).toEqual([{ kind: 'ServiceAccount', name: sa['metadata'].name, namespace: 'entry' }]);
    const cm = one(cluster, 'ConfigMap', 'rel-entry')['data'] as Record<string, string>;
    checkEntryKeys('ConfigMap', cm);
    expect(cm['ENTRY_KUBECONFIG']).toBe('in-cluster');
    const config = parseConfig(readSettings([], cm));
    expect(config.kubernetes).toEqual({ kubeconfig: 'in-cluster', context: null, namespaces: [] });
    expect(config.docker.hosts).toEqual([]);

    const scoped = await render('auth.jwksUrl=https://id.example/jwks', 'kubernetes.enabled=true', 'kubernetes.namespaces={shop,ops}', 'kubernetes.attach=true');
    expect(scoped.filter((d) => d['kind'] === 'ClusterRole')).toEqual([]);
    const roles = scoped.filter((d) => d['kind'] === 'Role');
    expect(roles.map((r) => r['metadata'].namespace).sort()).toEqual(['ops', 'shop']);
    for (const r of roles) expect(r['rules']).toEqual([...exact, { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] }]);
    expect(scoped.filter((d) => d['kind'] === 'RoleBinding').map((b) => b['subjects'][0].namespace)).toEqual(['entry', 'entry']);
    expect(parseConfig(readSettings([], one(scoped, 'ConfigMap', 'rel-entry')['data'])).kubernetes?.namespaces).toEqual(['shop', 'ops']);

    // Without it: no token, no RBAC.
    const plain = await render('auth.jwksUrl=https://id.example/jwks');
    expect(one(plain, 'Deployment', 'rel-entry')['spec'].template.spec.automountServiceAccountToken).toBe(false);
    expect(plain.filter((d) => /Role/.test(String(d['kind'])))).toEqual([]);
  });

  it('documents every value in values.yaml and in the chart README', () => {
    const doc = parseDocument(readFileSync(join(chart, 'values.yaml'), 'utf8'));
    const readme = readFileSync(join(chart, 'README.md'), 'utf8');
    const documented: string[] = [];
    const undocumented: string[] = [];
    const walk = (map: YAMLMap, path: string[], inherited: boolean) => {
      map.items.forEach((pair, i) => {
        const key = [...path, String((pair.key as { value: unknown }).value)];
        const comment = (pair.key as { commentBefore?: string }).commentBefore ?? (i === 0 ? map.commentBefore : undefined);
        const own = Boolean(comment && /(^|\n)\s*--/.test(comment));
        if (own) documented.push(key.join('.'));
        if (isMap(pair.value)) walk(pair.value, key, inherited || own);
        else if (!own && !inherited) undocumented.push(key.join('.'));
      });
    };
    walk(doc.contents as YAMLMap, [], false);
    expect(undocumented).toEqual([]);
    const inReadme = [...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    expect(inReadme.sort()).toEqual([...documented].sort());
  });
});

describe('deploy/systemd/entry-broker.service', () => {
  const unitFile = join(DEPLOY, 'systemd/entry-broker.service');
  const unit = readFileSync(unitFile, 'utf8');
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of unit.split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1]!;
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) keys.set(`${section}.${kv[1]}`, [...(keys.get(`${section}.${kv[1]}`) ?? []), kv[2]!]);
  }
  const get = (k: string) => keys.get(k)?.[0];

  it('passes systemd-analyze verify', async (ctx) => {
    if (!existsSync('/usr/bin/systemd-analyze')) ctx.skip('systemd-analyze is not installed (Debian package systemd; deploy/dev/test.sh installs it)');
    // verify wants the unit's binaries to exist: ExecStart's node is this machine's.
    const dir = mkdtempSync(join(tmpdir(), 'entry-unit-'));
    writeFileSync(join(dir, 'entry-broker.service'), unit.replace('/usr/bin/node', process.execPath));
    const r = await sh('systemd-analyze', ['verify', join(dir, 'entry-broker.service')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    // And it does catch mistakes.
    writeFileSync(join(dir, 'entry-broker.service'), unit.replace('ProtectSystem=strict', 'ProtectSystem=strickt'));
    const bad = await sh('systemd-analyze', ['verify', join(dir, 'entry-broker.service')], { encoding: 'utf8' }).then((x) => x.stderr, (e: { stderr: string }) => e.stderr);
    expect(bad).toMatch(/protect system value.*strickt/i);
  });

  it('is sandboxed, runs as its own user in the docker group, and reads a valid env file', () => {
    expect(get('Service.User')).toBe('entry');
    expect(get('Service.SupplementaryGroups')).toBe('docker');
    expect(get('Service.ProtectSystem')).toBe('strict');
    expect(get('Service.NoNewPrivileges')).toBe('yes');
    expect(get('Service.CapabilityBoundingSet')).toBe('');
    expect(get('Service.StateDirectory')).toBe('entry');
    expect(Number(get('Service.TimeoutStopSec'))).toBeGreaterThan(20);
    expect(get('Service.ExecStart')).toMatch(/ \/opt\/entry\/dist\/broker\/main\.js$/);
    expect(get('Install.WantedBy')).toBe('multi-user.target');
    expect(readFileSync(join(DEPLOY, 'systemd/entry.sysusers.conf'), 'utf8')).toMatch(/^m entry docker$/m);
    // The sample env file: every key a broker setting, the whole a valid config, paths in the unit's writable state dir.
    expect(get('Service.EnvironmentFile')).toBe('/etc/entry/entry-broker.env');
    const env = Object.fromEntries(
      readFileSync(join(DEPLOY, 'systemd/entry-broker.env'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    checkEntryKeys('entry-broker.env', env);
    expect(() => parseConfig(readSettings([], env))).not.toThrow();
    expect(env['ENTRY_RECORDINGS_DIR']!.startsWith(`/var/lib/${get('Service.StateDirectory')}/`)).toBe(true);
  });
});
