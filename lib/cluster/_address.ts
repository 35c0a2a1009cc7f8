/**
 * "host:port" addresses as peers advertise them: parsed and validated once,
 * at the edge, so the rest of the cluster layer can trust them.
 *
 * @module
 */

/** Longest advertised address accepted (a DNS name is at most 253 characters). */
export const addressCharactersMax = 261;

/** A parsed address; IPv6 hosts come without their brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses "host:port" or "[v6]:port"; undefined when it is not one.
 *
 * @example
 * ```ts
 * parseAddress("127.0.0.1:5001"); // { host: "127.0.0.1", port: 5001 }
 * ```
 */
export function parseAddress(address: string): HostPort | undefined {
  if (address.length > addressCharactersMax) return undefined;
  const colon = address.lastIndexOf(":");
  if (colon < 1) return undefined;
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host.length === 0 || /[\s\[\]\/]/.test(host)) return undefined;
  return { host, port };
}

/** Formats a host and port as an address, bracketing IPv6 hosts. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
