// The node namespace as the datapath sees it: one snapshot of its links,
// policy rules and IPv4 routes (three `ip -j` reads), and pure questions
// about it. CHECK and drift repair decide from a snapshot, never from what
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
}

export async function readNodeState(ns: string): Promise<NodeState> {
  const [links, rules, routes] = await Promise.all([
    ipJson<Link[]>(ns, ["-d", "link", "show"]),
    ipJson<Rule[]>(ns, ["-4", "rule", "show"]),
    ipJson<Route[]>(ns, ["-4", "route", "show", "table", "all"]),
  ]);
  return { links, rules, routes };
}

export const isUp = (l: Link): boolean => l.flags?.includes("UP") ?? false;

/** The routes of one table ("main" or a number). */
export function tableRoutes(state: NodeState, table: string): Route[] {
  return state.routes.filter((r) => (r.table ?? "main") === table);
}

/** An ENI's device (found by MAC) and the routing table it gets: ENI_TABLE_BASE + ifindex. */
export function eniDevice(links: Link[], mac: string): { link: Link; table: number } | null {
  const link = links.find((l) => l.address?.toLowerCase() === mac.toLowerCase());
  return link ? { link, table: ENI_TABLE_BASE + link.ifindex } : null;
}

/** What is wrong with an ENI's device: absent, down, or its table without the default route. */
export function eniProblems(state: NodeState, eni: { mac: string; gateway: string }): string[] {
  const d = eniDevice(state.links, eni.mac);
  if (!d) return [`no device with MAC ${eni.mac}`];
  const problems: string[] = [];
  if (!isUp(d.link)) problems.push(`${d.link.ifname} is down`);
  const table = String(d.table);
  if (
    !tableRoutes(state, table).some(
      (r) => r.dst === "default" && r.gateway === eni.gateway && r.dev === d.link.ifname,
    )
  )
    problems.push(`table ${table} has no default route via ${eni.gateway} dev ${d.link.ifname}`);
  return problems;
}

/** What is missing of a pod's node side: its host veth (up), its /32 route, and both rules. */
export function nodeSideProblems(
  state: NodeState,
  pod: { hostIfname: string; ip: string; table: number },
): string[] {
  const problems: string[] = [];
  const host = state.links.find((l) => l.ifname === pod.hostIfname);
  if (!host) problems.push(`host veth ${pod.hostIfname} is missing`);
  else if (!isUp(host)) problems.push(`host veth ${pod.hostIfname} is down`);
  if (!tableRoutes(state, "main").some((r) => r.dst === pod.ip && r.dev === pod.hostIfname))
    problems.push(`no route ${pod.ip}/32 dev ${pod.hostIfname}`);
  if (!state.rules.some((r) => r.priority === RULE_TO_POD && r.dst === pod.ip && r.table === "main"))
    problems.push(`no rule ${RULE_TO_POD}: to ${pod.ip} lookup main`);
  if (
    !state.rules.some(
      (r) => r.priority === RULE_FROM_POD && r.src === pod.ip && r.table === String(pod.table),
    )
  )
    problems.push(`no rule ${RULE_FROM_POD}: from ${pod.ip} lookup ${pod.table}`);
  return problems;
}
