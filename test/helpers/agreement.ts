// Do a node's pool, the cloud and the node's kernel agree on its pods? The
// kernel side is read with `ip -j`: pod rules, routes to host veths, host veths.

import { execFileSync } from "node:child_process";
import type { Simulator } from "../../cloud/simulator/server.js";
import { wiringOf } from "../../cni/datapath/pod.js";
import { HOST_VETH, RULE_FROM_POD, RULE_TO_POD } from "../../cni/facts.js";
import { socketRequest } from "../../lib/http.js";

export interface PodKernelState {
  /** Pod IPs with a rule at RULE_TO_POD or RULE_FROM_POD. */
  ruleIps: Set<string>;
  /** Destinations of main-table routes through a host veth. */
  routeIps: Set<string>;
  /** Host veths (by name pattern). */
  veths: Set<string>;
}

const ipJson = <T>(netns: string, ...args: string[]): T =>
  JSON.parse(execFileSync("ip", ["-n", netns, "-j", ...args], { encoding: "utf8" })) as T;

export function podKernelState(netns: string): PodKernelState {
  const rules = ipJson<{ priority: number; src?: string; dst?: string }[]>(netns, "rule", "show");
  const routes = ipJson<{ dst: string; dev?: string }[]>(netns, "route", "show", "table", "main");
  const links = ipJson<{ ifname: string }[]>(netns, "link", "show", "type", "veth");
  return {
    ruleIps: new Set(
      rules.flatMap((r) =>
        r.priority === RULE_TO_POD && r.dst ? [r.dst] : r.priority === RULE_FROM_POD && r.src ? [r.src] : [],
      ),
    ),
    routeIps: new Set(routes.filter((r) => r.dev && HOST_VETH.test(r.dev)).map((r) => r.dst)),
    veths: new Set(links.map((l) => l.ifname).filter((n) => HOST_VETH.test(n))),
  };
}

/** What is wrong between the kernel and the pods that should be there (IP → host veth). */
export function kernelProblems(netns: string, pods: Map<string, string>): string[] {
  const k = podKernelState(netns);
  const problems: string[] = [];
  const veths = new Set(pods.values());
  for (const ip of pods.keys()) {
    if (!k.ruleIps.has(ip)) problems.push(`kernel: no rule for ${ip}`);
    if (!k.routeIps.has(ip)) problems.push(`kernel: no route to ${ip}`);
  }
  for (const ip of k.ruleIps) if (!pods.has(ip)) problems.push(`kernel: a rule for ${ip} is left`);
  for (const ip of k.routeIps) if (!pods.has(ip)) problems.push(`kernel: a route to ${ip} is left`);
  for (const v of veths) if (!k.veths.has(v)) problems.push(`kernel: no veth ${v}`);
  for (const v of k.veths) if (!veths.has(v)) problems.push(`kernel: veth ${v} is left`);
  return problems;
}

export interface LivePod {
  containerId: string;
  ip: string;
}

/**
 * Where a node's pool, the cloud and the node's kernel disagree, given the
 * pods that should be there (ifname eth0): the pool allocates exactly them
 * and has nothing in flight nor more than maxIdle idle IPs; every ENI of the cluster is attached (none
 * leaked); the node's IPs in the cloud are the pool's IPs, each allocation
 * on its ENI; the kernel routes exactly them.
 */
export async function nodeProblems(o: {
  socket: string;
  sim: Simulator;
  instanceId: string;
  netns: string;
  clusterId: string;
  pods: LivePod[];
}): Promise<string[]> {
  const problems: string[] = [];
  const get = async <T>(path: string): Promise<T> => (await socketRequest(o.socket, "GET", path)).body as T;
  const { allocations } = await get<{ allocations: { containerId: string; ip: string; eniId: string }[] }>(
    "/v1/allocations",
  );
  const byId = new Map(allocations.map((a) => [a.containerId, a]));
  const wanted = new Set(o.pods.map((p) => p.containerId));
  for (const p of o.pods)
    if (byId.get(p.containerId)?.ip !== p.ip) problems.push(`pool: ${p.containerId} should hold ${p.ip}`);
  for (const a of allocations)
    if (!wanted.has(a.containerId)) problems.push(`pool: ${a.containerId} (${a.ip}) should be gone`);
  const summary = await get<{ intents: number; pending: number; idle: number; targets: { maxIdle: number } }>(
    "/v1/pool",
  );
  if (summary.idle > summary.targets.maxIdle)
    problems.push(`pool: ${summary.idle} idle IPs, more than maxIdle ${summary.targets.maxIdle}`);
  if (summary.intents !== 0 || summary.pending !== 0)
    problems.push(
      `pool: in flight ${JSON.stringify({ intents: summary.intents, pending: summary.pending })}`,
    );
  const poolIps = new Set((await get<{ ips: { ip: string }[] }>("/v1/ips")).ips.map((p) => p.ip));
  const cloudIps = new Map<string, string>();
  for (const e of o.sim.state.enis.values()) {
    if (!e.tags.some(([k, v]) => k === "eniway.io/cluster" && v === o.clusterId)) continue;
    if (e.status !== "InUse") problems.push(`cloud: ${e.id} is ${e.status} (leaked)`);
    if (e.instanceId === o.instanceId) for (const ip of e.ips) cloudIps.set(ip, e.id);
  }
  for (const ip of cloudIps.keys()) if (!poolIps.has(ip)) problems.push(`cloud: ${ip} unknown to the pool`);
  for (const ip of poolIps)
    if (!cloudIps.has(ip)) problems.push(`pool: ${ip} is not the node's in the cloud`);
  for (const a of allocations)
    if (cloudIps.get(a.ip) !== a.eniId) problems.push(`cloud: ${a.ip} is not on ${a.eniId}`);
  problems.push(
    ...kernelProblems(
      o.netns,
      new Map(o.pods.map((p) => [p.ip, wiringOf(p.containerId, "eth0").hostIfname])),
    ),
  );
  return problems;
}

/**
 * Waits (up to `attempts` × 250 ms, the simulator settled each time) until
 * every node's pool, the cloud and the node's kernel agree; returns what
 * still disagrees, [] when all do.
 */
export async function settledProblems(o: {
  sim: Simulator;
  clusterId: string;
  nodes: { socket: string; instanceId: string; netns: string }[];
  /** The pods that should be on a node (default: none). */
  podsOf?: (node: { instanceId: string }) => LivePod[];
  attempts?: number;
}): Promise<string[]> {
  let problems: string[] = [];
  for (let attempt = 0; attempt < (o.attempts ?? 80); attempt++) {
    await new Promise((r) => setTimeout(r, 250));
    await o.sim.settle();
    problems = [];
    for (const n of o.nodes)
      problems.push(
        ...(await nodeProblems({ ...n, sim: o.sim, clusterId: o.clusterId, pods: o.podsOf?.(n) ?? [] })),
      );
    if (problems.length === 0) break;
  }
  return problems;
}
