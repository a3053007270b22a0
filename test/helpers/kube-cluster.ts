import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './repo.js';

/**
 * The one-node Kubernetes 1.20 of deploy/dev/kube-up.sh, for integration suites.
 *
 * `startKubeCluster()` reuses a cluster that is already up (a developer's, or one an earlier
 * suite or another run started) and otherwise starts one. A cluster started for tests is stopped
 * after the last vitest run using it has exited (deploy/dev/kube-lease.sh), so the next suite
 * file does not pay the start-up again; one started by hand is left up. ENTRY_KUBE_KEEP=1 keeps
 * a cluster started by the tests up as well.
 *
 * Pods run on the cluster's own dockerd; nothing can be pulled, so use the offline images in
 * `demoImages` with `imagePullPolicy: IfNotPresent`.
 */

// From the checkout's root: this file also runs compiled, from dist/test/helpers/ (the bench).
const dev = join(ROOT, 'deploy/dev/');
const stateDir = process.env.ENTRY_KUBE_STATE ?? '/var/lib/entry/kube';
const run = promisify(execFile);

/** What kube-up.sh writes to <state>/cluster.json. */
interface ClusterFile {
  apiserverUrl: string;
  kubeconfig: string;
  adminTokenFile: string;
  caFile: string;
  dockerHost: string;
  binDir: string;
  nodeName: string;
  pauseImage: string;
  demoImages: string[];
}

