import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type Docker from 'dockerode';
import type { Figure } from './figure.js';

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGB: number;
  kernel: string;
  node: string;
  docker: string;
}

export async function describeMachine(docker: Docker): Promise<Machine> {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // os.cpus() it is.
  }
  const version = await docker.version().catch(() => undefined);
  return {
    nproc,
    cpu: model,
    memoryGB: Math.round(totalmem() / 1e9),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    docker: version?.Version ?? 'unknown',
  };
}

const show = (v: number | null | undefined, suffix = ''): string => (v === null || v === undefined ? '—' : `${v}${suffix}`);

/** The results as a fixed-width table (also valid Markdown). */
export function table(figures: Figure[]): string {
  const rows = [
    ['figure', 'entry', 'direct', 'ratio', 'added', 'unit', 'runs', 'target', 'met'],
    ...figures.map((f) => [
      f.name,
      f.error ? 'error' : show(f.entry),
      show(f.direct),
      show(f.ratio),
      f.added === undefined ? '' : show(f.added),
      f.unit,
      String(f.runs),
      f.target ?? '',
      f.met === true ? 'yes' : f.met === false ? 'no' : '',
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

export function machineLine(m: Machine): string {
  return `${m.nproc} × ${m.cpu}, ${m.memoryGB} GB RAM, Linux ${m.kernel}, Node ${m.node}, Docker ${m.docker}`;
}
