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

/** `ip` with the options of a batch: `-6` (its `rule` lines are IPv6), `-force` (every line runs). */
const batchArgv = (force: boolean, ipv6: boolean): string[] => [
  "ip",
  ...(ipv6 ? ["-6"] : []),
  ...(force ? ["-force"] : []),
  "-batch",
  "-",
];

/**
 * One `ip -batch -` run. With force, every line runs and failures are
 * ignored (teardown). With ipv6, `ip -6`: a batch otherwise reads every
 * `rule` line as IPv4 (routes, addresses and neighbours take either family).
 */
export async function ipBatch(ns: string, lines: string[], force = false, ipv6 = false): Promise<void> {
  if (lines.length === 0) return;
  for (const l of lines) if (/[\n\r\0]/.test(l)) throw new Error("ip batch line contains a line break");
  try {
    await run(ns, batchArgv(force, ipv6), `${lines.join("\n")}\n`);
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
 *
 * `ip` remembers each device name's index for the rest of its life, so once
 * a name is deleted and made again (a container stopped and started: its
 * host veth), the session would name the old index ("No such device"). A
 * request whose lines fail so runs those lines once more in a new process.
 */
export interface IpSession {
  batch(lines: string[], force?: boolean): Promise<void>;
  close(): void;
}

const MARKER = "link show dev eniway-marker0";
/** What `ip` says when the index it holds for a device name is gone. */
const STALE_NAME = /No such device|Cannot find device/;

/** A failed line of a request: its index in the request's lines, and what `ip` said. */
interface LineError {
  index: number;
  text: string;
}

export function createIpSession(ns: string, opts: { ipv6?: boolean } = {}): IpSession {
  let child: ReturnType<typeof spawn> | null = null;
  let lineNo = 0;
  let stderr = "";
  let waiting: {
    marker: number;
    from: number;
    resolve: (errs: LineError[]) => void;
    reject: (e: Error) => void;
  } | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  const start = (): NonNullable<typeof child> => {
    const cmd = inNetns(ns, batchArgv(true, opts.ipv6 === true));
    const c = spawn(cmd[0]!, cmd.slice(1), { stdio: ["pipe", "ignore", "pipe"] });
    lineNo = 0;
    stderr = "";
    c.stdin!.on("error", () => {});
    c.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const w = waiting;
      if (!w || !stderr.includes(`Command failed -:${w.marker}\n`)) return;
      // Errors of this request: each "Command failed -:N" with N in [from, marker).
      const errs: LineError[] = [];
      let block: string[] = [];
      for (const l of stderr.split("\n")) {
        const m = /^Command failed -:(\d+)$/.exec(l);
        if (!m) {
          if (l) block.push(l);
          continue;
        }
        const n = Number(m[1]);
        if (n >= w.from && n < w.marker) errs.push({ index: n - w.from, text: block.join("; ") });
        block = [];
      }
      stderr = "";
      waiting = null;
      w.resolve(errs);
    });
    c.once("exit", (code) => {
      if (child !== c) return; // a process the session already replaced
      child = null;
      const w = waiting;
      waiting = null;
      w?.reject(new CommandError(cmd, code, `ip batch session exited: ${stderr}`));
    });
    child = c;
    return c;
  };

  /** Runs the lines in the session's process; the failures, by index into `lines`. */
  const send = (lines: string[]): Promise<LineError[]> => {
    const c = child ?? start();
    const from = lineNo + 1;
    lineNo += lines.length + 1;
    return new Promise<LineError[]>((resolve, reject) => {
      waiting = { marker: lineNo, from, resolve, reject };
      c.stdin!.write(`${lines.join("\n")}\n${MARKER}\n`);
    });
  };

  const batch = (lines: string[], force = false): Promise<void> => {
    for (const l of lines) if (/[\n\r\0]/.test(l)) throw new Error("ip batch line contains a line break");
    const run = async (): Promise<void> => {
      if (lines.length === 0) return;
      let errs = await send(lines);
      if (force) return;
      const stale = errs.filter((e) => STALE_NAME.test(e.text));
      if (stale.length) {
        // A fresh process knows no names: the lines that named a device made again run once more.
        child?.stdin?.end();
        child = null;
        const again = await send(stale.map((e) => lines[e.index]!));
        errs = [
          ...errs.filter((e) => !STALE_NAME.test(e.text)),
          ...again.map((e) => ({ index: stale[e.index]!.index, text: e.text })),
        ].sort((a, b) => a.index - b.index);
      }
      if (errs.length)
        throw new CommandError(
          ["ip", "-batch", ...(ns ? [ns] : [])],
          1,
          errs.map((e) => `line ${e.index + 1}: ${e.text}`).join("\n"),
        );
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
