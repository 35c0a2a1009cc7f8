/**
 * A min-heap of timed events ordered by (time, insertion sequence), so that
 * simultaneous events run in a deterministic order.
 *
 * @module
 */

interface Slot<T> {
  time: number;
  sequence: number;
  value: T;
}

/**
 * Priority queue of events on the virtual clock.
 *
 * @example
 * ```ts
 * const queue = new EventQueue<string>();
 * queue.push(5, "later");
 * queue.push(1, "sooner");
 * queue.pop()?.value; // "sooner"
 * ```
 */
export class EventQueue<T> {
  readonly #heap: Slot<T>[] = [];
  #sequence = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(time: number, value: T): void {
    const heap = this.#heap;
    heap.push({ time, sequence: this.#sequence++, value });
    let child = heap.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!before(heap[child], heap[parent])) break;
      [heap[child], heap[parent]] = [heap[parent], heap[child]];
      child = parent;
    }
  }

  peekTime(): number | undefined {
    return this.#heap[0]?.time;
  }

  pop(): Slot<T> | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let parent = 0;
      for (;;) {
        const left = parent * 2 + 1;
        const right = left + 1;
        let smallest = parent;
        if (left < heap.length && before(heap[left], heap[smallest])) smallest = left;
        if (right < heap.length && before(heap[right], heap[smallest])) smallest = right;
        if (smallest === parent) break;
        [heap[smallest], heap[parent]] = [heap[parent], heap[smallest]];
        parent = smallest;
      }
    }
    return top;
  }
}

function before<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.sequence < b.sequence);
}
