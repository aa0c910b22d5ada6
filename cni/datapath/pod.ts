// Wiring one pod: a veth pair created inside the pod's namespace whose host
// end moves to the node namespace. In the pod: the IP as /32, a link route
// to 169.254.1.1 and a default route via it, and a permanent neighbour entry
// for 169.254.1.1 with the host veth's MAC. On the node: a /32 route to the
// pod, `to podIP lookup main` at priority 512 and `from podIP lookup <ENI
// table>` at priority 2048.
//
// Dual stack adds the same for the pod's IPv6 address: in the pod the
// address as /128 (no DAD: the VPC gave it to this pod alone), a default
// route via fe80::1 and a permanent neighbour fe80::1 → the host veth's MAC;
// on the node fe80::1 on the host veth (no DAD), a /128 route, a permanent
// neighbour (the pod's MAC: no neighbour discovery on the host veth) and the two rules. `ip -batch` takes
// IPv6 routes, addresses and neighbours as they come, but reads every `rule`
// line as IPv4: the node's IPv6 lines run in an `ip -6 -batch` of their own.

import { CommandError } from "../../lib/exec.js";
import { ipBatch, ipJson, netnsRef } from "../../lib/ip.js";
import { isIfname, isIpv4, isIpv6 } from "../../lib/net.js";
import { POD_GATEWAY, POD_GATEWAY6, RULE_FROM_POD, RULE_TO_POD } from "../facts.js";
import { type NodeState, nodeSideProblems } from "./kernel.js";
import { check, derivedMac, hostVethName } from "./names.js";

