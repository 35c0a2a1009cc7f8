// A Server-Sent Events reader over fetch(), so that the Bearer token can be
// sent (EventSource cannot send headers). It resumes like EventSource: after
// a dropped stream it reconnects with Last-Event-ID, the offset of the last
// message received, and the peer continues right after it.

import { authHeaders } from "./api.js";

const reconnectDelayDefaultMs = 1000;
const reconnectDelayMaxMs = 5000;

/**
 * Follows `url` until stop(). Callbacks:
 *   onSubscribed({ from_offset, ... }), onMessage({ offset, message, ... }, id),
 *   onState("connecting" | "live" | "reconnecting" | "closed", detail).
 */
export class EventStreamReader {
  #url;
  #callbacks;
  #controller = new AbortController();
  #lastEventId;
  #retryMs = reconnectDelayDefaultMs;
  #failures = 0;

  constructor(url, callbacks) {
    this.#url = url;
    this.#callbacks = callbacks;
    this.#run();
  }

  /** The offset of the last message received, if any. */
  get lastEventId() {
    return this.#lastEventId;
  }

  stop() {
    this.#controller.abort();
  }

  async #run() {
    const signal = this.#controller.signal;
    while (!signal.aborted) {
      this.#callbacks.onState?.(this.#failures === 0 ? "connecting" : "reconnecting", {
        attempt: this.#failures,
      });
      let outcome;
      try {
        outcome = await this.#follow(signal);
      } catch (error) {
        outcome = { retry: true, detail: error?.message ?? String(error) };
      }
      if (signal.aborted) return;
      if (!outcome.retry) {
        this.#callbacks.onState?.("closed", outcome.detail);
        return;
      }
      this.#failures++;
      this.#callbacks.onState?.("reconnecting", {
        attempt: this.#failures,
        detail: outcome.detail,
      });
      const delay = Math.min(this.#retryMs * Math.min(this.#failures, 5), reconnectDelayMaxMs);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  }

  /** One connection: resolves with whether to reconnect. */
  async #follow(signal) {
    const headers = authHeaders({ accept: "text/event-stream" });
    if (this.#lastEventId !== undefined) headers["last-event-id"] = this.#lastEventId;
    const response = await fetch(this.#url, { headers, signal, cache: "no-store" });
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try {
        detail = (await response.json()).error ?? detail;
      } catch { /* not JSON */ }
      // Unavailable or overloaded may pass; a missing topic or a refusal will not.
      return { retry: response.status === 503 || response.status === 429, detail };
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { data: [], id: undefined, type: "message" };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { retry: true, detail: "The stream ended" };
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          this.#dispatch(event);
          event = { data: [], id: undefined, type: "message" };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") event.data.push(text);
          else if (field === "id") event.id = text;
          else if (field === "event") event.type = text;
          else if (field === "retry" && /^\d+$/.test(text)) this.#retryMs = Number(text);
        }
      }
    }
  }

  #dispatch(event) {
    if (event.data.length === 0) return;
    if (event.id !== undefined) this.#lastEventId = event.id;
    let payload;
    try {
      payload = JSON.parse(event.data.join("\n"));
    } catch {
      return;
    }
    if (event.type === "subscribed") {
      this.#failures = 0;
      this.#callbacks.onState?.("live", payload);
      this.#callbacks.onSubscribed?.(payload);
    } else if (event.type === "message") {
      this.#callbacks.onMessage?.(payload, event.id);
    }
  }
}
