/**
 * Keeps TTY output on UTF-8 character boundaries: original clients decode every STDOUT
 * message on its own, so a character split across two messages would print as two U+FFFD.
 * `split` returns the longest prefix ending on a boundary and keeps the tail for next time.
 */
export class Utf8Boundary {
  private carry: Uint8Array | undefined;

  /** Returns the bytes to send now (possibly empty). The result may alias `chunk`. */
  split(chunk: Uint8Array): Uint8Array {
    let data = chunk;
    if (this.carry) {
      data = new Uint8Array(this.carry.length + chunk.length);
      data.set(this.carry, 0);
      data.set(chunk, this.carry.length);
      this.carry = undefined;
    }
    const cut = completePrefixLength(data);
    if (cut < data.length) {
      // Copy the tail: `data` may be a view into a buffer its owner reuses.
      this.carry = data.slice(cut);
      return data.subarray(0, cut);
    }
    return data;
  }

  /** Whatever is left (an incomplete character at the very end of the stream). */
  flush(): Uint8Array | undefined {
    const rest = this.carry;
    this.carry = undefined;
    return rest;
  }
}

/**
 * Length of the longest prefix of `data` that does not end inside a multi-byte character.
 * Looks at most 3 bytes back; invalid sequences are passed through (they are not ours to fix).
 */
export function completePrefixLength(data: Uint8Array): number {
  const n = data.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = data[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    let need: number;
    if ((b & 0xe0) === 0xc0) need = 2;
    else if ((b & 0xf0) === 0xe0) need = 3;
    else if ((b & 0xf8) === 0xf0) need = 4;
    else return n; // ASCII or invalid lead: nothing pending
    return back < need ? n - back : n;
  }
  return n;
}
