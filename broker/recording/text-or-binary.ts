import { isUtf8 } from 'node:buffer';

/**
 * Whether a chunk of output is binary rather than text: it holds a NUL byte, or it is not
 * UTF-8 once a character split at either edge (the rest arrives in the next chunk) is set aside.
 */
export function looksBinary(data: Uint8Array): boolean {
  if (data.includes(0)) return true;
  let start = 0;
  while (start < 3 && start < data.length && (data[start]! & 0xc0) === 0x80) start++;
  let end = data.length;
  for (let back = 1; back <= 3 && back <= end - start; back++) {
    const b = data[end - back]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = (b & 0xe0) === 0xc0 ? 2 : (b & 0xf0) === 0xe0 ? 3 : (b & 0xf8) === 0xf0 ? 4 : 1;
    if (back < need) end -= back;
    break;
  }
  return !isUtf8(data.subarray(start, end));
}
