/**
 * Drops the first `count` bytes from a queue of sent chunks, once the peer has acknowledged
 * them (the resume protocol's INPUT_ACK): what stays is what a resume sends again. The queue is
 * changed in place; a chunk cut in the middle keeps its unacknowledged tail.
 */
export function dropAcknowledged(queue: Uint8Array[], count: number): void {
  let drop = count;
  while (drop > 0 && queue.length > 0) {
    const first = queue[0]!;
    if (first.length <= drop) {
      queue.shift();
      drop -= first.length;
    } else {
      queue[0] = first.subarray(drop);
      drop = 0;
    }
  }
}
