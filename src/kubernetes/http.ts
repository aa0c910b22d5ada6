// JSON requests and watches to the API server over node:http(s), with the
// credentials of a KubeConnection: all the daemon's port (api.ts) needs, so
// the node daemon does not load a generated client of every API kind. A
// request that gets no answer in time is aborted; a watch is a stream of
// JSON lines, read until the server ends it or the caller stops it. A watch
// that stays silent for `idleMs` (no event, no bookmark) is ended as if the
// server had ended it, so a connection that died without a word is noticed
// and watched again; TCP keepalive probes its socket meanwhile.

import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { KubeConnection } from "./connection.js";

/** A failed request with the API server's HTTP status (0: no answer at all). */
export class KubeError extends Error {
  override name = "KubeError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface KubeHttp {
  /** The server's JSON answer; a status other than 2xx rejects with KubeError. */
  request(
    method: "GET" | "POST" | "PATCH",
    path: string,
    body?: { json: unknown; contentType?: string },
  ): Promise<unknown>;
  /**
   * Resolves once the server accepted the watch (2xx headers); `line` gets
   * each event, `done` the end: null when the server closed it, else why.
   */
  watch(
    path: string,
    idleMs: number,
    line: (event: unknown) => void,
  ): Promise<{ done: Promise<Error | null>; stop(): void }>;
}

const MAX_ANSWER_BYTES = 64 * 2 ** 20;
/** A watch's idle socket is probed by TCP keepalive after this. */
const KEEPALIVE_MS = 30_000;

/** The server's Status message of a failed request, or the body's start. */
function failure(status: number, body: string, what: string): KubeError {
  let reason = body;
  try {
    reason = (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {}
  return new KubeError(status, `${what}: HTTP ${status}: ${reason.slice(0, 300)}`);
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > MAX_ANSWER_BYTES) throw new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function createKubeHttp(conn: KubeConnection, timeoutMs: number): KubeHttp {
  const tls = conn.server.startsWith("https:");
  const agent = tls
    ? new HttpsAgent({
        keepAlive: true,
        rejectUnauthorized: !conn.insecure,
        ...(conn.ca ? { ca: conn.ca } : {}),
        ...(conn.cert && conn.key ? { cert: conn.cert, key: conn.key } : {}),
        ...(conn.serverName ? { servername: conn.serverName } : {}),
      })
    : new HttpAgent({ keepAlive: true });
  const send = tls ? httpsRequest : httpRequest;

  /** Starts a request; `answered` gets the response once its headers are in. */
  const open = (
    method: string,
    path: string,
    body: { json: unknown; contentType?: string } | undefined,
    answered: (res: IncomingMessage) => void,
    failed: (e: Error) => void,
  ): ClientRequest => {
    const token = conn.token();
    const text = body ? JSON.stringify(body.json) : undefined;
    const req = send(new URL(path, conn.server), {
      method,
      agent,
      headers: {
        accept: "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(text !== undefined
          ? {
              "content-type": body?.contentType ?? "application/json",
              "content-length": Buffer.byteLength(text),
            }
          : {}),
      },
    });
    req.on("response", answered);
    req.on("error", failed);
    req.end(text);
    return req;
  };

  return {
    request: (method, path, body) =>
      new Promise((resolve, reject) => {
        const what = `${method} ${path.split("?")[0]}`;
        const req = open(
          method,
          path,
          body,
          (res) => {
            readAll(res).then((answer) => {
              const status = res.statusCode ?? 0;
              if (status < 200 || status > 299) return reject(failure(status, answer, what));
              try {
                resolve(answer ? JSON.parse(answer) : null);
              } catch {
                reject(new KubeError(status, `${what}: the answer is not JSON`));
              }
            }, reject);
          },
          (e) => reject(e instanceof KubeError ? e : new KubeError(0, `${what}: ${e.message}`)),
        );
        req.setTimeout(timeoutMs, () =>
          req.destroy(new KubeError(0, `${what}: no answer within ${timeoutMs} ms`)),
        );
      }),

    watch: (path, idleMs, line) =>
      new Promise((accepted, refused) => {
        const what = `watch ${path.split("?")[0]}`;
        let finish: (e: Error | null) => void = () => {};
        const done = new Promise<Error | null>((r) => {
          finish = r;
        });
        let quiet = false; // ended for its silence: a clean end, watched again at once
        const req = open(
          "GET",
          path,
          undefined,
          (res) => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) {
              readAll(res).then((body) => refused(failure(status, body, what)), refused);
              return;
            }
            req.removeAllListeners("timeout");
            req.setTimeout(idleMs, () => {
              quiet = true;
              req.destroy();
            });
            readLines(res, line).then(
              () => finish(null),
              (e: Error) => finish(quiet ? null : e),
            );
            accepted({ done, stop: () => req.destroy() });
          },
          (e) => {
            const err = e instanceof KubeError ? e : new KubeError(0, `${what}: ${e.message}`);
            refused(err);
            finish(quiet ? null : err);
          },
        );
        req.on("socket", (socket) => socket.setKeepAlive(true, KEEPALIVE_MS));
        req.setTimeout(timeoutMs, () =>
          req.destroy(new KubeError(0, `${what}: no answer within ${timeoutMs} ms`)),
        );
      }),
  };
}

/** Each JSON line of the stream to `line`, until it ends. */
async function readLines(res: IncomingMessage, line: (event: unknown) => void): Promise<void> {
  res.setEncoding("utf8"); // a character split between chunks stays whole
  let rest = "";
  for await (const c of res) {
    rest += c as string;
    for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
      const text = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (text) line(JSON.parse(text));
    }
  }
}
