// Shared pieces of the real-runtime tests (podman, portmap chaining): a
// sandbox with unique namespace names, running programs with an argument
// vector, the daemon's allocations, what is left in a node namespace, a
// busybox image rootfs, and a small libcni-style conflist runner.

import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { HOST_VETH_PREFIX } from "../../cni/facts.js";
import { silentLogger } from "../../lib/log.js";
import { BUILT } from "../../lib/process.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { call } from "../daemon-harness.js";

export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const REFERENCE_PLUGINS = "/usr/lib/cni";

/** A short per-run prefix for namespaces and network names, e.g. `ewp3k9x2`. */
export function uniquePrefix(tag: string): string {
  return `ew${tag}${randomBytes(3).toString("hex")}`;
}

/** Throws (never skips) when a tool the test needs is missing, naming the package to install. */
export function requireTools(tools: Record<string, string>): void {
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(tools)) {
    const candidates = tool.startsWith("/") ? [tool] : SYSTEM_PATH.split(":").map((d) => join(d, tool));
    const found = candidates.some((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (!found) missing.push(`${tool} (Debian package ${pkg})`);
  }
  if (missing.length)
    throw new Error(`missing tools: ${missing.join(", ")}; run test/setup.sh as root to install them`);
  if (process.getuid?.() !== 0) throw new Error("the runtime tests need root (network namespaces, podman)");
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv[0] with argv[1..] (never through a shell); resolves with the exit code and output. */
export function run(
  argv: string[],
  opts: { stdin?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ?? { ...process.env, PATH: process.env.PATH ?? SYSTEM_PATH },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.stdin ?? "");
  });
}

