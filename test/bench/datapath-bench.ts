// The datapath against its underlay, on one two-node sandbox in one run: TCP
// throughput (iperf3, one stream) and round trip (ping) of pod ↔ pod across
// the simulated VPC (pods wired by the real plugin through CNI ADD), of node ↔
// node over the same VPC (the underlay, between the nodes' primary
// addresses), and of two pods on one node wired by the reference bridge +
// host-local. What the difference costs: the legs pod → other node and node →
// pod on the other node, plain veth chains of 1 to 4 pairs (routing only: no
// policy rules, no netfilter), and a shared-device datapath built by hand on
// the ENI devices of the two nodes (ipvlan L2, what Terway offers for this
// reason; on a kernel without ipvlan, macvlan passthru, its closest kin). The
// MTU end to end: each device's MTU on the way, DF pings of MTU − 28 bytes
// (they cross) and MTU − 27 (refused), the TCP MSS and the IP fragment
// counters of every namespace the traffic crossed. The paths are measured in
// rounds, every path once per round, so a busy machine slows them alike.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { exec } from "../../lib/exec.js";
import { silentLogger } from "../../lib/log.js";
import { findTool, waitExit } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { quantile } from "../helpers/stats.js";
import { REF } from "./cni-bench.js";

export const PATHS = [
  "pod",
  "underlay",
  "podToNode",
  "nodeToPod",
  "bridge",
  "shared",
  "chain1",
  "chain2",
  "chain3",
  "chain4",
] as const;
export type PathName = (typeof PATHS)[number];

/** The shared-device datapath built by hand on the ENI devices. */
export type SharedKind = "ipvlan l2" | "macvlan passthru";

export interface PathFigures {
  /** Veth pairs a packet crosses one way, and the namespaces that route it on (IP forwarding). */
  vethPairs: number;
  forwards: number;
  /** One TCP stream (iperf3), Gbit/s: the median of the runs, and each run. */
  gbps: number;
  runsGbps: number[];
  /** Segments the sender retransmitted over the runs; of them, those the receiver had already (DSACK: reordered, not lost). */
  retransmits: number;
  spurious: number;
  /**
   * CPU of the iperf3 processes (their own rusage, which also holds the
   * softirq work done in their context: on veths, most of the path's), medians
   * of the runs: the sender's and the receiver's share of one CPU (%), and
   * both together per GB carried (CPU ms/GB), which a busy machine moves less
   * than the throughput.
   */
  cpu: { senderPct: number; receiverPct: number; msPerGB: number };
  /**
   * Request/response: ICMP echoes back to back (`ping -A`: the next is sent
   * when the reply is in, as a TCP_RR test does), round trip in µs: median,
   * p99 and mean of every reply; replies; echoes unanswered.
   */
  rttUs: Rtt & { mean: number };
  /** Echoes 10 ms apart: what a client that sends now and then sees, mostly the time to wake idle CPUs. */
  pacedRttUs: Rtt;
}

export interface Rtt {
  p50: number;
  p99: number;
  n: number;
  lost: number;
}

export interface MtuFigures {
  /** The MTU in the ADD's result (CNI 1.1.0 `mtu`): the daemon's `datapath.mtu`; null when the result has none. */
  daemon: number | null;
  podEth0: number;
  hostVeth: number;
  eni: number;
  nodePrimary: number;
  /** The VPC router's device of the pod's ENI. */
  vpcRouter: number;
  shared: number;
  bridgePod: number;
  /** pod → pod across the nodes with DF set: the largest payload that fits (MTU − 28), and one byte more. */
  fits: { size: number; sent: number; replies: number };
  tooBig: { size: number; sent: number; replies: number; said: string };
  /** The MSS of iperf3's connection pod → pod. */
  tcpMss: number;
  /** IP fragments made and reassemblies asked for over all the runs, in every namespace the traffic crossed. */
  fragments: number;
  namespaces: number;
}

