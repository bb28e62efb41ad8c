/** A first-in first-out array with O(1) amortised removal from the front. */
export class Deque<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The `i`-th item from the front. */
  at(i: number): T | undefined {
    return this.items[this.head + i];
  }

  get first(): T | undefined {
    return this.items[this.head];
  }

  get last(): T | undefined {
    return this.items[this.items.length - 1];
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }

  /** Index (from the front) of the first item for which `after` is true; `length` when none. Items must be sorted so that `after` is monotonic. */
  firstWhere(after: (item: T) => boolean): number {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (after(this.items[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo - this.head;
  }
}
