import WebSocket from 'ws';

/**
 * A Node inspector session on a child process started with NODE_OPTIONS=--inspect=127.0.0.1:0:
 * forces full garbage collections and counts live objects by class, so a memory figure can be
 * taken without the garbage V8 has not yet collected, and a leak named by what leaks.
 */
export class NodeInspector {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private snapshotChunks: string[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { id?: number; method?: string; params?: { chunk?: string }; result?: unknown; error?: { message: string } };
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk') this.snapshotChunks.push(m.params!.chunk!);
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error.message));
      else p?.resolve(m.result);
    });
  }

  /** Connects to the inspector a child announced on stderr ("Debugger listening on ws://…"). */
  static async attach(logs: readonly string[], timeoutMs = 5_000): Promise<NodeInspector> {
    const deadline = Date.now() + timeoutMs;
    let url: string | undefined;
    while (!(url = logs.map((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1]).find(Boolean))) {
      if (Date.now() > deadline) throw new Error('the child announced no inspector (start it with --inspect=127.0.0.1:0)');
      await new Promise((r) => setTimeout(r, 20));
    }
    return NodeInspector.connect(url);
  }

  /** Connects to an inspector's WebSocket URL. */
  static async connect(url: string): Promise<NodeInspector> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new NodeInspector(ws);
  }

  call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Two full collections (the second frees what finalizers of the first released). */
  async collectGarbage(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
  }

  async heapUsed(): Promise<number> {
    return (await this.call<{ usedSize: number }>('Runtime.getHeapUsage')).usedSize;
  }

  /** Live objects whose constructor has one of `names`, from a heap snapshot (after a full GC). */
  async countObjects(names: readonly string[]): Promise<Record<string, number>> {
    const counts = Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number>;
    for (const { type, name } of await this.snapshotNodes()) {
      if (type === 'object' && name in counts) counts[name]!++;
    }
    return counts;
  }

  /** For each of `needles`, how many live strings contain it, from a heap snapshot (after a full GC). */
  async countStrings(needles: readonly string[]): Promise<number[]> {
    const counts = needles.map(() => 0);
    for (const { type, name } of await this.snapshotNodes()) {
      if (type !== 'string') continue;
      needles.forEach((n, i) => {
        if (name.includes(n)) counts[i]!++;
      });
    }
    return counts;
  }

  /** Every node of a heap snapshot: its type (object, string, …) and name (a constructor, a string's value). */
  private async snapshotNodes(): Promise<Array<{ type: string; name: string }>> {
    this.snapshotChunks = [];
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    const snap = JSON.parse(this.snapshotChunks.join('')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    this.snapshotChunks = [];
    const fields = snap.snapshot.meta.node_fields;
    const width = fields.length;
    const typeAt = fields.indexOf('type');
    const nameAt = fields.indexOf('name');
    const types = snap.snapshot.meta.node_types[0];
    const nodes: Array<{ type: string; name: string }> = [];
    for (let i = 0; i < snap.nodes.length; i += width) nodes.push({ type: types[snap.nodes[i + typeAt]!]!, name: snap.strings[snap.nodes[i + nameAt]!]! });
    return nodes;
  }

  close(): void {
    this.ws.close();
  }
}