export interface PodSpec {
  containerId: string;
  ifname: string;
  /** The pod's namespace path (CNI_NETNS). */
  netns: string;
  ip: string;
  /** Dual stack: the pod's IPv6 address. */
  ip6?: string;
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

/** An address as a host route's destination: /32, or /128 for IPv6. */
export const hostRoute = (ip: string): string => `${ip}/${ip.includes(":") ? 128 : 32}`;

/** The node-side lines, shared by ADD and drift repair (IPv4; ip -batch). */
export function nodeLines(hostIfname: string, ip: string, table: number): string[] {
  return [
    `link set dev ${hostIfname} up`,
    `route replace ${ip}/32 dev ${hostIfname} scope link`,
    ...ruleLines(ip, table),
  ];
}

const ruleLines = (ip: string, table: number): string[] => [
  `rule add to ${hostRoute(ip)} lookup main priority ${RULE_TO_POD}`,
  `rule add from ${hostRoute(ip)} lookup ${table} priority ${RULE_FROM_POD}`,
];

/** The node-side lines of a pod's IPv6 address (ip -6 -batch; after nodeLines, which sets the veth up). */
export function nodeLines6(hostIfname: string, ip6: string, table: number, podMac: string): string[] {
  return [
    // The pod's gateway on the host veth too, without DAD: the node's own packets to the pod
    // (probes) have a source at once, and the pod's replies go to the neighbour it already has.
    `addr replace ${POD_GATEWAY6}/64 dev ${hostIfname} nodad`,
    `route replace ${ip6}/128 dev ${hostIfname}`,
    `neigh replace ${ip6} lladdr ${podMac} dev ${hostIfname} nud permanent`,
    ...ruleLines(ip6, table),
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
    ...(spec.ip6
      ? [
          `addr add ${spec.ip6}/128 dev ${spec.ifname} nodad`,
          `route add ::/0 via ${POD_GATEWAY6} dev ${spec.ifname}`,
          `neigh replace ${POD_GATEWAY6} lladdr ${w.hostMac} dev ${spec.ifname} nud permanent`,
        ]
      : []),
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

/** The node's two `ip -batch` runners: IPv4 (and links), and IPv6 (`ip -6`: its rules). */
export interface NodeBatches {
  v4: NodeBatch;
  v6: NodeBatch;
}

/** One `ip -batch` (or `ip -6 -batch`) process in the node namespace per call. */
export const oneShotBatches = (nodeNs: string): NodeBatches => ({
  v4: (l, f) => ipBatch(nodeNs, l, f),
  v6: (l, f) => ipBatch(nodeNs, l, f, true),
});

export async function addPod(
  nodeNs: string,
  spec: PodSpec,
  node: NodeBatches = oneShotBatches(nodeNs),
  pod: PodSide = ipPodSide,
): Promise<PodWiring> {
  check(spec.ifname, isIfname, "interface name");
  check(spec.ip, isIpv4, "pod IP");
  if (spec.ip6 !== undefined) check(spec.ip6, isIpv6, "pod IPv6");
  const w = wiringOf(spec.containerId, spec.ifname);
  const ips = { ip: spec.ip, ip6: spec.ip6 ?? null };
  try {
    await pod(nodeNs, spec, w);
  } catch (e) {
    // Leftovers of an earlier, interrupted ADD of the same attachment: clear them and try once more.
    if (!(e instanceof CommandError) || !/File exists/.test(e.stderr)) throw e;
    await removeNodeSide(nodeNs, w.hostIfname, ips, node);
    await ipBatch(spec.netns, [`link del dev ${spec.ifname}`], true);
    await pod(nodeNs, spec, w);
  }
  try {
    await node.v4(nodeLines(w.hostIfname, spec.ip, spec.table));
    if (spec.ip6) await node.v6(nodeLines6(w.hostIfname, spec.ip6, spec.table, w.podMac));
  } catch (e) {
    await removeNodeSide(nodeNs, w.hostIfname, ips, node);
    throw e;
  }
  return w;
}

/** The line that deletes one of a pod's rules (RULE_TO_POD or RULE_FROM_POD), for its IPv4 or IPv6 address. */
export function ruleDel(priority: number, ip: string): string {
  return `rule del ${priority === RULE_TO_POD ? "to" : "from"} ${hostRoute(ip)} priority ${priority}`;
}

/**
 * The lines that take a pod's routing for one address off the node (not its
 * veth): IPv4 lines for ip -batch, IPv6 ones for ip -6 -batch. Missing pieces are fine.
 */
export function unrouteLines(ip: string): string[] {
  check(ip, (x) => isIpv4(x) || isIpv6(x), "pod IP");
  const lines: string[] = [];
  // A rule may exist more than once after a crash: delete a few times.
  for (let i = 0; i < 3; i++) lines.push(ruleDel(RULE_TO_POD, ip), ruleDel(RULE_FROM_POD, ip));
  lines.push(`route del ${hostRoute(ip)}`);
  return lines;
}

/** A pod's addresses: its IPv4, and in dual stack its IPv6. */
export interface PodIps {
  ip: string | null;
  ip6: string | null;
}

/** Takes a pod's routing off the node for each of its addresses. */
export async function unroute(ips: PodIps, node: NodeBatches): Promise<void> {
  if (ips.ip) await node.v4(unrouteLines(ips.ip), true);
  if (ips.ip6) await node.v6(unrouteLines(ips.ip6), true);
}

/** Remove the node side; deleting the host veth also removes the pod's end. Missing pieces are fine. */
export async function removeNodeSide(
  nodeNs: string,
  hostIfname: string,
  ips: PodIps,
  node: NodeBatches = oneShotBatches(nodeNs),
): Promise<void> {
  check(hostIfname, isIfname, "host interface");
  await node.v4([`link del dev ${hostIfname}`], true);
  await unroute(ips, node);
}

/**
 * What is wrong with a pod's wiring: its node side from the snapshot, its
 * own side (interface, address, routes, neighbour) read in its namespace.
 */
export async function checkPod(state: NodeState, spec: PodSpec): Promise<string[]> {
  const w = wiringOf(spec.containerId, spec.ifname);
  const problems = nodeSideProblems(state, {
    hostIfname: w.hostIfname,
    ip: spec.ip,
    ...(spec.ip6 ? { ip6: spec.ip6, podMac: w.podMac } : {}),
    table: spec.table,
  });
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
  if (spec.ip6) problems.push(...(await podSideProblems6({ ...spec, ip6: spec.ip6 }, w)));
  return problems;
}

/** The pod's IPv6 pieces: its address as /128, the default route via fe80::1, and that neighbour. */
async function podSideProblems6(spec: PodSpec & { ip6: string }, w: PodWiring): Promise<string[]> {
  const problems: string[] = [];
  const dev = ["dev", spec.ifname];
  const [addrs, routes, neigh] = await Promise.all([
    ipJson<{ addr_info?: { local: string; prefixlen: number }[] }[]>(spec.netns, [
      "-6",
      "addr",
      "show",
      ...dev,
    ]),
    ipJson<{ dst: string; gateway?: string }[]>(spec.netns, ["-6", "route", "show", ...dev]),
    ipJson<{ dst: string; lladdr?: string; state?: string[] }[]>(spec.netns, ["-6", "neigh", "show", ...dev]),
  ]);
  if (!addrs[0]?.addr_info?.some((a) => a.local === spec.ip6 && a.prefixlen === 128))
    problems.push(`pod interface has no ${spec.ip6}/128`);
  if (!routes.some((r) => r.dst === "default" && r.gateway === POD_GATEWAY6))
    problems.push(`pod has no IPv6 default route via ${POD_GATEWAY6}`);
  if (!neigh.some((n) => n.dst === POD_GATEWAY6 && n.lladdr === w.hostMac && n.state?.includes("PERMANENT")))
    problems.push(`pod has no permanent neighbour ${POD_GATEWAY6} → ${w.hostMac}`);
  return problems;
}
