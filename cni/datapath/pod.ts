// Wiring one pod: a veth pair created inside the pod's namespace whose host
// end moves to the node namespace. In the pod: the IP as /32, a link route
// to 169.254.1.1 and a default route via it, and a permanent neighbour entry
// for 169.254.1.1 with the host veth's MAC. On the node: a /32 route to the
// pod, `to podIP lookup main` at priority 512 and `from podIP lookup <ENI
// table>` at priority 2048.

import { CommandError } from "../../lib/exec.js";
import { ipBatch, ipJson, netnsRef } from "../../lib/ip.js";
import { isIfname, isIpv4 } from "../../lib/net.js";
import { POD_GATEWAY, RULE_FROM_POD, RULE_TO_POD } from "../facts.js";
import { type NodeState, nodeSideProblems } from "./kernel.js";
import { check, derivedMac, hostVethName } from "./names.js";

export interface PodSpec {
  containerId: string;
  ifname: string;
  /** The pod's namespace path (CNI_NETNS). */
  netns: string;
  ip: string;
  table: number;
  mtu: number;
}

export interface PodWiring {
  hostIfname: string;
  hostMac: string;
  podMac: string;
}

export function wiringOf(containerId: string, ifname: string): PodWiring {
  return {
    hostIfname: hostVethName(containerId, ifname),
    hostMac: derivedMac(containerId, ifname, "host"),
    podMac: derivedMac(containerId, ifname, "pod"),
  };
}

/** The node-side lines, shared by ADD and drift repair. */
export function nodeLines(hostIfname: string, ip: string, table: number): string[] {
  return [
    `link set dev ${hostIfname} up`,
    `route replace ${ip}/32 dev ${hostIfname} scope link`,
    `rule add to ${ip}/32 lookup main priority ${RULE_TO_POD}`,
    `rule add from ${ip}/32 lookup ${table} priority ${RULE_FROM_POD}`,
  ];
}

/** Runs lines in the node namespace: a long-lived session, or one `ip -batch` each time. */
export type NodeBatch = (lines: string[], force?: boolean) => Promise<void>;

/** The pod-side lines: the veth pair (host end to the node), address, routes, neighbour. */
export function podLines(nodeNs: string, spec: PodSpec, w: PodWiring): string[] {
  const mtu = Math.trunc(spec.mtu);
  return [
    `link add ${spec.ifname} address ${w.podMac} mtu ${mtu} type veth peer name ${w.hostIfname} address ${w.hostMac} mtu ${mtu} netns ${netnsRef(nodeNs)}`,
    "link set dev lo up",
    `addr add ${spec.ip}/32 dev ${spec.ifname}`,
    `link set dev ${spec.ifname} up`,
    `route add ${POD_GATEWAY} dev ${spec.ifname} scope link`,
    `route add default via ${POD_GATEWAY} dev ${spec.ifname}`,
    `neigh replace ${POD_GATEWAY} lladdr ${w.hostMac} dev ${spec.ifname} nud permanent`,
  ];
}

/**
 * Wires the pod's side inside its namespace: podLines, or the same through
 * the netlink helper. Throws a CommandError whose stderr says "File exists"
 * when an earlier ADD left its pieces.
 */
export type PodSide = (nodeNs: string, spec: PodSpec, w: PodWiring) => Promise<void>;

/** One `ip -batch` process in the pod's namespace. */
export const ipPodSide: PodSide = (nodeNs, spec, w) => ipBatch(spec.netns, podLines(nodeNs, spec, w));

