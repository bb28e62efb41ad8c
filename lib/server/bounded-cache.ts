/**
 * A bounded cache (past directory listings, walk matches): the oldest entry
 * goes first once there are more than `maxEntries`, or once their sizes add
 * up to more than `maxSize` (the newest always stays).
 */
export class BoundedCache<V> {
  private readonly entries = new Map<string, V>();
  private total = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxSize: number,
    /** The size of a value (default: its `length`). */
    private readonly sizeOf: (value: V) => number = (v) => (v as { length: number }).length,
  ) {}

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  set(key: string, value: V): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, value);
    this.total += this.sizeOf(value);
    while (
      this.entries.size > this.maxEntries ||
      (this.total > this.maxSize && this.entries.size > 1)
    ) {
      const [oldest, dropped] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.total -= this.sizeOf(dropped);
    }
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }
}
