// Running `ip` for the simulator's datapath: always an argument vector (never
// a shell), one process per batch (`ip [-n NS] -batch -` reads commands from
// stdin), and every name, address and MAC checked before it reaches a command
// line, so nothing from a world file or an API call can inject a token.

import { readdir } from "node:fs/promises";
import { CommandError, exec } from "../../lib/exec.js";
import { ipJson, writeProcSys } from "../../lib/ip.js";
import { isIfname, isIpv4, isMac, NETNS_NAME } from "../../lib/net.js";
import { canonicalAddr, type Family, formatNet, parseNet } from "./addr.js";

/** Where `ip netns` keeps its namespace files. */
export const NETNS_DIR = "/run/netns";

/** What may appear in a batch line at all: no blanks, quotes, comments or line breaks. */
const TOKEN = /^[A-Za-z0-9_.:/@-]+$/;

/** The path of a named namespace, as lib/ip.ts takes it. */
const pathOf = (netns: string): string => `${NETNS_DIR}/${netnsName(netns)}`;

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

/** An IPv6 address, in canonical form. */
export function ipv6(s: string): string {
  const c = canonicalAddr(s, 6);
  if (c === undefined) throw new Error(`invalid IPv6 address: ${JSON.stringify(s)}`);
  return c;
}

/** A CIDR of the family without host bits, in canonical form. */
export function cidr(s: string, family: Family): string {
  const n = parseNet(s, family);
  if (!n) throw new Error(`invalid IPv${family} CIDR: ${JSON.stringify(s)}`);
  return formatNet(n);
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
  /**
   * Run as `ip -6`: needed for `rule` lines, whose family `ip` otherwise takes
   * as IPv4 for the whole batch.
   */
  ipv6?: boolean;
}

export interface BatchResult {
  ok: boolean;
  stderr: string;
}

/**
 * Runs the lines through one `ip [-n NS] [-force] -batch -`. Without `force`
 * a failure rejects with a CommandError (ip names the failing line); with
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
    "ip",
    ...(netns === null ? [] : ["-n", netnsName(netns)]),
    ...(opts.ipv6 ? ["-6"] : []),
    ...(opts.force ? ["-force"] : []),
    "-batch",
    "-",
  ];
  try {
    await exec(argv, `${lines.join("\n")}\n`);
    return { ok: true, stderr: "" };
  } catch (e) {
    if (opts.force && e instanceof CommandError) return { ok: false, stderr: e.stderr };
    throw e;
  }
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
  return ipJson<LinkInfo[]>(pathOf(netns), ["link", "show", ...filter]);
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

/** Writes `value` to sysctl keys of a namespace (dotted names such as `net.ipv4.ip_forward`). */
export async function setSysctls(netns: string, keys: string[], value: string): Promise<void> {
  await writeProcSys(pathOf(netns), Object.fromEntries(keys.map((k) => [k.replaceAll(".", "/"), value])));
}