/** An RBAC rule, as in a Role. */
export interface PolicyRule {
  apiGroups?: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/**
 * What the broker needs to exec: pods get/list/watch, and pods/exec both get and create. Kubernetes
 * before 1.30 authorizes a WebSocket exec (a GET) as `get`, SPDY's POST as `create`, which newer
 * servers ask of WebSockets too.
 */
export const EXEC_RULES: PolicyRule[] = [
  { resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { resources: ['pods/exec'], verbs: ['get', 'create'] },
];

export interface KubeIdentity {
  /** `system:serviceaccount:<namespace>:<name>` */
  user: string;
  token: string;
  /** A kubeconfig with only this identity (the cluster's CA embedded), in a temporary directory. */
  kubeconfigPath: string;
  /** Deletes the account, its role and binding, and the kubeconfig. */
  remove(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  body: any;
}

export interface KubeCluster {
  /** Where kube-up.sh keeps the cluster's state (ENTRY_KUBE_STATE). */
  stateDir: string;
  kubeconfigPath: string;
  /** https://127.0.0.1:6443 */
  apiserverUrl: string;
  /** Static token of user `entry-admin` in group `system:masters`. */
  adminToken: string;
  /** PEM of the CA the apiserver's certificate is signed by. */
  ca: Buffer;
  caFile: string;
  /** The cluster's own Docker engine, where pods' containers run (unix://…). */
  dockerHost: string;
  /** kube-apiserver, kubelet, …, kubectl. */
  binDir: string;
  nodeName: string;
  demoImages: string[];
  /** Whether this process started the cluster (and a watcher will stop it after the run). */
  startedHere: boolean;
  /** A REST call with the admin token (or `token`); JSON in and out. */
  api(method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse>;
  /** Runs kubectl with the admin kubeconfig; resolves to stdout. */
  kubectl(args: string[], input?: string): Promise<string>;
  /** A service account with exactly `rules` in `namespace` (a ClusterRole when `clusterWide`). */
  createIdentity(opts: { name: string; namespace?: string; rules: PolicyRule[]; clusterWide?: boolean }): Promise<KubeIdentity>;
  /** Creates `namespace` and resolves once its default service account has its token (pods need it). */
  createNamespace(namespace: string): Promise<void>;
  /** Resolves when the pod is Running (and all its containers ready); fails on timeout. */
  waitForPodRunning(namespace: string, name: string, timeoutMs?: number): Promise<any>;
  /**
   * Stops only the apiserver (pods keep running); `startApiserver` brings it back. The apiserver
   * drains its watches for 10 s and more on SIGTERM, so it is killed after 3 s, like an outage.
   * A concurrent vitest run that starts using the cluster meanwhile restarts it.
   */
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
}

/** How long starting may take: a machine without the cached binaries builds them first (~12 min). */
export function kubeStartTimeoutMs(): number {
  try {
    execFileSync('bash', [join(dev, 'kube-build.sh'), '--print'], { stdio: 'pipe' });
    return 180_000;
  } catch {
    return 30 * 60_000;
  }
}

let cluster: Promise<KubeCluster> | undefined;

/** The cluster, started once per test process (reused when already up). */
export function startKubeCluster(): Promise<KubeCluster> {
  cluster ??= open().catch((err) => {
    cluster = undefined;
    throw err;
  });
  return cluster;
}

/**
 * Takes a lease on the cluster for this vitest run (kube-lease.sh), starting the cluster when it
 * is not up. A detached watcher gives the lease back once the vitest process exits; the last
 * lease stops a cluster that a lease started, so overlapping runs never pull it from each other.
 */
async function open(): Promise<KubeCluster> {
  const vitestPid = typeof process.send === 'function' ? process.ppid : process.pid;
  // The watcher first: a start that fails half-way is cleaned up by the release too.
  if (!leased.has(vitestPid)) {
    leased.add(vitestPid);
    const script = `while kill -0 ${vitestPid} 2>/dev/null; do sleep 1; done; exec bash "${join(dev, 'kube-lease.sh')}" release ${vitestPid}`;
    spawn('bash', ['-c', script], { detached: true, stdio: 'ignore', env: { ...process.env, ENTRY_KUBE_STATE: stateDir } }).unref();
  }
  const startedHere = (await leaseScript('acquire', vitestPid)) === 'started';
  const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterFile;
  const ca = readFileSync(info.caFile);
  const adminToken = readFileSync(info.adminTokenFile, 'utf8').trim();
  const api = (method: string, path: string, body?: unknown, token = adminToken) => call(info.apiserverUrl, ca, token, method, path, body);
  const kubectl = async (args: string[], input?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = execFile(join(info.binDir, 'kubectl'), ['--kubeconfig', info.kubeconfig, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      );
      child.stdin!.end(input ?? '');
    });

  return {
    stateDir,
    kubeconfigPath: info.kubeconfig,
    apiserverUrl: info.apiserverUrl,
    adminToken,
    ca,
    caFile: info.caFile,
    dockerHost: info.dockerHost,
    binDir: info.binDir,
    nodeName: info.nodeName,
    demoImages: info.demoImages,
    startedHere,
    api,
    kubectl,
    createIdentity: (opts) => createIdentity(info, ca, api, opts),
    createNamespace: async (namespace) => {
      const created = await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
      if (created.status !== 201) throw new Error(`namespace ${namespace} not created: HTTP ${created.status} ${JSON.stringify(created.body)}`);
      // A fresh namespace's default account gets its token from the controller-manager shortly after.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const sa = await api('GET', `/api/v1/namespaces/${namespace}/serviceaccounts/default`);
        if (sa.status === 200 && sa.body.secrets?.length) return;
        if (Date.now() > deadline) throw new Error(`namespace ${namespace}: its default service account has no token after 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    waitForPodRunning: async (namespace, name, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      for (;;) {
        const res = await api('GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
        last = res.body;
        const ready = last?.status?.containerStatuses?.every((c: any) => c.ready);
        if (res.status === 200 && last.status?.phase === 'Running' && ready) return last;
        if (Date.now() > deadline) throw new Error(`pod ${namespace}/${name} not Running within ${timeoutMs} ms: ${JSON.stringify(last?.status ?? last)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stopApiserver: async () => {
      await run('bash', ['-c', `source "${dev}lib.sh"; source "${dev}kube-lib.sh"; stop_component kube-apiserver 3`], { env: { ...process.env, ENTRY_KUBE_STATE: stateDir } });
    },
    startApiserver: async () => {
      await runScript('kube-up.sh');
    },
  };
}

const leased = new Set<number>();

function leaseScript(cmd: 'acquire' | 'release', pid: number): Promise<string> {
  return runScript('kube-lease.sh', [cmd, String(pid)]);
}

function runScript(name: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(dev, name), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ENTRY_KUBE_STATE: stateDir } });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-8000);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${name} exited ${code}:\n${err}`))));
  });
}

function call(base: string, ca: Buffer, token: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    // The apiserver refuses a PATCH sent as application/json (415): a list is a JSON patch.
    const type = method === 'PATCH' ? (Array.isArray(body) ? 'application/json-patch+json' : 'application/merge-patch+json') : 'application/json';
    const req = request(
      new URL(path, base),
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': type, 'content-length': payload.length } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: any = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (e.g. /readyz): keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function must(res: Promise<ApiResponse>, what: string, okConflict = false): Promise<any> {
  const r = await res;
  if (r.status >= 200 && r.status < 300) return r.body;
  if (okConflict && r.status === 409) return r.body;
  throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
}

async function createIdentity(
  info: ClusterFile,
  ca: Buffer,
  api: KubeCluster['api'],
  opts: { name: string; namespace?: string; rules: PolicyRule[]; clusterWide?: boolean },
): Promise<KubeIdentity> {
  const ns = opts.namespace ?? 'default';
  const { name } = opts;
  const roleKind = opts.clusterWide ? 'ClusterRole' : 'Role';
  const rolePath = opts.clusterWide ? '/apis/rbac.authorization.k8s.io/v1/clusterroles' : `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`;
  const bindingPath = opts.clusterWide ? '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings' : `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`;
  // Cluster-wide names are shared by every namespace: qualify them.
  const roleName = opts.clusterWide ? `${ns}-${name}` : name;
  const rules = opts.rules.map((r) => ({ apiGroups: [''], ...r }));

  await must(api('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } }), `create serviceaccount ${ns}/${name}`);
  await must(api('POST', rolePath, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: roleKind, metadata: { name: roleName }, rules }), `create ${roleKind} ${roleName}`);
  await must(
    api('POST', bindingPath, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: `${roleKind}Binding`,
      metadata: { name: roleName },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: roleName },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    }),
    `create ${roleKind}Binding ${roleName}`,
  );

  // Kubernetes 1.20's token controller writes the account's token into a Secret shortly after.
  const deadline = Date.now() + 30_000;
  let token = '';
  while (!token) {
    const sa = await must(api('GET', `/api/v1/namespaces/${ns}/serviceaccounts/${name}`), `get serviceaccount ${ns}/${name}`);
    const secretName = sa.secrets?.[0]?.name as string | undefined;
    if (secretName) {
      const secret = await api('GET', `/api/v1/namespaces/${ns}/secrets/${secretName}`);
      if (secret.status === 200 && secret.body.data?.token) token = Buffer.from(secret.body.data.token, 'base64').toString();
    }
    if (!token) {
      if (Date.now() > deadline) throw new Error(`no token for serviceaccount ${ns}/${name} within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'entry-kube-id-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  const user = `system:serviceaccount:${ns}:${name}`;
  writeFileSync(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'entry-kube', cluster: { server: info.apiserverUrl, 'certificate-authority-data': ca.toString('base64') } }],
      users: [{ name, user: { token } }],
      contexts: [{ name: `${name}@entry-kube`, context: { cluster: 'entry-kube', user: name, namespace: ns } }],
      'current-context': `${name}@entry-kube`,
    }),
    { mode: 0o600 },
  );
  return {
    user,
    token,
    kubeconfigPath,
    remove: async () => {
      await api('DELETE', `${bindingPath}/${roleName}`);
      await api('DELETE', `${rolePath}/${roleName}`);
      await api('DELETE', `/api/v1/namespaces/${ns}/serviceaccounts/${name}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True when this machine can run the cluster at all (root, Debian tools), for `describe.skipIf`. */
export function kubeClusterPossible(): boolean {
  try {
    return process.getuid?.() === 0 && execFileSync('sh', ['-c', 'command -v apt-get'], { stdio: 'pipe' }).length > 0;
  } catch {
    return false;
  }
}
