// Helpers for the CNI tests: build and run the node's CNI binary (the native
// forwarder, dist/bin/eniway-cni) the way a runtime does (environment +
// stdin; stdout, stderr, exit code), a stand-in for the daemon's socket that
// records the forwarder's exact bytes (its HTTP edge only: the CNI protocol
// is tested against a real daemon), a private /run for the forwarder's
// default socket, and real network namespaces.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const PLUGIN = join(ROOT, "dist/bin/eniway-cni");
const SOURCE = join(ROOT, "cni/forwarder/eniway-cni.c");

/** The socket the forwarder uses when the configuration names none. */
export { DEFAULT_SOCKET } from "../../cni/facts.js";

/** Builds dist/bin/eniway-cni (the native forwarder) when it is missing or older than its source. */
export function ensurePluginBuilt(): void {
  if (existsSync(PLUGIN) && statSync(PLUGIN).mtimeMs >= statSync(SOURCE).mtimeMs) return;
  execFileSync("npm", ["run", "build:cni"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  if (!existsSync(PLUGIN)) throw new Error(`npm run build:cni did not produce ${PLUGIN}`);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout as UTF-8, and as the bytes it was. */
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  /** stdout parsed; undefined when stdout is empty (or not JSON, with `raw`). */
  json: Record<string, unknown> | undefined;
  /** The process ID: the plugin's (a wrapper such as nsenter execs it in place). */
  pid: number;
}

export interface RunOptions {
  timeoutMs?: number;
  /** An argument vector to run the plugin under (e.g. nsenter into a mount namespace). */
  wrapper?: string[];
  cwd?: string;
  /** The executable (default: dist/bin/eniway-cni). */
  plugin?: string;
  /** argv[0], when it should differ from the executable's path. */
  argv0?: string;
  /** Do not insist that stdout is empty or one JSON object. */
  raw?: boolean;
}

/**
 * Runs the plugin as a runtime does. Only the variables given (plus PATH)
 * are set. Unless `raw`, rejects when stdout is neither empty nor exactly one
 * JSON object; rejects when it does not end within timeoutMs.
 */
export function runPlugin(
  env: Record<string, string | undefined>,
  stdin: string | Buffer | Record<string, unknown> = "",
  opts: RunOptions = {},
): Promise<RunResult> {
  const { timeoutMs = 30_000, wrapper = [], cwd, plugin = PLUGIN, argv0, raw = false } = opts;
  const input = typeof stdin === "string" || Buffer.isBuffer(stdin) ? stdin : JSON.stringify(stdin);
  const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = [...wrapper, plugin];
    const child = spawn(file as string, args, {
      env: cleanEnv,
      cwd,
      stdio: ["pipe", "pipe", "pipe"],
      ...(argv0 ? { argv0 } : {}),
    });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`plugin did not exit within ${timeoutMs} ms (${env.CNI_COMMAND})`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const stdout = stdoutBytes.toString("utf8");
      let json: Record<string, unknown> | undefined;
      if (stdout !== "") {
        let v: unknown;
        try {
          v = JSON.parse(stdout);
        } catch {
          if (!raw) {
            reject(new Error(`stdout is not one JSON document: ${JSON.stringify(stdout.slice(0, 500))}`));
            return;
          }
        }
        if (typeof v === "object" && v !== null && !Array.isArray(v)) json = v as Record<string, unknown>;
        else if (!raw) {
          reject(new Error(`stdout is not a JSON object: ${stdout.slice(0, 500)}`));
          return;
        }
      }
      resolvePromise({ code, signal, stdout, stdoutBytes, stderr, json, pid: child.pid ?? 0 });
    });
    child.stdin.on("error", () => {}); // the plugin may exit before reading all of stdin
    child.stdin.end(input);
  });
}

// ------------------------------------------------------ the socket's far end

/** One request as the forwarder sent it. */
export interface Received {
  /** "POST /v1/cni HTTP/1.1" */
  requestLine: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * What the far end does with a request: answer with a status and body,
 * write raw bytes, never answer, or close the connection without a word.
 */
export type Reply =
  | { status: number; body?: string | Buffer; delayMs?: number }
  | { raw: string | Buffer }
  | "hang"
  | "close";

/**
 * The far end of the daemon's socket for the forwarder's own edges (what it
 * sends, what it makes of answers, timeouts): HTTP parsed by hand, so every
 * byte sent and answered is the test's. `noRead`: it accepts connections
 * and never reads from them, as a stopped daemon's socket does.
 */
export class FakeDaemon {
  readonly received: Received[] = [];
  reply: (r: Received) => Reply = () => ({ status: 200, body: "0\n" });
  private server: Server | undefined;
  private readonly open = new Set<Socket>();

