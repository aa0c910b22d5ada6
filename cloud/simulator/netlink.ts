// Running `ip` for the simulator's datapath: always an argument vector (never
// a shell), one process per batch (`ip [-n NS] -batch -` reads commands from
// stdin), and every name, address and MAC checked before it reaches a command
// line, so nothing from a world file or an API call can inject a token.

import { execFile, spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { isIfname, isIpv4, isMac, NETNS_NAME } from "../../lib/net.js";

/** Where `ip netns` keeps its namespace files. */
export const NETNS_DIR = "/run/netns";

/** What may appear in a batch line at all: no blanks, quotes, comments or line breaks. */
const TOKEN = /^[A-Za-z0-9_.:/@-]+$/;

export class IpCommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
    readonly input = "",
  ) {
    super(`ip ${argv.join(" ")} failed (${code ?? "signal"}): ${stderr.trim() || "no message"}`);
    this.name = "IpCommandError";
  }
}

export function netnsName(s: string): string {
  if (!NETNS_NAME.test(s)) throw new Error(`invalid network namespace name: ${JSON.stringify(s)}`);
  return s;
}

export function ifName(s: string): string {
  if (!isIfname(s)) throw new Error(`invalid interface name: ${JSON.stringify(s)}`);
  return s;
}

export function macAddress(s: string): string {
  const m = s.toLowerCase();
  if (!isMac(m)) throw new Error(`invalid MAC address: ${JSON.stringify(s)}`);
  return m;
}

export function ipv4(s: string): string {
  if (!isIpv4(s)) throw new Error(`invalid IPv4 address: ${JSON.stringify(s)}`);
  return s;
}

export function prefixLength(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 32) throw new Error(`invalid prefix length: ${n}`);
  return String(n);
}

/** One batch line from already validated tokens; a token that could split or comment a line is refused. */
export function line(...tokens: string[]): string {
  for (const t of tokens)
    if (!TOKEN.test(t)) throw new Error(`unsafe token for ip -batch: ${JSON.stringify(t)}`);
  return tokens.join(" ");
}

export interface BatchOptions {
  /** Keep going after a failed command (`-force`); the result then reports the failures. */
  force?: boolean;
}

export interface BatchResult {
  ok: boolean;
  stderr: string;
}

/**
 * Runs the lines through one `ip [-n NS] [-force] -batch -`. Without `force`
 * a failure rejects with an IpCommandError (ip names the failing line); with
 * it, the outcome is returned.
 */
export async function ipBatch(
  netns: string | null,
  lines: string[],
  opts: BatchOptions = {},
): Promise<BatchResult> {
  if (lines.length === 0) return { ok: true, stderr: "" };
  for (const l of lines) line(...l.split(" "));
  const argv = [
    ...(netns === null ? [] : ["-n", netnsName(netns)]),
    ...(opts.force ? ["-force"] : []),
    "-batch",
    "-",
  ];
  const input = `${lines.join("\n")}\n`;
  return new Promise((resolve, reject) => {
    const child = spawn("ip", argv, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve({ ok: true, stderr });
      else if (opts.force) resolve({ ok: false, stderr });
      else reject(new IpCommandError(argv, code, stderr, input));
    });
    child.stdin.on("error", () => {}); // a failing ip may close stdin early; "close" reports it
    child.stdin.end(input);
  });
}

/** Runs a program with an argument vector; resolves with stdout, rejects with stderr in the message. */
export function run(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new IpCommandError([file, ...args], child.exitCode, String(stderr)));
      else resolve(String(stdout));
    });
    if (input !== undefined) {
      child.stdin?.on("error", () => {});
      child.stdin?.end(input);
    }
  });
}

export interface LinkInfo {
  ifname: string;
  address?: string;
  flags?: string[];
  operstate?: string;
  link_type?: string;
}

/** `ip -n NS -j link show` parsed. */
export async function listLinks(netns: string, ...filter: string[]): Promise<LinkInfo[]> {
  for (const t of filter) line(t);
  const out = await run("ip", ["-n", netnsName(netns), "-j", "link", "show", ...filter]);
  const parsed: unknown = JSON.parse(out || "[]");
  return Array.isArray(parsed) ? (parsed as LinkInfo[]) : [];
}

/** The named network namespaces that exist now (the files in /run/netns). */
export async function listNetns(): Promise<Set<string>> {
  try {
    return new Set(await readdir(NETNS_DIR));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Set();
    throw e;
  }
}

/**
 * Writes `value` to sysctl files of a namespace in one process: `ip netns
 * exec NS tee FILE...` (coreutils, present everywhere, unlike procps'
 * sysctl). `keys` are dotted sysctl names such as `net.ipv4.ip_forward`.
 */
export async function setSysctls(netns: string, keys: string[], value: string): Promise<void> {
  if (!/^[0-9]{1,6}$/.test(value)) throw new Error(`invalid sysctl value: ${JSON.stringify(value)}`);
  const files = keys.map((k) => {
    if (!/^net(\.[A-Za-z0-9_-]+){2,4}$/.test(k)) throw new Error(`invalid sysctl name: ${JSON.stringify(k)}`);
    return `/proc/sys/${k.replaceAll(".", "/")}`;
  });
  if (files.length === 0) return;
  await run("ip", ["netns", "exec", netnsName(netns), "tee", ...files], `${value}\n`);
}
