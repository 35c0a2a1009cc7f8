/**
 * A fixed-size ring of the most recent simulation events, formatted only
 * when a violation is reported (formatting every event would dominate the
 * simulator's run time).
 *
 * @module
 */

/** One recorded event: a kind and up to three details. */
interface TraceEvent {
  time: number;
  kind: string;
  node: number;
  detail: string | number;
  extra: string | number;
}

/**
 * Keeps the last `eventsMax` events.
 *
 * @example
 * ```ts
 * const trace = new Trace(30);
 * trace.record(10, "crash", 2, "", "");
 * trace.format(); // ["t=10 n2 crash"]
 * ```
 */
export class Trace {
  readonly #events: TraceEvent[] = [];
  readonly #eventsMax: number;
  #next = 0;

  constructor(eventsMax: number) {
    this.#eventsMax = eventsMax;
  }

  record(
    time: number,
    kind: string,
    node: number,
    detail: string | number,
    extra: string | number,
  ): void {
    if (this.#events.length < this.#eventsMax) {
      this.#events.push({ time, kind, node, detail, extra });
      return;
    }
    const slot = this.#events[this.#next];
    slot.time = time;
    slot.kind = kind;
    slot.node = node;
    slot.detail = detail;
    slot.extra = extra;
    this.#next = (this.#next + 1) % this.#eventsMax;
  }

  /** Events oldest first, one line each. */
  format(): string[] {
    const ordered = [...this.#events.slice(this.#next), ...this.#events.slice(0, this.#next)];
    return ordered.map((event) => {
      const parts = [`t=${event.time}`, `n${event.node}`, event.kind];
      if (event.detail !== "") parts.push(String(event.detail));
      if (event.extra !== "") parts.push(String(event.extra));
      return parts.join(" ");
    });
  }
}