  constructor(
    readonly socket: string,
    private readonly opts: { noRead?: boolean } = {},
  ) {}

  async start(): Promise<this> {
    const server = createServer((s) => {
      this.open.add(s);
      s.on("close", () => this.open.delete(s));
      s.on("error", () => {});
      if (this.opts.noRead) {
        s.pause();
        return;
      }
      // The head is parsed once it is whole; the body's chunks are joined once, when all have come.
      let head: { requestLine: string; headers: Record<string, string>; length: number } | null = null;
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      s.on("data", (c: Buffer) => {
        if (done) return;
        chunks.push(c);
        size += c.length;
        if (!head) {
          const all = Buffer.concat(chunks.splice(0));
          chunks.push(all);
          const end = all.indexOf("\r\n\r\n");
          if (end < 0) return;
          const lines = all.subarray(0, end).toString("latin1").split("\r\n");
          const headers: Record<string, string> = {};
          for (const l of lines.slice(1)) {
            const colon = l.indexOf(":");
            headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
          }
          head = { requestLine: lines[0] ?? "", headers, length: Number(headers["content-length"] ?? 0) };
          chunks[0] = all.subarray(end + 4);
          size = chunks[0].length;
        }
        if (size < head.length) return;
        done = true;
        const r: Received = {
          requestLine: head.requestLine,
          headers: head.headers,
          body: Buffer.concat(chunks).subarray(0, head.length),
        };
        this.received.push(r);
        this.answer(s, this.reply(r));
      });
    });
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(this.socket, () => ok());
    });
    this.server = server;
    return this;
  }

  private answer(s: Socket, reply: Reply): void {
    if (reply === "hang") return;
    if (reply === "close") {
      s.end();
      return;
    }
    if ("raw" in reply) {
      s.end(reply.raw);
      return;
    }
    const body = Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(reply.body ?? "");
    const send = (): void => {
      s.end(
        Buffer.concat([
          Buffer.from(
            `HTTP/1.1 ${reply.status} X\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
          ),
          body,
        ]),
      );
    };
    if (reply.delayMs) setTimeout(send, reply.delayMs);
    else send();
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

// ------------------------------------------------- a private /run (root only)

export interface PrivateRun {
  /** Prefix for runPlugin's `wrapper`: runs the plugin in the mount namespace. */
  wrapper: string[];
  /** Runs a program (argument vector) in the mount namespace; its stdout. */
  exec(...argv: string[]): string;
  remove(): void;
}

/**
 * A mount namespace whose /run is an empty tmpfs holding only /run/eniway/:
 * a plugin run in it that falls back to the default socket
 * (/run/eniway/eniway.sock) reaches what the test puts there, and a DEL it
 * records lands in this tmpfs, never in the machine's /run. Kept by a bind
 * mount on a file in `dir` (as `ip netns` keeps network namespaces).
 */
export function privateRun(dir: string): PrivateRun {
  const holder = join(dir, "mntns");
  mkdirSync(holder);
  const run = (...argv: string[]): string =>
    execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
  // A namespace can be kept on a file only where mounts do not propagate.
  run("mount", "--bind", holder, holder);
  run("mount", "--make-private", holder);
  const file = join(holder, "ns");
  writeFileSync(file, "");
  const wrapper = ["nsenter", `--mount=${file}`, "--"];
  try {
    run(
      "unshare",
      `--mount=${file}`,
      "--propagation",
      "private",
      "mount",
      "-t",
      "tmpfs",
      "-o",
      "mode=0755,size=64m",
      "eniway-test-run",
      "/run",
    );
    run(...wrapper, "mkdir", "-m", "0755", "/run/eniway");
  } catch (e) {
    unmount(file, holder);
    throw e;
  }
  return { wrapper, exec: (...argv) => run(...wrapper, ...argv), remove: () => unmount(file, holder) };
}

function unmount(...mounts: string[]): void {
  for (const m of mounts) {
    try {
      execFileSync("umount", [m], { stdio: "ignore" });
    } catch {
      // not mounted
    }
  }
}

// ------------------------------------------------------- network namespaces

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
