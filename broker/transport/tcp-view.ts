import { readFile } from 'node:fs/promises';

/**
 * What the kernel knows about one TCP connection, from /proc/net/tcp{,6} (Linux).
 *  - `txQueue`: bytes written and not yet acknowledged by the peer's kernel;
 *  - `unanswered`: retransmissions or zero-window probes the peer has not answered yet
 *    (icsk_retransmits, icsk_probes_out). Both drop to 0 on the peer's next ACK, so a value
 *    that stays above 0 means the peer's kernel has gone quiet, not just its application;
 *    but see UNANSWERED_TRIES_GONE.
 */
export interface KernelTcpState {
  txQueue: number;
  unanswered: number;
}

/**
 * Unanswered tries that show a peer gone once --peer-timeout has passed: two in a row. A window
 * probe answered while the window stays shut can leave icsk_probes_out at 1 until the next probe
 * (Linux 6.x, seen on loopback: the probe 0.9 s into a closed window held 1 for its whole 0.9 s
 * interval, in 6 of 6 runs), and probes are spaced up to 2 minutes apart: a paused reader would
 * read as gone. A gone peer answers neither try, so the count goes on to 2 at the next one.
 */
export const UNANSWERED_TRIES_GONE = 2;

/** How soon a peer past --peer-timeout with one unanswered try is looked at again (the snapshot is shared: one read a tick). */
export const UNANSWERED_RECHECK_MS = 1_000;

export interface TcpEndpoints {
  localAddress?: string | undefined;
  localPort?: number | undefined;
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}

/** How long one read of /proc/net/tcp serves every connection that asks. */
const SNAPSHOT_MS = 500;

type Table = Map<string, KernelTcpState>;

/**
 * One shared reader of the kernel's TCP table: many sessions checked in the same tick cost one
 * read. Returns undefined where the table cannot be read (not Linux, /proc hidden).
 */
export class KernelTcpView {
  private snapshots = new Map<string, { at: number; table: Promise<Table | undefined> }>();

  async lookup(socket: TcpEndpoints): Promise<KernelTcpState | undefined> {
    const local = kernelAddress(socket.localAddress);
    const remote = kernelAddress(socket.remoteAddress);
    if (!local || !remote || !socket.localPort || !socket.remotePort || local.file !== remote.file) return undefined;
    const table = await this.table(local.file);
    return table?.get(`${local.hex}:${port(socket.localPort)} ${remote.hex}:${port(socket.remotePort)}`);
  }

  private table(file: 'tcp' | 'tcp6'): Promise<Table | undefined> {
    const now = Date.now();
    const cached = this.snapshots.get(file);
    if (cached && now - cached.at < SNAPSHOT_MS) return cached.table;
    const table = readFile(`/proc/net/${file}`, 'latin1').then(parseTable, () => undefined);
    this.snapshots.set(file, { at: now, table });
    return table;
  }
}

export const kernelTcpView = new KernelTcpView();

function port(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** Columns: sl local rem st tx_queue:rx_queue tr:when retrnsmt uid probes inode … */
export function parseTable(text: string): Table {
  const table: Table = new Map();
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 10) continue;
    const txQueue = Number.parseInt(f[4]!.split(':')[0]!, 16);
    const unanswered = Number.parseInt(f[6]!, 16) + Number.parseInt(f[8]!, 10);
    table.set(`${f[1]} ${f[2]}`, { txQueue, unanswered });
  }
  return table;
}

/**
 * An address as the kernel prints it: each 32-bit word of the network-order address in host
 * (little-endian) order, in hex. IPv4-mapped IPv6 peers of a dual-stack listener sit in tcp6.
 */
export function kernelAddress(address: string | undefined): { file: 'tcp' | 'tcp6'; hex: string } | undefined {
  if (!address) return undefined;
  const bytes = addressBytes(address.replace(/%.*$/, ''));
  if (!bytes) return undefined;
  let hex = '';
  for (let w = 0; w < bytes.length; w += 4) {
    for (let b = 3; b >= 0; b--) hex += bytes[w + b]!.toString(16).toUpperCase().padStart(2, '0');
  }
  return { file: bytes.length === 4 ? 'tcp' : 'tcp6', hex };
}

function v4Bytes(a: string): number[] | undefined {
  const parts = a.split('.').map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) ? parts : undefined;
}

function addressBytes(a: string): number[] | undefined {
  if (!a.includes(':')) return v4Bytes(a);
  const [head, tail] = a.split('::') as [string, string | undefined];
  const words = (s: string | undefined): number[] | undefined => {
    if (!s) return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = v4Bytes(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        const n = Number.parseInt(part, 16);
        if (!/^[0-9a-f]{1,4}$/i.test(part)) return undefined;
        out.push(n);
      }
    }
    return out;
  };
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  if (!h || !t) return undefined;
  const fill = 8 - h.length - t.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  const all = [...h, ...new Array<number>(fill).fill(0), ...t];
  return all.flatMap((w) => [w >> 8, w & 255]);
}