export async function addPod(
  nodeNs: string,
  spec: PodSpec,
  node: NodeBatch = (l, f) => ipBatch(nodeNs, l, f),
  pod: PodSide = ipPodSide,
): Promise<PodWiring> {
  check(spec.ifname, isIfname, "interface name");
  check(spec.ip, isIpv4, "pod IP");
  const w = wiringOf(spec.containerId, spec.ifname);
  try {
    await pod(nodeNs, spec, w);
  } catch (e) {
    // Leftovers of an earlier, interrupted ADD of the same attachment: clear them and try once more.
    if (!(e instanceof CommandError) || !/File exists/.test(e.stderr)) throw e;
    await removeNodeSide(nodeNs, w.hostIfname, spec.ip, node);
    await ipBatch(spec.netns, [`link del dev ${spec.ifname}`], true);
    await pod(nodeNs, spec, w);
  }
  try {
    await node(nodeLines(w.hostIfname, spec.ip, spec.table));
  } catch (e) {
    await removeNodeSide(nodeNs, w.hostIfname, spec.ip, node);
    throw e;
  }
  return w;
}

/** The line that deletes one of a pod's rules (RULE_TO_POD or RULE_FROM_POD). */
export function ruleDel(priority: number, ip: string): string {
  return `rule del ${priority === RULE_TO_POD ? "to" : "from"} ${ip}/32 priority ${priority}`;
}

/** The lines that take a pod's routing off the node (not its veth). Missing pieces are fine. */
export function unrouteLines(ip: string): string[] {
  check(ip, isIpv4, "pod IP");
  const lines: string[] = [];
  // A rule may exist more than once after a crash: delete a few times.
  for (let i = 0; i < 3; i++) lines.push(ruleDel(RULE_TO_POD, ip), ruleDel(RULE_FROM_POD, ip));
  lines.push(`route del ${ip}/32`);
  return lines;
}

/** Remove the node side; deleting the host veth also removes the pod's end. Missing pieces are fine. */
export async function removeNodeSide(
  nodeNs: string,
  hostIfname: string,
  ip: string | null,
  node: NodeBatch = (l, f) => ipBatch(nodeNs, l, f),
): Promise<void> {
  check(hostIfname, isIfname, "host interface");
  const lines = [`link del dev ${hostIfname}`];
  if (ip) lines.push(...unrouteLines(ip));
  await node(lines, true);
}

/**
 * What is wrong with a pod's wiring: its node side from the snapshot, its
 * own side (interface, address, routes, neighbour) read in its namespace.
 */
export async function checkPod(state: NodeState, spec: PodSpec): Promise<string[]> {
  const w = wiringOf(spec.containerId, spec.ifname);
  const problems = nodeSideProblems(state, { hostIfname: w.hostIfname, ip: spec.ip, table: spec.table });
  const podLinks = await ipJson<{ ifname: string; flags?: string[] }[]>(spec.netns, ["link", "show"]).catch(
    () => null,
  );
  if (!podLinks) return [...problems, `pod namespace ${spec.netns} is not reachable`];
  const pod = podLinks.find((l) => l.ifname === spec.ifname);
  if (!pod) return [...problems, `pod interface ${spec.ifname} is missing`];
  if (!pod.flags?.includes("UP")) problems.push(`pod interface ${spec.ifname} is down`);
  const addrs = await ipJson<{ addr_info?: { local: string; prefixlen: number }[] }[]>(spec.netns, [
    "addr",
    "show",
    "dev",
    spec.ifname,
  ]);
  if (!addrs[0]?.addr_info?.some((a) => a.local === spec.ip && a.prefixlen === 32))
    problems.push(`pod interface has no ${spec.ip}/32`);
  const podRoutes = await ipJson<{ dst: string; gateway?: string }[]>(spec.netns, ["route", "show"]);
  if (!podRoutes.some((r) => r.dst === "default" && r.gateway === POD_GATEWAY))
    problems.push(`pod has no default route via ${POD_GATEWAY}`);
  const neigh = await ipJson<{ dst: string; lladdr?: string; state?: string[] }[]>(spec.netns, [
    "neigh",
    "show",
    "dev",
    spec.ifname,
  ]);
  if (!neigh.some((n) => n.dst === POD_GATEWAY && n.lladdr === w.hostMac && n.state?.includes("PERMANENT")))
    problems.push(`pod has no permanent neighbour ${POD_GATEWAY} → ${w.hostMac}`);
  return problems;
}
