/**
 * The only place the client touches the network: opens a TCP (or TLS)
 * connection to one "host:port" address. Everything above it speaks to the
 * small `Transport` interface, so tests and the simulator can substitute it.
 *
 * @module
 */

/** A connected byte stream. */
export interface Transport {
  /** The "host:port" this transport is connected to. */
  readonly address: string;
  /**
   * Reads bytes from the peer into `buffer` (no stream, no allocation per
   * read); resolves with how many, or null once the peer closed.
   */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all bytes; rejects when the connection is gone. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the connection; safe to call more than once. */
  close(): void;
}

/** Options of `connectTransport`. */
export interface TransportOptions {
  /** Give up connecting after this long. */
  connectTimeoutMs: number;
  /** Connect with TLS, trusting these extra CA certificates (PEM). */
  tls?: { caCerts?: string[] };
}

/** Splits "host:port" (or "[v6]:port") into its parts; throws RangeError when malformed. */
export function parseAddress(address: string): { hostname: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port < 1 || port > 65535) {
    throw new RangeError(
      `Cannot use peer address as it must be 'host:port' with a port between 1 and 65535: current value is '${address}'`,
    );
  }
  return { hostname: match[1] ?? match[2], port };
}

/**
 * Connects to `address`.
 *
 * @example
 * ```ts
 * const transport = await connectTransport("localhost:5001", { connectTimeoutMs: 5000 });
 * await transport.write(new Uint8Array([0, 0, 0, 2, 123, 125]));
 * transport.close();
 * ```
 */
export async function connectTransport(
  address: string,
  options: TransportOptions,
): Promise<Transport> {
  const { hostname, port } = parseAddress(address);
  const signal = AbortSignal.timeout(options.connectTimeoutMs);
  const connection = options.tls
    ? await connectTls(hostname, port, options.tls, options.connectTimeoutMs)
    : await Deno.connect({ hostname, port, signal });
  if (!options.tls) (connection as Deno.TcpConn).setNoDelay(true);
  let closed = false;
  return {
    address,
    read: (buffer) => connection.read(buffer),
    write(bytes: Uint8Array): Promise<void> {
      // One write takes everything nearly always: finish a short one in a loop only then.
      return connection.write(bytes).then((written) =>
        written < bytes.length ? writeRest(connection, bytes, written) : undefined
      );
    },
    close(): void {
      if (closed) return;
      closed = true;
      try {
        connection.close();
      } catch {
        // Already closed by the peer: nothing left to release.
      }
    },
  };
}

async function writeRest(connection: Deno.Conn, bytes: Uint8Array, at: number): Promise<void> {
  while (at < bytes.length) at += await connection.write(bytes.subarray(at));
}

/** Deno.connectTls takes no signal: race it against a timer and close a late connection. */
async function connectTls(
  hostname: string,
  port: number,
  tls: { caCerts?: string[] },
  timeoutMs: number,
): Promise<Deno.TlsConn> {
  const pending = Deno.connectTls({ hostname, port, caCerts: tls.caCerts });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      pending.then((late) => late.close(), () => {});
      reject(
        new Deno.errors.TimedOut(`Cannot connect to ${hostname}:${port} within ${timeoutMs} ms`),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
