// The node namespace as the datapath sees it: one snapshot of its links,
// policy rules and routes (three `ip -j` reads, three more for IPv6 in dual
// stack), and pure questions about it. CHECK and drift repair decide from a snapshot, never from what
// the daemon remembers, so they are right after a restart too.

import { ipJson } from "../../lib/ip.js";
import { ENI_TABLE_BASE, RULE_FROM_POD, RULE_TO_POD } from "../facts.js";

export interface Link {
  ifindex: number;
  ifname: string;
  address?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
}

export interface Rule {
  priority: number;
  src?: string;
  dst?: string;
  table?: string;
}

export interface Route {
  dst: string;
  dev?: string;
  gateway?: string;
  /** Absent for the main table. */
  table?: string;
  type?: string;
}

export interface NodeState {
  links: Link[];
  rules: Rule[];
  /** IPv4 routes of every table. */
  routes: Route[];
  /** IPv6 rules and routes of every table (dual stack; [] when not read). */
  rules6: Rule[];
  routes6: Route[];
  /** IPv6 neighbours on the host veths (dual stack; [] when not read). */
  neigh6: Neighbour[];
}

export interface Neighbour {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** The node namespace: three `ip -j` reads, three more for IPv6 (dual stack). */
export async function readNodeState(ns: string, ipv6 = false): Promise<NodeState> {
  const none = Promise.resolve([]);
  const [links, rules, routes, rules6, routes6, neigh6] = await Promise.all([
    ipJson<Link[]>(ns, ["-d", "link", "show"]),
    ipJson<Rule[]>(ns, ["-4", "rule", "show"]),
    ipJson<Route[]>(ns, ["-4", "route", "show", "table", "all"]),
    ipv6 ? ipJson<Rule[]>(ns, ["-6", "rule", "show"]) : none,
    ipv6 ? ipJson<Route[]>(ns, ["-6", "route", "show", "table", "all"]) : none,
    ipv6 ? ipJson<Neighbour[]>(ns, ["-6", "neigh", "show", "nud", "permanent"]) : none,
  ]);
  return { links, rules, routes, rules6, routes6, neigh6 };
}

export const isUp = (l: Link): boolean => l.flags?.includes("UP") ?? false;

/** The routes of one table ("main" or a number), IPv4 or (v6) IPv6. */
export function tableRoutes(state: NodeState, table: string, v6 = false): Route[] {
  return (v6 ? state.routes6 : state.routes).filter((r) => (r.table ?? "main") === table);
}

/** An ENI's device (found by MAC) and the routing table it gets: ENI_TABLE_BASE + ifindex. */
export function eniDevice(links: Link[], mac: string): { link: Link; table: number } | null {
  const link = links.find((l) => l.address?.toLowerCase() === mac.toLowerCase());
  return link ? { link, table: ENI_TABLE_BASE + link.ifindex } : null;
}

/**
 * What is wrong with an ENI's device: absent, down, or its table without the
 * default route (and, with an IPv6 gateway, without the IPv6 default route).
 */
export function eniProblems(
  state: NodeState,
  eni: { mac: string; gateway: string; gateway6?: string },
): string[] {
  const d = eniDevice(state.links, eni.mac);
  if (!d) return [`no device with MAC ${eni.mac}`];
  const problems: string[] = [];
  if (!isUp(d.link)) problems.push(`${d.link.ifname} is down`);
  const table = String(d.table);
  const hasDefault = (gw: string, v6: boolean): boolean =>
    tableRoutes(state, table, v6).some(
      (r) => r.dst === "default" && r.gateway === gw && r.dev === d.link.ifname,
    );
  if (!hasDefault(eni.gateway, false))
    problems.push(`table ${table} has no default route via ${eni.gateway} dev ${d.link.ifname}`);
  if (eni.gateway6 && !hasDefault(eni.gateway6, true))
    problems.push(`table ${table} has no IPv6 default route via ${eni.gateway6} dev ${d.link.ifname}`);
  return problems;
}

/**
 * What is missing of a pod's node side: its host veth (up), and for each of
 * its addresses the host route and both rules (for its IPv6, the permanent
 * neighbour too).
 */
export function nodeSideProblems(
  state: NodeState,
  pod: { hostIfname: string; ip: string; ip6?: string; table: number; podMac?: string },
): string[] {
  const problems: string[] = [];
  const host = state.links.find((l) => l.ifname === pod.hostIfname);
  if (!host) problems.push(`host veth ${pod.hostIfname} is missing`);
  else if (!isUp(host)) problems.push(`host veth ${pod.hostIfname} is down`);
  problems.push(...routingProblems(state, pod.ip, pod.hostIfname, pod.table));
  if (pod.ip6) {
    problems.push(...routingProblems(state, pod.ip6, pod.hostIfname, pod.table));
    const n = state.neigh6.find((x) => x.dst === pod.ip6 && x.dev === pod.hostIfname);
    if (!n || (pod.podMac && n.lladdr !== pod.podMac))
      problems.push(`no permanent neighbour ${pod.ip6} dev ${pod.hostIfname}`);
  }
  return problems;
}

/** One address of a pod: its host route in main, `to` it at RULE_TO_POD, `from` it at RULE_FROM_POD. */
function routingProblems(state: NodeState, ip: string, hostIfname: string, table: number): string[] {
  const v6 = ip.includes(":");
  const rules = v6 ? state.rules6 : state.rules;
  const problems: string[] = [];
  if (!tableRoutes(state, "main", v6).some((r) => r.dst === ip && r.dev === hostIfname))
    problems.push(`no route ${ip}/${v6 ? 128 : 32} dev ${hostIfname}`);
  if (!rules.some((r) => r.priority === RULE_TO_POD && r.dst === ip && r.table === "main"))
    problems.push(`no rule ${RULE_TO_POD}: to ${ip} lookup main`);
  if (!rules.some((r) => r.priority === RULE_FROM_POD && r.src === ip && r.table === String(table)))
    problems.push(`no rule ${RULE_FROM_POD}: from ${ip} lookup ${table}`);
  return problems;
}
