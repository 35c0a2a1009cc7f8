/**
 * Test certificates made with the `openssl` command: a CA and a peer
 * certificate for 127.0.0.1/localhost signed by it, so TLS tests verify a
 * real chain instead of switching verification off.
 *
 * @module
 */

/** Files of a test CA and one peer certificate it signed. */
export interface TlsFiles {
  caPath: string;
  certPath: string;
  keyPath: string;
  /** The CA certificate (PEM), for clients' `caCerts`. */
  ca: string;
}

/** Why TLS tests cannot run here, or undefined when `openssl` works. */
export async function tlsUnavailable(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
      .output();
    return success ? undefined : "openssl version failed";
  } catch {
    return "the openssl command is not installed";
  }
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/**
 * Makes a CA and a peer certificate under `dir` (created if needed).
 *
 * @example
 * ```ts
 * const tls = await makeTlsFiles(await Deno.makeTempDir());
 * ```
 */
export async function makeTlsFiles(dir: string, name = "peer"): Promise<TlsFiles> {
  await Deno.mkdir(dir, { recursive: true });
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...curve,
    ...["-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", `/CN=${name} test CA`],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  await openssl(dir, [
    "req",
    ...curve,
    ...["-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`],
  ]);
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth,clientAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    ...["-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"],
    ...["-out", `${name}.pem`, "-days", "3650", "-extfile", `${name}.ext`],
  ]);
  return {
    caPath: `${dir}/ca.pem`,
    certPath: `${dir}/${name}.pem`,
    keyPath: `${dir}/${name}.key`,
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
  };
}
