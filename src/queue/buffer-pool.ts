// Spare buffers of a few fixed sizes, kept for the next large message so that
// its reads and writes need no new allocation. The df writer and the body
// sender of deliveries each keep one pool.

export class BufferPool {
  private readonly spares = new Map<number, Buffer[]>();

  /** Keeps at most `keep` spare buffers of each of `sizes`; other sizes are never kept. */
  constructor(
    sizes: number[],
    private readonly keep: number,
  ) {
    for (const size of sizes) this.spares.set(size, []);
  }

  /** Returns a spare buffer of `size` bytes, or a new one; its content is not cleared. */
  take(size: number): Buffer {
    return this.spares.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** Keeps `buffer` for a later take() if there is room for its size. */
  give(buffer: Buffer): void {
    const spares = this.spares.get(buffer.length);
    if (spares !== undefined && spares.length < this.keep) spares.push(buffer);
  }
}
