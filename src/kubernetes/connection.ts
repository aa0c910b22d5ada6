// Where the API server is and how the daemon proves who it is: from the
// pod's ServiceAccount (in a cluster) or from a kubeconfig file (its current
// context). A bearer token (re-read from its file now and then: projected
// ServiceAccount tokens rotate) or a client certificate; the server's CA, or
// insecure-skip-tls-verify as the kubeconfig says. Exec and auth-provider
// plugins are refused by name: a node daemon has no one to log in.

import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { isObject } from "../../lib/json.js";

export interface KubeConnection {
  /** https://HOST:PORT (or http://). */
  server: string;
  /** PEM of the CA that signed the server's certificate; undefined: the system's CAs. */
  ca?: Buffer;
  /** insecure-skip-tls-verify: the server's certificate is not checked. */
  insecure: boolean;
  /** tls-server-name: the name the server's certificate is checked against, when not the server's host. */
  serverName?: string;
  /** A client certificate and its key (PEM). */
  cert?: Buffer;
  key?: Buffer;
  /** The bearer token to send, or "" for none. */
  token(): string;
}

/** A kubeconfig or ServiceAccount that cannot be used; the message never holds a credential. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** How long a token read from a file is used before the file is read again (client-go: a minute). */
const TOKEN_REREAD_MS = 60_000;

/** A token from a file, read again after TOKEN_REREAD_MS. */
function tokenFile(file: string, now: () => number = Date.now): () => string {
  let token = "";
  let readAt = Number.NEGATIVE_INFINITY;
  return () => {
    if (now() - readAt >= TOKEN_REREAD_MS) {
      token = readFileSync(file, "utf8").trim();
      readAt = now();
    }
    return token;
  };
}

/** In a pod: the ServiceAccount's token and CA, and the API server from the environment. */
export function inCluster(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new ConnectionError(
      "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset",
    );
  const token = tokenFile(join(dir, "token"));
  token(); // a missing token fails now, not at the first request
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(dir, "ca.crt")),
    insecure: false,
    token,
  };
}

type Entry = Record<string, unknown>;

/** The entry of `list` (clusters, users, contexts) with this name: its inner object. */
function named(doc: Entry, list: string, inner: string, name: string, file: string): Entry {
  const items = Array.isArray(doc[list]) ? (doc[list] as unknown[]) : [];
  const found = items.find((x) => isObject(x) && x.name === name);
  const value = isObject(found) ? found[inner] : undefined;
  if (!isObject(value))
    throw new ConnectionError(`kubeconfig ${file}: no ${inner} named ${JSON.stringify(name)}`);
  return value;
}

const text = (e: Entry, key: string): string | undefined => (typeof e[key] === "string" ? e[key] : undefined);

/** PEM from `KEY-data` (base64) or the file `KEY` (relative to the kubeconfig). */
function pem(e: Entry, key: string, base: string): Buffer | undefined {
  const data = text(e, `${key}-data`);
  if (data) return Buffer.from(data, "base64");
  const file = text(e, key);
  return file ? readFileSync(isAbsolute(file) ? file : join(base, file)) : undefined;
}

/** The current context of a kubeconfig file. */
export function fromKubeconfig(file: string): KubeConnection {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (e) {
    // The first line only: a parser's excerpt of the file could hold its token.
    throw new ConnectionError(`kubeconfig ${file}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!isObject(doc)) throw new ConnectionError(`kubeconfig ${file}: not a mapping`);
  const current = text(doc, "current-context") ?? "";
  const context = named(doc, "contexts", "context", current, file);
  const cluster = named(doc, "clusters", "cluster", text(context, "cluster") ?? "", file);
  const userName = text(context, "user") ?? "";
  const user = named(doc, "users", "user", userName, file);
  for (const plugin of ["exec", "auth-provider", "username"])
    if (user[plugin] !== undefined)
      throw new ConnectionError(
        `kubeconfig ${file}: user ${JSON.stringify(userName)} logs in with ${plugin}, which the daemon does not support; give it a token, a tokenFile or a client certificate`,
      );
  if (cluster["proxy-url"] !== undefined)
    throw new ConnectionError(
      `kubeconfig ${file}: the cluster's proxy-url is not supported; the daemon connects to the server directly`,
    );
  const server = text(cluster, "server") ?? "";
  if (!/^https?:\/\/[^\s/?#]+\/?$/.test(server))
    throw new ConnectionError(
      `kubeconfig ${file}: cluster server ${JSON.stringify(server)} is not http(s)://HOST:PORT`,
    );
  const base = dirname(file);
  const token = text(user, "token");
  const tokenPath = text(user, "tokenFile");
  const ca = pem(cluster, "certificate-authority", base);
  const cert = pem(user, "client-certificate", base);
  const key = pem(user, "client-key", base);
  if (Boolean(cert) !== Boolean(key))
    throw new ConnectionError(
      `kubeconfig ${file}: user ${JSON.stringify(userName)} has a client certificate without its key, or a key without its certificate`,
    );
  const serverName = text(cluster, "tls-server-name");
  return {
    server: server.replace(/\/$/, ""),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    ...(serverName ? { serverName } : {}),
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    token: token
      ? () => token
      : tokenPath
        ? tokenFile(isAbsolute(tokenPath) ? tokenPath : join(base, tokenPath))
        : () => "",
  };
}
