/**
 * The UTF-8 size of a request's JSON text without building it: a client
 * checks a large message against `requestBytesMax` before it sends it, and
 * `JSON.stringify` + `TextEncoder` of a 512 KiB message just to measure it
 * cost 3.7 ms of the client's CPU per publish (session 14), more than the
 * encoding that sends it. Written by hand: it must agree byte for byte with
 * `JSON.stringify`'s escaping (ECMAScript QuoteJSONString), which no
 * library exposes as a length.
 *
 * @module
 */

/** A character that `JSON.stringify` escapes, or one that takes more than a byte in UTF-8. */
// deno-lint-ignore no-control-regex -- the control characters are what it looks for.
const escapedOrWide = /["\\\x00-\x1f\u0080-\uffff]/;

/**
 * Bytes of `new TextEncoder().encode(JSON.stringify(text))`.
 *
 * @example
 * ```ts
 * import { jsonStringBytes } from "./_json_size.ts";
 *
 * console.log(jsonStringBytes('say "hé"')); // 13
 * ```
 */
export function jsonStringBytes(text: string): number {
  // Nearly every message is ASCII with nothing to escape: one regular
  // expression scan (half the time of the loop below, 512 KiB in 0.35 ms).
  if (!escapedOrWide.test(text)) return text.length + 2;
  let bytes = text.length + 2;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code >= 0x20 && code < 0x7f) {
      if (code === 0x22 || code === 0x5c) bytes++; // \" and \\
    } else if (code < 0x20) {
      // \b \t \n \f \r in two bytes, the other controls as \u00XX.
      const short = code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c ||
        code === 0x0d;
      bytes += short ? 1 : 5;
    } else if (code < 0x80) {
      // 0x7f: one byte, as is.
    } else if (code < 0x800) {
      bytes += 1;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      const next = index + 1 < text.length ? text.charCodeAt(index + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // A pair: four bytes for two code units.
        index++;
      } else {
        bytes += 5; // A lone high surrogate: \uDXXX.
      }
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      bytes += 5; // A lone low surrogate: \uDXXX.
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * Bytes of `new TextEncoder().encode(JSON.stringify(texts))`.
 *
 * @example
 * ```ts
 * import { jsonArrayBytes } from "./_json_size.ts";
 *
 * console.log(jsonArrayBytes(["a", "b"])); // 9
 * ```
 */
export function jsonArrayBytes(texts: readonly string[]): number {
  let bytes = 2 + Math.max(0, texts.length - 1);
  for (const text of texts) bytes += jsonStringBytes(text);
  return bytes;
}
