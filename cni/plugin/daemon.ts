// One HTTP/1.1 request to the eniway daemon over its unix socket, written on
// a bare connection (node:http costs ~20 ms more to load in the compiled
// plugin; unix.ts makes the connection).

import type { DaemonErrorCode } from "../facts.js";
import { CniError, ERR } from "./spec.js";
import { connectUnix, type UnixConnection } from "./unix.js";

/** The daemon could not be reached or gave no complete answer in time. */
export class DaemonUnreachable extends Error {}

export interface DaemonResponse {
  status: number;
  /** The parsed JSON body, or undefined when the body is empty or not JSON. */
  json: unknown;
  text: string;
}

const MAX_RESPONSE = 1 << 20;

interface Parsed {
  status: number;
  body: Buffer;
}

/** Decodes a chunked body; null while incomplete. */
function dechunk(buf: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf("\r\n", pos);
    if (eol < 0) return null;
    const size = Number.parseInt(buf.subarray(pos, eol).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isFinite(size) || size < 0) throw new DaemonUnreachable("malformed chunked response");
    if (size === 0) return Buffer.concat(parts);
    const start = eol + 2;
    if (buf.length < start + size + 2) return null;
    parts.push(buf.subarray(start, start + size));
    pos = start + size + 2;
  }
}

/** Parses a complete response from what has arrived so far; null while incomplete. */
function parse(buf: Buffer, ended: boolean): Parsed | null {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const lines = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!m) throw new DaemonUnreachable(`malformed response: ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`);
  const status = Number(m[1]);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  const rest = buf.subarray(headEnd + 4);
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    const body = dechunk(rest);
    return body ? { status, body } : null;
  }
  const length = headers.get("content-length");
  if (length !== undefined) {
    const n = Number(length);
    if (!Number.isInteger(n) || n < 0) throw new DaemonUnreachable("malformed content-length");
    return rest.length >= n ? { status, body: rest.subarray(0, n) } : null;
  }
  if (status === 204 || status === 304) return { status, body: Buffer.alloc(0) };
  return ended ? { status, body: rest } : null;
}

/**
 * Sends one request and resolves with the answer, whatever its status.
 * Rejects with DaemonUnreachable when the socket is missing or refuses, the
 * connection breaks, or no complete answer arrives within timeoutMs.
 */
export function request(
  socketPath: string,
  method: "GET" | "POST",
  path: string,
  payload: unknown,
  timeoutMs: number,
): Promise<DaemonResponse> {
  return new Promise((resolve, reject) => {
    const body = payload === undefined ? "" : JSON.stringify(payload);
    let head = `${method} ${path} HTTP/1.1\r\nHost: eniway\r\nUser-Agent: eniway-cni\r\nAccept: application/json\r\nConnection: close\r\n`;
    if (payload !== undefined)
      head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    head += "\r\n";

    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let conn: UnixConnection | null = null;
    const finish = (err: Error | null, res?: Parsed): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn?.destroy();
      if (err || !res) {
        reject(err);
        return;
      }
      const text = res.body.toString("utf8");
      let json: unknown;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: res.status, json, text });
    };
    const attempt = (ended: boolean): void => {
      try {
        const res = parse(Buffer.concat(chunks, size), ended);
        if (res) finish(null, res);
        else if (ended) finish(new DaemonUnreachable("connection closed before a complete answer"));
      } catch (e) {
        finish(e as Error);
      }
    };
    const timer = setTimeout(
      () => finish(new DaemonUnreachable(`no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    conn = connectUnix(socketPath, Buffer.from(head + body), {
      data(c) {
        chunks.push(c);
        size += c.length;
        if (size > MAX_RESPONSE) finish(new DaemonUnreachable("answer too large"));
        else attempt(false);
      },
      closed: () => attempt(true),
      failed: (code) => finish(new DaemonUnreachable(`${socketPath}: ${code}`)),
    });
  });
}

/** The CNI code for each daemon error code (cni/facts.ts DAEMON_ERRORS). */
const CNI_CODE: Partial<Record<DaemonErrorCode, number>> = {
  BadRequest: ERR.invalidConfig,
  UnknownContainer: ERR.unknownContainer,
  CheckFailed: ERR.checkFailed,
  TryAgainLater: ERR.tryAgainLater,
};

/**
 * Turns a non-2xx daemon answer into a CNI error by the daemon's error code
 * (BadRequest → 7, UnknownContainer → 3, CheckFailed → 100, TryAgainLater →
 * 11), or by its status when it gave none (503 → 11), else 999; each with the
 * daemon's own message.
 */
export function daemonError(res: DaemonResponse): CniError {
  const err = (res.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const message =
    typeof err?.message === "string" && err.message !== ""
      ? err.message
      : res.text.slice(0, 200) || `HTTP ${res.status}`;
  const details = `eniway daemon answered HTTP ${res.status}${typeof err?.code === "string" ? ` ${err.code}` : ""}`;
  const byCode = typeof err?.code === "string" ? CNI_CODE[err.code as DaemonErrorCode] : undefined;
  const code = byCode ?? (res.status === 503 ? ERR.tryAgainLater : ERR.internal);
  return new CniError(code, message, details);
}
