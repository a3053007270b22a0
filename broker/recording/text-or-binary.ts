import { isUtf8 } from 'node:buffer';

/** Continuation bytes (up to 3) at the start of a chunk: the end of a character cut by the last chunk. */
export function leadingContinuations(data: Uint8Array): number {
  let start = 0;
  while (start < 3 && start < data.length && (data[start]! & 0xc0) === 0x80) start++;
  return start;
}

/**
 * Where a character cut at the end of a chunk begins (the rest of it arrives in the next
 * chunk), or `data.length` when the chunk ends on a whole character.
 */
export function completeEnd(data: Uint8Array, start = 0): number {
  const end = data.length;
  for (let back = 1; back <= 3 && back <= end - start; back++) {
    const b = data[end - back]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = (b & 0xe0) === 0xc0 ? 2 : (b & 0xf0) === 0xe0 ? 3 : (b & 0xf8) === 0xf0 ? 4 : 1;
    return back < need ? end - back : end;
  }
  return end;
}

/**
 * Whether a chunk of output is binary rather than text: it holds a NUL byte, or it is not
 * UTF-8 once a character split at either edge (the rest arrives in the next chunk) is set aside.
 */
export function looksBinary(data: Uint8Array): boolean {
  if (data.includes(0)) return true;
  const start = leadingContinuations(data);
  return !isUtf8(data.subarray(start, completeEnd(data, start)));
}
