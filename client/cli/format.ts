/**
 * `text` with its control characters (C0, DEL, C1) made blanks, for a terminal: what the broker
 * lists comes from others (a command another user ran, a name, the engine's words), and an
 * escape in it would be the terminal's to act on.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/** A plain table: columns padded to their widest cell, two spaces apart, no trailing blanks; cells printable. */
export function table(header: string[], rows: string[][]): string {
  const cells = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...cells.map(line)].join('\n') + '\n';
}

/** A duration in the largest whole unit, like docker ps: 45s, 12m, 5h, 3d. */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** "in 59m" / "5m ago" for a moment relative to now. */
export function relative(epochMs: number, now = Date.now()): string {
  return epochMs >= now ? `in ${shortDuration(epochMs - now)}` : `${shortDuration(now - epochMs)} ago`;
}
