/**
 * Runs shorter than this many 4-byte words are scanned a byte at a time: a word view is an
 * allocation, which a short run does not pay back.
 */
const MIN_WORDS = 8;

/** What each byte becomes inside a JSON string, as `JSON.stringify` writes it: 0 for itself. */
export const ESCAPE = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) ESCAPE[b] = 0x75; // \u00XX
ESCAPE[0x08] = 0x62; // \b
ESCAPE[0x09] = 0x74; // \t
ESCAPE[0x0a] = 0x6e; // \n
ESCAPE[0x0c] = 0x66; // \f
ESCAPE[0x0d] = 0x72; // \r
ESCAPE[0x22] = 0x22; // \"
ESCAPE[0x5c] = 0x5c; // \\

/** Whether a byte stands for itself inside a JSON string: all but controls, `"` and `\`. */
export function isPlain(b: number): boolean {
  return ESCAPE[b] === 0;
}

/**
 * Where the run of plain bytes starting at `from` ends (at most `to`). Long runs are read four
 * bytes at a time, in place: for a word `x`, `(x - 0x20202020) & ~x` has a byte's top bit set
 * only if some byte is below 0x20, and `(y - 0x01010101) & ~y` with `y = x ^ 0x22222222` only if
 * some byte is 0x22 (the same for 0x5c). A word that may hold one is then read byte by byte.
 * Text made of long plain runs is most of what a busy recording writes; this is about twice as
 * fast as the byte loop on it.
 */
export function plainEnd(src: Uint8Array, from: number, to: number): number {
  let k = from;
  // Up to a 4-byte boundary of the memory beneath, where a word view can start.
  while (k < to && ((src.byteOffset + k) & 3) !== 0) {
    if (!isPlain(src[k]!)) return k;
    k++;
  }
  const words = (to - k) >> 2;
  if (words >= MIN_WORDS) {
    const w = new Int32Array(src.buffer, src.byteOffset + k, words);
    let i = 0;
    for (; i < words; i++) {
      const x = w[i]!;
      const quote = x ^ 0x22222222;
      const backslash = x ^ 0x5c5c5c5c;
      const special = ((x - 0x20202020) & ~x) | ((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash);
      if ((special & 0x80808080) !== 0) break;
    }
    k += 4 * i;
  }
  while (k < to && isPlain(src[k]!)) k++;
  return k;
}