export interface DatapathFigures {
  runs: number;
  seconds: number;
  /** Echoes per path and round: back to back, and 10 ms apart. */
  echoes: { backToBack: number; paced: number };
  /** Where iperf3's two ends ran. */
  affinity: string;
  /** What the shared-device path was built with, and why when it is not ipvlan. */
  shared: { kind: SharedKind; note: string };
  paths: Record<PathName, PathFigures>;
  ratio: {
    /** pod ↔ pod over node ↔ node (target >= 0.95). */
    podToUnderlay: number;
    podToBridge: number;
    sharedToUnderlay: number;
    sharedToPod: number;
    /** What the hops alone predict for pod/underlay: 4 plain veth pairs over 2. */
    chain4ToChain2: number;
  };
  /** Round trip of the two extra veth pairs and forwards (µs, mean back to back): pod − underlay, and chain4 − chain2. */
  extraRttUs: { pod: number; chains: number };
  mtu: MtuFigures;
}

/** What each path is, for tables and plots. */
export function pathLabel(name: PathName, shared: SharedKind): string {
  const labels: Record<PathName, string> = {
    pod: "pod ↔ pod, two nodes (eniway)",
    underlay: "node ↔ node (underlay)",
    podToNode: "pod → the other node",
    nodeToPod: "node → a pod of the other node",
    bridge: "pod ↔ pod, one node (bridge + host-local)",
    shared: `${shared} on the ENIs (by hand)`,
    chain1: "plain veth chain, 1 pair",
    chain2: "plain veth chain, 2 pairs",
    chain3: "plain veth chain, 3 pairs",
    chain4: "plain veth chain, 4 pairs",
  };
  return labels[name];
}

/** The family each path belongs to, for the plot's colours. */
export function pathGroup(name: PathName): string {
  if (name === "pod" || name === "podToNode" || name === "nodeToPod") return "eniway";
  if (name === "underlay") return "underlay";
  if (name === "bridge") return "bridge + host-local";
  if (name === "shared") return "shared device on the ENI";
  return "plain veth chain";
}

const IPERF_PORT = "5201";
/**
 * The iperf3 client on CPU 0 and its server on CPU 1 (when there are two):
 * left to the scheduler, they share a CPU in some runs and not in others,
 * which moved one path's runs between 10 and 16 Gbit/s on 2 CPUs. On veths
 * the sender's CPU also does the softirq work of every hop, so that is the
 * CPU each extra hop costs.
 */
const PINNED = availableParallelism() >= 2;
const AFFINITY = PINNED ? ["-A", "0,1"] : [];
const CHAIN_NET = "10.201";
const BRIDGE_SUBNET = "10.250.0.0/24";

// ---- running programs (argument vectors only)

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; never rejects (a program that cannot start has code -1). */
function run(argv: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr: stderr || (err?.message ?? "") });
    });
  });
}

const inNs = (ns: string, ...argv: string[]): string[] => ["ip", "netns", "exec", ns, ...argv];
const ip = (ns: string, ...args: string[]): Promise<string> => exec(["ip", "-n", ns, ...args]);
const ipJson = async <T>(ns: string, ...args: string[]): Promise<T> =>
  JSON.parse(await exec(["ip", "-j", "-n", ns, ...args])) as T;

/** A CNI plugin run as a runtime runs it: `argv` (the plugin, maybe behind `ip netns exec`), env, config on stdin. */
function cni(
  argv: string[],
  env: Record<string, string>,
  conf: object,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
      stdio: ["pipe", "pipe", "ignore"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("close", (code) => resolve({ code, out }));
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(conf));
  });
}

/** Namespaces the bench makes beside the sandbox's; every one is deleted at the end, whatever happened. */
interface Scratch {
  netns(name: string): Promise<string>;
  remove(name: string): Promise<void>;
  /** Deletes every namespace left; returns those it could not delete. */
  removeAll(): Promise<string[]>;
}

function scratchSpace(): Scratch {
  const made = new Set<string>();
  const remove = async (name: string): Promise<void> => {
    const r = await run(["ip", "netns", "del", name]);
    if (r.code === 0 || !existsSync(`/var/run/netns/${name}`)) made.delete(name);
  };
  return {
    async netns(name) {
      await exec(["ip", "netns", "add", name]);
      made.add(name);
      await ip(name, "link", "set", "lo", "up");
      return name;
    },
    remove,
    async removeAll() {
      for (const name of [...made].reverse()) await remove(name);
      return [...made];
    },
  };
}

// ---- what the paths run between

interface Pod {
  ns: string;
  ip: string;
  /** The MTU the ADD's result gave the pod's interface, if any. */
  mtu: number | null;
}

