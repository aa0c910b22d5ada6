// Helpers for the plugin's spec-conformance tests: build and run the compiled
// plugin the way a runtime does (environment + stdin, stdout/stderr/exit
// code), a fake daemon on a unix socket, and real network namespaces.

import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const PLUGIN = join(ROOT, "dist/bin/eniway-cni");
const SOURCE = join(ROOT, "cni/forwarder/eniway-cni.c");

/** Builds dist/bin/eniway-cni (the native forwarder) when it is missing or older than its source. */
export function ensurePluginBuilt(): void {
  if (existsSync(PLUGIN) && statSync(PLUGIN).mtimeMs >= statSync(SOURCE).mtimeMs) return;
  execFileSync("npm", ["run", "build:cni"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  if (!existsSync(PLUGIN)) throw new Error(`npm run build:cni did not produce ${PLUGIN}`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed; undefined when stdout is empty. */
  json: Record<string, unknown> | undefined;
}

/**
 * Runs the plugin as a runtime does. Only the variables given (plus PATH)
 * are set; `wrapper` is a command to run it under (e.g. `ip netns exec NS`),
 * `cwd` its working directory.
 * Rejects if stdout is neither empty nor exactly one JSON object.
 */
export function runPlugin(
  env: Record<string, string | undefined>,
  stdin: string | Record<string, unknown> = "",
  opts: { timeoutMs?: number; wrapper?: string[]; cwd?: string } = {},
): Promise<RunResult> {
  const { timeoutMs = 30_000, wrapper = [], cwd } = opts;
  const input = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
  const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = [...wrapper, PLUGIN];
    const child = spawn(file as string, args, { env: cleanEnv, cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`plugin did not exit within ${timeoutMs} ms (${env.CNI_COMMAND})`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      let json: Record<string, unknown> | undefined;
      if (stdout !== "") {
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          reject(new Error(`stdout is not one JSON document: ${JSON.stringify(stdout)}`));
          return;
        }
        if (typeof json !== "object" || json === null || Array.isArray(json)) {
          reject(new Error(`stdout is not a JSON object: ${stdout}`));
          return;
        }
      }
      resolvePromise({ code, stdout, stderr, json });
    });
    child.stdin.on("error", () => {}); // the plugin may exit before reading stdin
    child.stdin.end(input);
  });
}

// ------------------------------------------------------------- fake daemon

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: unknown;
  text: string;
}

export type Reply =
  | { status: number; body?: unknown; text?: string; chunked?: boolean; delayMs?: number }
  | "hang"
  | "destroy";
export type Handler = (req: Recorded) => Reply;

export const DEFAULT_ADD_ANSWER = {
  ip: "10.0.1.5",
  prefix: 32,
  gateway: "169.254.1.1",
  podMac: "02:aa:bb:cc:dd:01",
  hostIfname: "eni0123456789a",
  hostMac: "02:aa:bb:cc:dd:02",
  eniId: "eni-sim-1",
  mtu: 1500,
  timings: { allocateMs: 0.1, kernelMs: 1.2 },
};

/** A stand-in for the daemon's unix-socket API that records every request. */
export class FakeDaemon {
  readonly requests: Recorded[] = [];
  readonly handlers = new Map<string, Handler>();
  private server: Server | undefined;
  private readonly open = new Set<import("node:net").Socket>();

  constructor(readonly socket: string) {
    this.handlers.set("POST /v1/cni/add", () => ({ status: 200, body: DEFAULT_ADD_ANSWER }));
    this.handlers.set("POST /v1/cni/del", () => ({ status: 200, body: { released: "10.0.1.5" } }));
    this.handlers.set("POST /v1/cni/check", () => ({ status: 200, body: { ok: true } }));
    this.handlers.set("POST /v1/cni/gc", () => ({ status: 200, body: { released: [] } }));
    this.handlers.set("GET /readyz", () => ({ status: 200, body: { ready: true } }));
  }

  on(route: string, h: Handler): this {
    this.handlers.set(route, h);
    return this;
  }

  of(route: string): Recorded[] {
    return this.requests.filter((r) => `${r.method} ${r.url}` === route);
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = text === "" ? undefined : JSON.parse(text);
        } catch {
          body = text;
        }
        const rec: Recorded = {
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body,
          text,
        };
        this.requests.push(rec);
        const h = this.handlers.get(`${rec.method} ${rec.url}`);
        const reply: Reply = h
          ? h(rec)
          : { status: 404, body: { error: { code: "NotFound", message: "no route" } } };
        if (reply === "hang") return;
        if (reply === "destroy") {
          req.socket.destroy();
          return;
        }
        const out = reply.text ?? (reply.body === undefined ? "" : JSON.stringify(reply.body));
        const send = (): void => this.send(res, reply, out);
        if (reply.delayMs) setTimeout(send, reply.delayMs);
        else send();
      });
    });
    this.server.on("connection", (s) => {
      this.open.add(s);
      s.on("close", () => this.open.delete(s));
    });
    const server = this.server;
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(this.socket, () => ok());
    });
    return this;
  }

  private send(
    res: import("node:http").ServerResponse,
    reply: { status: number; chunked?: boolean },
    out: string,
  ): void {
    if (reply.chunked) {
      res.writeHead(reply.status, { "content-type": "application/json" });
      const mid = Math.floor(out.length / 2);
      res.write(out.slice(0, mid));
      setTimeout(() => res.end(out.slice(mid)), 20);
    } else {
      res.writeHead(reply.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(out),
      });
      res.end(out);
    }
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((ok) => server.close(() => ok()));
  }
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = "eniway-cni-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ------------------------------------------------------- network namespaces

export const randomSuffix = (): string => randomBytes(3).toString("hex");

/** Runs `ip ARGS` and returns stdout; throws on failure. */
export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs `ip ARGS`, returning whether it succeeded. */
export function ipOk(...args: string[]): boolean {
  try {
    ip(...args);
    return true;
  } catch {
    return false;
  }
}

/** Creates `eniway-t-<random>`; the caller must delete it with deleteNetns. */
export function createNetns(): string {
  const name = `eniway-t-${randomSuffix()}`;
  ip("netns", "add", name);
  return name;
}

export function deleteNetns(name: string): void {
  ipOk("netns", "del", name);
}
