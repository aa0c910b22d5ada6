// JSON over HTTP/1.1, both ends: reading a bounded request body, answering
// with JSON, listening (TCP or a unix socket) and closing, and one request
// to a unix socket (the operator CLI, the sandbox and the tests use it; the
// plugin has its own, dependency-free one).

import { type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer } from "node:net";

/** A request body larger than allowed. */
export class BodyTooLarge extends Error {
  override name = "BodyTooLarge";
}

/** The whole body as text; rejects with BodyTooLarge past maxBytes. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > maxBytes) throw new BodyTooLarge(`request body larger than ${maxBytes} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json;charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** `HOST:PORT` (IPv6 in brackets; an empty host is 127.0.0.1). */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new Error(`listen address must be HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1", port };
}

/** Starts listening on a TCP address or a unix socket path; rejects if that fails (e.g. EADDRINUSE). */
export function listen(
  server: Server,
  where: { host: string; port: number } | { path: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => reject(e);
    server.once("error", fail);
    const done = (): void => {
      server.off("error", fail);
      resolve();
    };
    if ("path" in where) server.listen(where.path, done);
    else server.listen(where.port, where.host, done);
  });
}

/** Stops accepting, drops idle keep-alive connections, and resolves once the server is closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

export interface Reply {
  status: number;
  /** The parsed JSON body; `{raw}` when the body is not JSON. */
  body: Record<string, unknown>;
}

/** One request over a unix socket. Rejects on connection errors and timeouts only. */
export function socketRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: data
          ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) }
          : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: Record<string, unknown>;
          try {
            parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            parsed = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(data);
  });
}

/** A TCP port free on 127.0.0.1 right now (another process may take it before you do). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}