interface CniResult {
  interfaces?: { name: string; mtu?: number; sandbox?: string }[];
  ips?: { address: string }[];
}

/** A pod wired by the real plugin: ADD with the node's configuration, as CNI 1.1.0 (its result carries the MTU). */
async function eniwayPod(scratch: Scratch, node: SandboxNode, ns: string): Promise<Pod> {
  await scratch.netns(ns);
  const conf = { ...(await netconf(node)), cniVersion: "1.1.0" };
  const r = await runPlugin(
    node,
    {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: `ctr-${ns}`,
      CNI_NETNS: `/var/run/netns/${ns}`,
      CNI_IFNAME: "eth0",
    },
    conf,
  );
  if (r.code !== 0) throw new Error(`eniway ADD of ${ns} on ${node.name} failed: ${r.out}`);
  const res = JSON.parse(r.out) as CniResult;
  const address = res.ips?.[0]?.address;
  if (!address) throw new Error(`eniway ADD of ${ns} gave no IP: ${r.out}`);
  const eth0 = res.interfaces?.find((i) => i.sandbox !== undefined);
  return { ns, ip: address.split("/")[0]!, mtu: eth0?.mtu ?? null };
}

/** Two pods on one node wired by bridge + host-local; the node is a namespace of the bench's own. */
async function bridgePods(
  scratch: Scratch,
  prefix: string,
  dir: string,
): Promise<{ node: string; pods: Pod[] }> {
  for (const p of ["bridge", "host-local"])
    if (!existsSync(join(REF, p)))
      throw new Error(`${REF}/${p} is missing: apt-get install containernetworking-plugins`);
  const node = await scratch.netns(`${prefix}-brnode`);
  const conf = {
    cniVersion: "1.0.0",
    name: "bench-bridge",
    type: "bridge",
    bridge: "cni0",
    isGateway: true,
    ipam: { type: "host-local", subnet: BRIDGE_SUBNET, dataDir: join(dir, "ipam") },
  };
  const pods: Pod[] = [];
  for (const n of [1, 2]) {
    const ns = await scratch.netns(`${prefix}-br${n}`);
    const env = {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: `bridge-${n}`,
      CNI_NETNS: `/var/run/netns/${ns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: REF,
    };
    const r = await cni(inNs(node, join(REF, "bridge")), env, conf);
    if (r.code !== 0) throw new Error(`bridge ADD of ${ns} failed: ${r.out}`);
    const address = (JSON.parse(r.out) as CniResult).ips?.[0]?.address;
    if (!address) throw new Error(`bridge ADD of ${ns} gave no IP: ${r.out}`);
    pods.push({ ns, ip: address.split("/")[0]!, mtu: null });
  }
  return { node, pods };
}

/**
 * n veth pairs in a row through n + 1 namespaces that only route (link k:
 * CHAIN_NET.k.1 on the left, .2 on the right); the client is the first, the
 * server the last.
 */
async function vethChain(
  scratch: Scratch,
  prefix: string,
  n: number,
): Promise<{ namespaces: string[]; ip: string }> {
  const names: string[] = [];
  for (let k = 0; k <= n; k++) names.push(await scratch.netns(`${prefix}-c${n}-${k}`));
  const net = (k: number): string => `${CHAIN_NET}.${k}`;
  for (let k = 0; k < n; k++) {
    await ip(
      names[k]!,
      "link",
      "add",
      `l${k}`,
      "type",
      "veth",
      "peer",
      "name",
      `r${k}`,
      "netns",
      names[k + 1]!,
    );
    await ip(names[k]!, "addr", "add", `${net(k)}.1/24`, "dev", `l${k}`);
    await ip(names[k + 1]!, "addr", "add", `${net(k)}.2/24`, "dev", `r${k}`);
    await ip(names[k]!, "link", "set", `l${k}`, "up");
    await ip(names[k + 1]!, "link", "set", `r${k}`, "up");
  }
  for (let k = 1; k < n; k++) {
    await exec(inNs(names[k]!, "sysctl", "-qw", "net.ipv4.ip_forward=1"));
    for (let j = 0; j < k - 1; j++)
      await ip(names[k]!, "route", "add", `${net(j)}.0/24`, "via", `${net(k - 1)}.1`);
    for (let j = k + 1; j < n; j++)
      await ip(names[k]!, "route", "add", `${net(j)}.0/24`, "via", `${net(k)}.2`);
  }
  await ip(names[0]!, "route", "add", "default", "via", `${net(0)}.2`);
  await ip(names[n]!, "route", "add", "default", "via", `${net(n - 1)}.1`);
  return { namespaces: names, ip: `${net(n - 1)}.2` };
}

interface Route {
  dev: string;
  gateway?: string;
}

/** The primary IPv4 address of a node (its eth0). */
async function primaryIp(node: string): Promise<string> {
  const [link] = await ipJson<{ addr_info: { family: string; local: string }[] }[]>(
    node,
    "addr",
    "show",
    "dev",
    "eth0",
  );
  const a = link?.addr_info.find((x) => x.family === "inet")?.local;
  if (!a) throw new Error(`${node} has no IPv4 address on eth0`);
  return a;
}

async function mtuOf(ns: string, dev: string): Promise<number> {
  const [link] = await ipJson<{ mtu: number }[]>(ns, "link", "show", "dev", dev);
  if (!link) throw new Error(`no ${dev} in ${ns}`);
  return link.mtu;
}

/** Where the node sends a pod's traffic to `dst`, as its policy routing decides: the pod's host veth and its ENI device. */
async function podWiring(node: string, pod: Pod, dst: string): Promise<{ hostVeth: string; eni: Route }> {
  const [toPod] = await ipJson<Route[]>(node, "route", "get", pod.ip);
  if (!toPod) throw new Error(`${node} has no route to its pod ${pod.ip}`);
  const [out] = await ipJson<Route[]>(node, "route", "get", dst, "from", pod.ip, "iif", toPod.dev);
  if (!out) throw new Error(`${node} has no route from its pod ${pod.ip} to ${dst}`);
  return { hostVeth: toPod.dev, eni: out };
}

// ---- the shared-device datapath

interface SharedSide {
  node: string;
  /** The ENI device in the node namespace, its gateway, and the IP (of that ENI) the device gets. */
  eni: Route;
  ip: string;
  ns: string;
}

const sharedType = (kind: SharedKind): string[] =>
  kind === "ipvlan l2" ? ["type", "ipvlan", "mode", "l2"] : ["type", "macvlan", "mode", "passthru"];

/** The kernel's own word on ipvlan (its build configuration), if it has one to give. */
function ipvlanConfig(): string {
  try {
    const config = gunzipSync(readFileSync("/proc/config.gz")).toString();
    return /^(# )?CONFIG_IPVLAN[ =].*$/m.exec(config)?.[0] ?? "no CONFIG_IPVLAN line in /proc/config.gz";
  } catch {
    return "no /proc/config.gz";
  }
}

/** ipvlan L2 if the kernel makes one on the ENI device; macvlan passthru otherwise, and why. */
async function sharedKind(side: SharedSide, tmp: string): Promise<{ kind: SharedKind; note: string }> {
  const r = await run([
    "ip",
    "-n",
    side.node,
    "link",
    "add",
    tmp,
    "link",
    side.eni.dev,
    ...sharedType("ipvlan l2"),
  ]);
  if (r.code === 0) {
    await ip(side.node, "link", "del", tmp);
    return { kind: "ipvlan l2", note: "ipvlan L2 on each node's ENI device" };
  }
  const said = r.stderr.trim().split("\n")[0] ?? "";
  return {
    kind: "macvlan passthru",
    note: `this kernel makes no ipvlan ("${said}"; ${ipvlanConfig()}), so macvlan passthru stands in: the same shape (the pod's device sends on the ENI device, whose receive handler hands frames to it; no veth, no routing in the node), but it takes the ENI whole, so that ENI's veth pods are cut off while it is up`,
  };
}

/** A device of `kind` on the ENI device in its own namespace, with an IP of that ENI, routed via the ENI's gateway. */
async function sharedUp(scratch: Scratch, kind: SharedKind, side: SharedSide, tmp: string): Promise<void> {
  const gw = side.eni.gateway;
  if (!gw) throw new Error(`the ENI device ${side.eni.dev} in ${side.node} has no gateway`);
  await scratch.netns(side.ns);
  await ip(side.node, "link", "add", tmp, "link", side.eni.dev, ...sharedType(kind));
  await ip(side.node, "link", "set", tmp, "netns", side.ns);
  await ip(side.ns, "link", "set", tmp, "name", "eth0");
  await ip(side.ns, "addr", "add", `${side.ip}/32`, "dev", "eth0");
  await ip(side.ns, "link", "set", "eth0", "up");
  await ip(side.ns, "route", "add", gw, "dev", "eth0");
  await ip(side.ns, "route", "add", "default", "via", gw, "dev", "eth0");
}

/** Deletes the device first (a process left in the namespace would keep it, and the ENI with it), then the namespace. */
async function sharedDown(scratch: Scratch, side: SharedSide, tmp: string): Promise<void> {
  await run(["ip", "-n", side.ns, "link", "del", "eth0"]);
  await run(["ip", "-n", side.node, "link", "del", tmp]);
  await scratch.remove(side.ns);
}

// ---- measuring a path

interface Path {
  client: string;
  server: string;
  ip: string;
  vethPairs: number;
  forwards: number;
  /** Namespaces whose IP counters the path's traffic moves. */
  crosses: string[];
  /** Runs a measurement with what the path needs made before and removed after (the shared device). */
  around?: (measure: () => Promise<Sample>) => Promise<Sample>;
}

interface Sample {
  gbps: number;
  retransmits: number;
  spurious: number;
  senderPct: number;
  receiverPct: number;
  msPerGB: number;
  mss: number;
  echo: Echoes;
  paced: Echoes;
  /** Fragments counted in namespaces that only live during the measurement. */
  fragments: number;
}

/** A namespace's /proc/net/snmp or /proc/net/netstat as "Group:Name" → value. */
async function counters(ns: string, file: "snmp" | "netstat"): Promise<Map<string, number>> {
  const lines = (await exec(inNs(ns, "cat", `/proc/net/${file}`))).trim().split("\n");
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [group, ...names] = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/).slice(1);
    names.forEach((name, j) => {
      out.set(`${group}${name}`, Number(values[j]));
    });
  }
  return out;
}

/** IP fragments made plus reassemblies asked for, so far, in a namespace. */
async function fragmentCount(ns: string): Promise<number> {
  const c = await counters(ns, "snmp");
  return (c.get("Ip:FragCreates") ?? 0) + (c.get("Ip:ReasmReqds") ?? 0);
}

const dsackSegs = async (ns: string): Promise<number> =>
  (await counters(ns, "netstat")).get("TcpExt:TCPDSACKRecvSegs") ?? 0;

interface IperfDoc {
  error?: string;
  start?: { tcp_mss_default?: number };
  end?: {
    sum_received?: { bits_per_second: number; bytes: number; seconds: number };
    sum_sent?: { retransmits?: number };
    cpu_utilization_percent?: { host_total: number; remote_total: number };
  };
}

/** One TCP stream from the client's namespace to the server's address for `seconds` (iperf3). */
async function tcp(path: Path, seconds: number): Promise<Omit<Sample, "echo" | "paced" | "fragments">> {
  const [cmd, ...args] = inNs(path.server, "iperf3", "-s", "-1", "-p", IPERF_PORT);
  const server: ChildProcess = spawn(cmd!, args, { stdio: "ignore" });
  try {
    let said = "";
    for (let attempt = 0; attempt < 10; attempt++) {
      await sleep(attempt === 0 ? 200 : 300); // the server starts listening
      const dsack = await dsackSegs(path.client);
      const r = await run(
        inNs(
          path.client,
          "iperf3",
          "-c",
          path.ip,
          "-p",
          IPERF_PORT,
          "-t",
          String(seconds),
          "-J",
          "--connect-timeout",
          "3000",
          ...AFFINITY,
        ),
      );
      let doc: IperfDoc = {};
      try {
        doc = JSON.parse(r.stdout || "{}") as IperfDoc;
      } catch {}
      const got = doc.end?.sum_received;
      const cpu = doc.end?.cpu_utilization_percent ?? { host_total: 0, remote_total: 0 };
      if (r.code === 0 && got?.bits_per_second)
        return {
          gbps: got.bits_per_second / 1e9,
          retransmits: doc.end?.sum_sent?.retransmits ?? 0,
          spurious: (await dsackSegs(path.client)) - dsack,
          senderPct: cpu.host_total,
          receiverPct: cpu.remote_total,
          msPerGB: (((cpu.host_total + cpu.remote_total) / 100) * got.seconds * 1000) / (got.bytes / 1e9),
          mss: doc.start?.tcp_mss_default ?? 0,
        };
      said = doc.error ?? (r.stderr || r.stdout).slice(0, 200);
    }
    throw new Error(`iperf3 from ${path.client} to ${path.ip} failed: ${said}`);
  } finally {
    server.kill();
    await waitExit(server, 5000);
  }
}

interface Echoes {
  /** Each reply's round trip (µs). */
  rttUs: number[];
  lost: number;
}

/** `count` echoes, back to back (`ping -A`) or 10 ms apart: each reply's round trip, and how many had none. */
async function pings(path: Path, count: number, paced: boolean): Promise<Echoes> {
  const pace = paced ? ["-i", "0.01"] : ["-A"];
  const r = await run(inNs(path.client, "ping", "-n", "-c", String(count), ...pace, "-W", "1", path.ip));
  const rttUs = [...r.stdout.matchAll(/ time=([\d.]+) ms/g)].map((m) => Math.round(Number(m[1]) * 1000));
  if (rttUs.length === 0)
    throw new Error(`no ping from ${path.client} to ${path.ip} was answered: ${r.stderr}`);
  return { rttUs, lost: count - rttUs.length };
}

/** Fails with the path named unless the client reaches the server's address (and has its neighbours resolved). */
async function reach(path: Path): Promise<void> {
  const r = await run(inNs(path.client, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", path.ip));
  if (!/ time=/.test(r.stdout))
    throw new Error(`${path.client} does not reach ${path.ip}: ${r.stdout}${r.stderr}`);
}

async function measure(path: Path, opts: BenchOptions): Promise<Sample> {
  const inner = async (): Promise<Sample> => ({
    ...(await tcp(path, opts.seconds)),
    echo: await pings(path, opts.echoes, false),
    paced: await pings(path, opts.paced, true),
    fragments: 0,
  });
  return path.around ? path.around(inner) : inner();
}

const round2 = (x: number): number => Number(x.toFixed(2));
const round3 = (x: number): number => Number(x.toFixed(3));

function rtt(echoes: Echoes[]): Rtt {
  const all = echoes.flatMap((e) => e.rttUs);
  return {
    p50: quantile(all, 0.5),
    p99: quantile(all, 0.99),
    n: all.length,
    lost: echoes.reduce((n, e) => n + e.lost, 0),
  };
}

const median = (xs: number[]): number => quantile(xs, 0.5);

function summary(path: Path, samples: Sample[]): PathFigures {
  const runs = samples.map((s) => s.gbps);
  const echoes = samples.flatMap((s) => s.echo.rttUs);
  return {
    vethPairs: path.vethPairs,
    forwards: path.forwards,
    gbps: round2(quantile(runs, 0.5)),
    runsGbps: runs.map(round2),
    retransmits: samples.reduce((n, s) => n + s.retransmits, 0),
    spurious: samples.reduce((n, s) => n + s.spurious, 0),
    cpu: {
      senderPct: Math.round(median(samples.map((s) => s.senderPct))),
      receiverPct: Math.round(median(samples.map((s) => s.receiverPct))),
      msPerGB: Math.round(median(samples.map((s) => s.msPerGB))),
    },
    rttUs: {
      ...rtt(samples.map((s) => s.echo)),
      mean: Number((echoes.reduce((n, x) => n + x, 0) / echoes.length).toFixed(1)),
    },
    pacedRttUs: rtt(samples.map((s) => s.paced)),
  };
}

/** DF pings of `size` bytes of payload: replies, and what ping said when it could not send. */
async function dfPing(
  client: string,
  dst: string,
  size: number,
  sent: number,
): Promise<{ size: number; sent: number; replies: number; said: string }> {
  const r = await run(
    inNs(
      client,
      "ping",
      "-n",
      "-c",
      String(sent),
      "-i",
      "0.2",
      "-W",
      "1",
      "-M",
      "do",
      "-s",
      String(size),
      dst,
    ),
  );
  const replies = [...r.stdout.matchAll(/ time=/g)].length;
  const said =
    /[^\n]*message too long[^\n]*/.exec(`${r.stderr}\n${r.stdout}`)?.[0] ?? (replies ? "" : "no reply");
  return { size, sent, replies, said };
}

// ---- the bench

export interface BenchOptions {
  /** Rounds: each runs every path once. */
  runs: number;
  /** Of one TCP stream. */
  seconds: number;
  /** Echoes back to back, and paced. */
  echoes: number;
  paced: number;
}

export async function datapathBench(
  opts: BenchOptions = { runs: 5, seconds: 4, echoes: 2000, paced: 200 },
): Promise<DatapathFigures> {
  for (const tool of ["iperf3", "ping"])
    if (findTool(tool) === null)
      throw new Error(`${tool} is missing: apt-get install ${tool === "ping" ? "iputils-ping" : tool}`);
  const prefix = `ewdp${process.pid % 10000}`;
  const tmp = `${prefix}sv`; // the shared device's name in the node namespace, before it moves
  const dir = await mkdtemp(join(tmpdir(), "eniway-datapathbench-"));
  const scratch = scratchSpace();
  const sb = await sandboxUp({
    dir,
    nodes: 2,
    world: sandboxWorld(2, prefix),
    sets: ["pool.minIdle=4", "pool.maxIdle=8", "pool.cooldownSeconds=0", "log.level=info"],
    log: silentLogger,
  }).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  try {
    const [a, b] = sb.file.nodes as [SandboxNode, SandboxNode];
    const vpc = sb.file.vpcNetns;
    const podA = await eniwayPod(scratch, a, `${prefix}-pa`);
    const podB = await eniwayPod(scratch, b, `${prefix}-pb`);
    // Pods whose IPs the shared devices borrow: allocated to them, so the daemons hand them to no one else.
    const donorA = await eniwayPod(scratch, a, `${prefix}-da`);
    const donorB = await eniwayPod(scratch, b, `${prefix}-db`);
    const [ipA, ipB] = [await primaryIp(a.netns), await primaryIp(b.netns)];
    const wiredA = await podWiring(a.netns, podA, ipB);
    const sideA: SharedSide = {
      node: a.netns,
      eni: (await podWiring(a.netns, donorA, ipB)).eni,
      ip: donorA.ip,
      ns: `${prefix}-sa`,
    };
    const sideB: SharedSide = {
      node: b.netns,
      eni: (await podWiring(b.netns, donorB, ipA)).eni,
      ip: donorB.ip,
      ns: `${prefix}-sb`,
    };
    const shared = await sharedKind(sideA, tmp);
    let sharedMtu = 0;
    const bridge = await bridgePods(scratch, prefix, dir);
    const [br1, br2] = bridge.pods as [Pod, Pod];
    const chains = new Map<number, { namespaces: string[]; ip: string }>();
    for (const n of [1, 2, 3, 4]) chains.set(n, await vethChain(scratch, prefix, n));
    const chainPath = (n: number): Path => {
      const c = chains.get(n)!;
      return {
        client: c.namespaces[0]!,
        server: c.namespaces[n]!,
        ip: c.ip,
        vethPairs: n,
        forwards: n - 1,
        crosses: c.namespaces,
      };
    };
    const nodes = [a.netns, vpc, b.netns];
    const paths: Record<PathName, Path> = {
      pod: {
        client: podA.ns,
        server: podB.ns,
        ip: podB.ip,
        vethPairs: 4,
        forwards: 3,
        crosses: [podA.ns, ...nodes, podB.ns],
      },
      underlay: { client: a.netns, server: b.netns, ip: ipB, vethPairs: 2, forwards: 1, crosses: nodes },
      podToNode: {
        client: podA.ns,
        server: b.netns,
        ip: ipB,
        vethPairs: 3,
        forwards: 2,
        crosses: [podA.ns, ...nodes],
      },
      nodeToPod: {
        client: a.netns,
        server: podB.ns,
        ip: podB.ip,
        vethPairs: 3,
        forwards: 2,
        crosses: [...nodes, podB.ns],
      },
      bridge: {
        client: br1.ns,
        server: br2.ns,
        ip: br2.ip,
        vethPairs: 2,
        forwards: 0,
        crosses: [br1.ns, bridge.node, br2.ns],
      },
      shared: {
        client: sideA.ns,
        server: sideB.ns,
        ip: sideB.ip,
        vethPairs: 2,
        forwards: 1,
        crosses: [vpc],
        around: async (inner) => {
          try {
            await sharedUp(scratch, shared.kind, sideA, tmp);
            await sharedUp(scratch, shared.kind, sideB, tmp);
            sharedMtu = await mtuOf(sideA.ns, "eth0");
            await reach(paths.shared);
            const s = await inner();
            // Its namespaces go after each round: count their fragments now (they start at none).
            const made = (await fragmentCount(sideA.ns)) + (await fragmentCount(sideB.ns));
            return { ...s, fragments: s.fragments + made };
          } finally {
            await sharedDown(scratch, sideA, tmp);
            await sharedDown(scratch, sideB, tmp);
          }
        },
      },
      chain1: chainPath(1),
      chain2: chainPath(2),
      chain3: chainPath(3),
      chain4: chainPath(4),
    };
    for (const name of PATHS) if (name !== "shared") await reach(paths[name]);

    const counted = [...new Set(PATHS.flatMap((name) => paths[name].crosses))];
    const fragmentsBefore = await Promise.all(counted.map(fragmentCount));
    const samples = new Map<PathName, Sample[]>(PATHS.map((name) => [name, []]));
    for (let r = 0; r < opts.runs; r++)
      // Each round starts at another path, so none is always first or last.
      for (const name of [...PATHS.slice(r % PATHS.length), ...PATHS.slice(0, r % PATHS.length)])
        samples.get(name)!.push(await measure(paths[name], opts));
    const fragmentsAfter = await Promise.all(counted.map(fragmentCount));
    const all = [...samples.values()].flat();
    const fragments =
      fragmentsAfter.reduce((n, x, i) => n + x - fragmentsBefore[i]!, 0) +
      all.reduce((n, s) => n + s.fragments, 0);

    const podMtu = await mtuOf(podA.ns, "eth0");
    const mtu: MtuFigures = {
      daemon: podA.mtu,
      podEth0: podMtu,
      hostVeth: await mtuOf(a.netns, wiredA.hostVeth),
      eni: await mtuOf(a.netns, wiredA.eni.dev),
      nodePrimary: await mtuOf(a.netns, "eth0"),
      vpcRouter: await mtuOf(vpc, (await ipJson<Route[]>(vpc, "route", "get", podA.ip))[0]!.dev),
      shared: sharedMtu,
      bridgePod: await mtuOf(br1.ns, "eth0"),
      fits: await dfPing(podA.ns, podB.ip, podMtu - 28, 3),
      tooBig: await dfPing(podA.ns, podB.ip, podMtu - 27, 3),
      tcpMss: samples.get("pod")![0]!.mss,
      fragments,
      namespaces: counted.length + 2, // and the shared devices' two
    };
    const f = Object.fromEntries(
      PATHS.map((name) => [name, summary(paths[name], samples.get(name)!)]),
    ) as Record<PathName, PathFigures>;
    return {
      runs: opts.runs,
      seconds: opts.seconds,
      echoes: { backToBack: opts.echoes, paced: opts.paced },
      affinity: PINNED ? "the client on CPU 0, the server on CPU 1" : "one CPU: not pinned",
      shared,
      paths: f,
      ratio: {
        podToUnderlay: round3(f.pod.gbps / f.underlay.gbps),
        podToBridge: round3(f.pod.gbps / f.bridge.gbps),
        sharedToUnderlay: round3(f.shared.gbps / f.underlay.gbps),
        sharedToPod: round3(f.shared.gbps / f.pod.gbps),
        chain4ToChain2: round3(f.chain4.gbps / f.chain2.gbps),
      },
      extraRttUs: {
        pod: Number((f.pod.rttUs.mean - f.underlay.rttUs.mean).toFixed(1)),
        chains: Number((f.chain4.rttUs.mean - f.chain2.rttUs.mean).toFixed(1)),
      },
      mtu,
    };
  } finally {
    const left = await scratch.removeAll();
    await sb.stop();
    await rm(dir, { recursive: true, force: true });
    if (left.length) console.error(`datapath bench: could not delete the namespaces ${left.join(", ")}`);
  }
}
