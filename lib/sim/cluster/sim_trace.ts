/**
 * The fingerprint of a whole-cluster run: every frame delivered (time,
 * sender, receiver and bytes) and every cluster, fault and client event go
 * into one 64-bit FNV-1a hash (two 32-bit lanes), and the last events are
 * kept as lines. Two runs of one seed must print the same hash: that is
 * what "replay is byte-identical" is checked by.
 *
 * @module
 */

/** Events kept as text for a failure report. */
export const traceLinesMax = 200;

const encoder = new TextEncoder();

/**
 * A running hash and the tail of the event log.
 *
 * @example
 * ```ts
 * const trace = new RunTrace();
 * trace.event(0, "start", 1, "incarnation 1");
 * trace.hex(); // "9f3c...", 16 hex digits
 * ```
 */
export class RunTrace {
  #low = 0x811c9dc5;
  #high = 0x01000193 ^ 0x5bd1e995;
  readonly #lines: string[] = [];
  #next = 0;
  events = 0;
  frames = 0;

  /** A cluster, fault or client event. */
  event(time: number, kind: string, node: number, detail: string): void {
    this.events++;
    const line = `t=${time} n${node} ${kind}${detail === "" ? "" : ` ${detail}`}`;
    this.#bytes(encoder.encode(line));
    if (this.#lines.length < traceLinesMax) this.#lines.push(line);
    else {
      this.#lines[this.#next] = line;
      this.#next = (this.#next + 1) % traceLinesMax;
    }
  }

  /** A frame delivered from `from` to `to`. */
  frame(time: number, from: number, to: number, bytes: Uint8Array): void {
    this.frames++;
    this.#number(time);
    this.#number(from * 65536 + to);
    this.#bytes(bytes);
  }

  /** The hash so far, as 16 hex digits. */
  hex(): string {
    return (this.#high >>> 0).toString(16).padStart(8, "0") +
      (this.#low >>> 0).toString(16).padStart(8, "0");
  }

  /** The last events, oldest first. */
  lines(): string[] {
    return [...this.#lines.slice(this.#next), ...this.#lines.slice(0, this.#next)];
  }

  #number(value: number): void {
    this.#byte(value & 0xff);
    this.#byte((value >>> 8) & 0xff);
    this.#byte((value >>> 16) & 0xff);
    this.#byte((value >>> 24) & 0xff);
  }

  #bytes(bytes: Uint8Array): void {
    let low = this.#low;
    let high = this.#high;
    for (let index = 0; index < bytes.length; index++) {
      low = Math.imul(low ^ bytes[index], 0x01000193);
      high = Math.imul(high ^ bytes[index] ^ (low >>> 24), 0x01000193);
    }
    this.#low = low;
    this.#high = high;
  }

  #byte(value: number): void {
    this.#low = Math.imul(this.#low ^ value, 0x01000193);
    this.#high = Math.imul(this.#high ^ value ^ (this.#low >>> 24), 0x01000193);
  }
}
