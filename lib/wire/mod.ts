/**
 * The wire layer: frame codec, request validation, response shapes, errors.
 *
 * @module
 */
export * from "./frame.ts";
export * from "./errors.ts";
export * from "./requests.ts";
export * from "./responses.ts";
