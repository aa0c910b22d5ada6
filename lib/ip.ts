// Running iproute2 (and writing /proc/sys) inside a network namespace, always
// with an argument vector. A namespace is a path: "" is the daemon's own,
// /var/run/netns/NAME (or /run/netns/NAME) uses `ip -n NAME`, anything else
// goes through `nsenter --net=PATH`.

import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { CommandError, exec } from "./exec.js";
import { NETNS_PATH, netnsNameOf } from "./net.js";
import { findTool } from "./process.js";

const PROC_NS = /^\/proc\/(\d+)\/ns\/net$/;

export function checkNetnsPath(ns: string): void {
  if (ns !== "" && !NETNS_PATH.test(ns))
    throw new Error(`invalid network namespace path ${JSON.stringify(ns)}`);
}

/** How `ip link set … netns X` names a namespace from inside another one. */
export function netnsRef(ns: string): string {
  if (ns === "") return String(process.pid);
  const named = netnsNameOf(ns);
  if (named) return named;
  const proc = PROC_NS.exec(ns);
  if (proc) return proc[1]!;
  throw new Error(`node namespace ${ns} must be /var/run/netns/NAME or /proc/PID/ns/net`);
}

const resolved = new Map<string, string>();

function tool(name: string): string {
  let p = resolved.get(name);
  if (!p) {
    p = findTool(name) ?? name;
    resolved.set(name, p);
  }
  return p;
}

/** The argument vector that runs `argv` in the namespace `ns`. */
export function inNetns(ns: string, argv: string[]): string[] {
  checkNetnsPath(ns);
  const [bin = "", ...rest] = argv;
  if (ns === "") return [tool(bin), ...rest];
  const named = netnsNameOf(ns);
  if (named && bin === "ip") return [tool("ip"), "-n", named, ...rest];
  return [tool("nsenter"), `--net=${ns}`, tool(bin), ...rest];
}

export function run(ns: string, argv: string[], input?: string): Promise<string> {
  return exec(inNetns(ns, argv), input);
}

/** One `ip -batch -` run. With force, every line runs and failures are ignored (teardown). */
export async function ipBatch(ns: string, lines: string[], force = false): Promise<void> {
  if (lines.length === 0) return;
  for (const l of lines) if (/[\n\r\0]/.test(l)) throw new Error("ip batch line contains a line break");
  try {
    await run(ns, force ? ["ip", "-force", "-batch", "-"] : ["ip", "-batch", "-"], `${lines.join("\n")}\n`);
  } catch (e) {
    if (!force) throw e;
  }
}

export async function ipJson<T>(ns: string, args: string[]): Promise<T> {
  const out = await run(ns, ["ip", "-j", ...args]);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** A path below /proc/sys/net: segments of letters, digits, '_', '.' and '-' (not "." or ".."). */
const PROC_SYS_NET = /^net(\/(?!\.\.?(\/|$))[A-Za-z0-9_.-]+){2,4}$/;

/**
 * Writes /proc/sys files of the namespace, e.g. `{"net/ipv4/ip_forward": "1"}`:
 * `tee` (coreutils, on every machine) in the namespace, one process per
 * distinct value. Paths, not sysctl's dotted names: an interface name may
 * hold a dot.
 */
export async function writeProcSys(ns: string, settings: Record<string, string>): Promise<void> {
  const byValue = new Map<string, string[]>();
  for (const [path, value] of Object.entries(settings)) {
    if (!PROC_SYS_NET.test(path)) throw new Error(`invalid /proc/sys name: ${JSON.stringify(path)}`);
    if (!/^[0-9]{1,6}$/.test(value)) throw new Error(`invalid /proc/sys value: ${JSON.stringify(value)}`);
    byValue.set(value, [...(byValue.get(value) ?? []), `/proc/sys/${path}`]);
  }
  if (ns === "") {
    // This namespace: read first and write only what differs. In a container /proc/sys is
    // read-only; a node prepared by the chart's init container already has every value.
    for (const [value, files] of byValue)
      for (const f of files)
        if ((await readFile(f, "utf8")).trim() !== value) await writeFile(f, `${value}\n`);
    return;
  }
  for (const [value, files] of byValue) await run(ns, ["tee", ...files], `${value}\n`);
}

/**
 * A long-lived `ip -force -batch -` in one namespace: no process start per
 * request. Each request's lines are followed by a marker command that always
 * fails; its "Command failed -:N" on stderr tells that every line before it
 * has run, and the failures in between are the request's own.
 */
export interface IpSession {
  batch(lines: string[], force?: boolean): Promise<void>;
  close(): void;
}

const MARKER = "link show dev eniway-marker0";

export function createIpSession(ns: string): IpSession {
  let child: ReturnType<typeof spawn> | null = null;
  let lineNo = 0;
  let stderr = "";
  let waiting: {
    marker: number;
    from: number;
    resolve: (errs: string[]) => void;
    reject: (e: Error) => void;
  } | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  const start = (): NonNullable<typeof child> => {
    const cmd = inNetns(ns, ["ip", "-force", "-batch", "-"]);
    const c = spawn(cmd[0]!, cmd.slice(1), { stdio: ["pipe", "ignore", "pipe"] });
    lineNo = 0;
    stderr = "";
    c.stdin!.on("error", () => {});
    c.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const w = waiting;
      if (!w || !stderr.includes(`Command failed -:${w.marker}\n`)) return;
      // Errors of this request: each "Command failed -:N" with N in [from, marker).
      const errs: string[] = [];
      let block: string[] = [];
      for (const l of stderr.split("\n")) {
        const m = /^Command failed -:(\d+)$/.exec(l);
        if (!m) {
          if (l) block.push(l);
          continue;
        }
        const n = Number(m[1]);
        if (n >= w.from && n < w.marker) errs.push(`line ${n - w.from + 1}: ${block.join("; ")}`);
        block = [];
      }
      stderr = "";
      waiting = null;
      w.resolve(errs);
    });
    c.once("exit", (code) => {
      child = null;
      const w = waiting;
      waiting = null;
      w?.reject(new CommandError(cmd, code, `ip batch session exited: ${stderr}`));
    });
    child = c;
    return c;
  };

  const batch = (lines: string[], force = false): Promise<void> => {
    for (const l of lines) if (/[\n\r\0]/.test(l)) throw new Error("ip batch line contains a line break");
    const run = async (): Promise<void> => {
      if (lines.length === 0) return;
      const c = child ?? start();
      const from = lineNo + 1;
      lineNo += lines.length + 1;
      const errs = await new Promise<string[]>((resolve, reject) => {
        waiting = { marker: lineNo, from, resolve, reject };
        c.stdin!.write(`${lines.join("\n")}\n${MARKER}\n`);
      });
      if (errs.length && !force)
        throw new CommandError(["ip", "-batch", ...(ns ? [ns] : [])], 1, errs.join("\n"));
    };
    const p = queue.then(run, run);
    queue = p.catch(() => {});
    return p;
  };

  return {
    batch,
    close() {
      child?.stdin?.end();
      child = null;
    },
  };
}
