import { writeFileSync } from 'node:fs';

export interface KubeconfigContext {
  name: string;
  /** The cluster it names: the file's one cluster unless given (a missing one, to test that). */
  cluster?: string;
  namespace?: string;
}

/**
 * Writes a kubeconfig of one cluster and one token user `u` to `file`, with the given contexts
 * (all of them for `u`); the first is the current one.
 */
export function writeKubeconfig(
  file: string,
  o: { cluster: { name: string; server: string; insecure?: boolean }; token: string; contexts: [KubeconfigContext, ...KubeconfigContext[]] },
): void {
  const cluster = o.cluster.insecure ? { server: o.cluster.server, 'insecure-skip-tls-verify': true } : { server: o.cluster.server };
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: o.cluster.name, cluster }],
      users: [{ name: 'u', user: { token: o.token } }],
      contexts: o.contexts.map((c) => ({ name: c.name, context: { cluster: c.cluster ?? o.cluster.name, user: 'u', namespace: c.namespace } })),
      'current-context': o.contexts[0].name,
    }),
  );
}