/** Like run, but throws with the output when the exit code is not 0; returns stdout. */
export async function must(argv: string[], opts: Parameters<typeof run>[1] = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0)
    throw new Error(`${argv.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** Synchronous, for cleanup paths: stdout, or "" when it failed. */
export function quiet(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 30_000 });
  return r.status === 0 ? r.stdout : "";
}

export function netnsNames(): string[] {
  return quiet(["ip", "netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
}

export interface RuntimeSandbox {
  sb: Sandbox;
  dir: string;
  prefix: string;
  nodes: SandboxNode[];
  stop(): Promise<void>;
}

/** A sandbox of `nodes` nodes whose namespaces all start with `prefix`. */
export async function startSandbox(
  prefix: string,
  nodes: number,
  sets: string[] = [],
): Promise<RuntimeSandbox> {
  if (!existsSync(BUILT.plugin))
    throw new Error(`the plugin is not built (${BUILT.plugin}): run npm run build`);
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-sbx-`));
  const sb = await sandboxUp({
    dir,
    nodes,
    world: sandboxWorld(nodes, prefix),
    sets: ["pool.cooldownSeconds=0.5", ...sets],
    log: silentLogger,
  });
  return {
    sb,
    dir,
    prefix,
    nodes: sb.file.nodes,
    stop: async () => {
      await sb.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Allocation {
  containerId: string;
  ifname: string;
  ip: string;
  eniId: string;
  pod: { namespace: string; name: string; uid: string };
}

export async function allocations(node: SandboxNode): Promise<Allocation[]> {
  const r = await call(node.socket, "GET", "/v1/allocations");
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body as { allocations: Allocation[] }).allocations;
}

/** The node's own address: the IPv4 address of eth0 (its primary ENI) in the node namespace. */
export async function nodeAddress(node: SandboxNode): Promise<string> {
  const links = JSON.parse(await must(["ip", "-n", node.netns, "-j", "addr", "show", "dev", "eth0"])) as {
    addr_info: { family: string; local: string }[];
  }[];
  const a = links[0]?.addr_info.find((x) => x.family === "inet")?.local;
  if (!a) throw new Error(`no IPv4 address on eth0 in ${node.netns}`);
  return a;
}

/** Host-side pod veths (the plugin names them `eni…`) in a node namespace. */
export async function hostVeths(node: SandboxNode): Promise<string[]> {
  const links = JSON.parse(await must(["ip", "-n", node.netns, "-j", "link", "show"])) as {
    ifname: string;
  }[];
  return links.map((l) => l.ifname).filter((n) => n.startsWith(HOST_VETH_PREFIX));
}

/** The policy rules (priority 512/2048) that mention an address. */
export async function podRules(node: SandboxNode, ip: string): Promise<string[]> {
  return (await must(["ip", "-n", node.netns, "rule"])).split("\n").filter((l) => l.includes(` ${ip} `));
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A tar of a tiny rootfs: the static busybox and the applets the tests use,
 * for `podman import`.
 */
export async function busyboxRootfsTar(dir: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await mkdir(join(rootfs, "bin"), { recursive: true });
  for (const d of ["etc", "proc", "sys", "dev", "tmp", "run"])
    await mkdir(join(rootfs, d), { recursive: true });
  await copyFile("/bin/busybox", join(rootfs, "bin/busybox"));
  for (const applet of ["sh", "ping", "ip", "sleep", "cat", "nc", "hostname", "true"])
    await symlink("busybox", join(rootfs, "bin", applet));
  const tar = join(dir, "rootfs.tar");
  await must(["tar", "-C", rootfs, "--numeric-owner", "--owner=0", "--group=0", "-cf", tar, "."]);
  return tar;
}

/** A TCP server in a namespace that answers each connection with its own and its peer's address. */
export const ECHO_ADDRESS_SERVER = `
const net = require("node:net");
net.createServer((s) => s.end(JSON.stringify({ local: s.localAddress, localPort: s.localPort, remote: s.remoteAddress }) + "\\n"))
  .listen(Number(process.argv[1]), "0.0.0.0", () => console.log("ready"));
`;

/** Connects to argv[1]:argv[2], prints what the server sent; exits 2 on timeout, 3 on error. */
export const TCP_CLIENT = `
const s = require("node:net").connect({ host: process.argv[1], port: Number(process.argv[2]) });
let d = "";
s.setTimeout(3000, () => { console.error("timeout"); process.exit(2); });
s.on("data", (c) => { d += c; });
s.on("end", () => { process.stdout.write(d); process.exit(0); });
s.on("error", (e) => { console.error(e.code); process.exit(3); });
`;

/** `ip netns exec NS node -e TCP_CLIENT HOST PORT`. */
export function tcpConnect(netns: string, host: string, port: number): Promise<Ran> {
  return run(["ip", "netns", "exec", netns, process.execPath, "-e", TCP_CLIENT, host, String(port)], {
    timeoutMs: 10_000,
  });
}

// --- a libcni-style chain runner --------------------------------------------

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: ({ type: string; capabilities?: Record<string, boolean> } & Record<string, unknown>)[];
}

export interface ChainCall {
  containerId: string;
  netns: string;
  ifname: string;
  /** Runtime-provided values, handed to plugins that declare the capability (libcni's rule). */
  runtimeConfig?: Record<string, unknown>;
  /** Folders searched for plugin binaries (CNI_PATH). */
  binDirs: string[];
  /** Run every plugin inside this namespace (`ip netns exec`), as a runtime on that node would. */
  inNetns: string;
}

export interface PluginRun extends Ran {
  type: string;
  stdinSent: Record<string, unknown>;
}

function findPlugin(type: string, dirs: string[]): string {
  for (const d of dirs) if (existsSync(join(d, type))) return join(d, type);
  throw new Error(`CNI plugin ${type} not found in ${dirs.join(":")}`);
}

/** The network configuration one plugin of a conflist sees, as libcni builds it. */
function netconfFor(
  list: Conflist,
  i: number,
  c: ChainCall,
  prevResult: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const p = list.plugins[i]!;
  const conf: Record<string, unknown> = { cniVersion: list.cniVersion, name: list.name, ...p };
  const caps = Object.entries(p.capabilities ?? {})
    .filter(([, on]) => on)
    .map(([k]) => k);
  const rc: Record<string, unknown> = {};
  for (const k of caps) if (c.runtimeConfig && k in c.runtimeConfig) rc[k] = c.runtimeConfig[k];
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  if (prevResult) conf.prevResult = prevResult;
  return conf;
}

async function execPlugin(
  command: string,
  list: Conflist,
  i: number,
  c: ChainCall,
  prevResult: Record<string, unknown> | undefined,
): Promise<PluginRun> {
  const type = list.plugins[i]!.type;
  const stdinSent = netconfFor(list, i, c, prevResult);
  const r = await run(["ip", "netns", "exec", c.inNetns, findPlugin(type, c.binDirs)], {
    stdin: JSON.stringify(stdinSent),
    env: {
      PATH: SYSTEM_PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: c.containerId,
      CNI_NETNS: c.netns,
      CNI_IFNAME: c.ifname,
      CNI_PATH: c.binDirs.join(":"),
    },
    timeoutMs: 60_000,
  });
  return { ...r, type, stdinSent };
}

/**
 * ADD through the chain: each plugin gets the previous one's result as
 * prevResult; stops at the first failure. Returns every run (the last
 * successful stdout is the chain's result).
 */
export async function chainAdd(list: Conflist, c: ChainCall): Promise<PluginRun[]> {
  const runs: PluginRun[] = [];
  let prev: Record<string, unknown> | undefined;
  for (let i = 0; i < list.plugins.length; i++) {
    const r = await execPlugin("ADD", list, i, c, prev);
    runs.push(r);
    if (r.code !== 0) break;
    prev = JSON.parse(r.stdout) as Record<string, unknown>;
  }
  return runs;
}

/** CHECK through the chain, each plugin with the chain's cached result. */
export async function chainCheck(
  list: Conflist,
  c: ChainCall,
  cached: Record<string, unknown>,
): Promise<PluginRun[]> {
  const runs: PluginRun[] = [];
  for (let i = 0; i < list.plugins.length; i++) runs.push(await execPlugin("CHECK", list, i, c, cached));
  return runs;
}

/** DEL through the chain in reverse order, each plugin with the cached result (or none); runs them all. */
export async function chainDel(
  list: Conflist,
  c: ChainCall,
  cached: Record<string, unknown> | undefined,
): Promise<PluginRun[]> {
  const runs: PluginRun[] = [];
  for (let i = list.plugins.length - 1; i >= 0; i--) runs.push(await execPlugin("DEL", list, i, c, cached));
  return runs;
}

export function describeRuns(runs: PluginRun[]): string {
  return runs
    .map((r) => `${r.type}: exit ${r.code}\n  stdout: ${r.stdout.trim()}\n  stderr: ${r.stderr.trim()}`)
    .join("\n");
}
