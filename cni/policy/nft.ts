// The compiled rules as one nftables script for the node's namespace: the
// table `inet eniway` is deleted and made again in one transaction (`nft -f`),
// so packets see the old rules or the new ones, never none.
//
// Every pod packet crosses the node's forward hook (pod ↔ pod, pod ↔ ENI)
// after kube-proxy's DNAT, and a pod's packets to the node itself its input
// hook. The node's own packets to its pods (kubelet probes) leave by output,
// which is not filtered. Replies of admitted connections pass by conntrack.
// The rule count follows the policies' rules; the pods are set elements.

import type { CompiledRule, Direction, PortRange, RuleSet } from "./compile.js";
import { formatRange } from "./ranges.js";

export const TABLE = "eniway";
const PROTO: Record<string, string> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

const elements = (xs: string[]): string => (xs.length ? ` elements = { ${xs.join(", ")} };` : "");

function set(name: string, type: string, xs: string[], interval = false): string {
  return `  set ${name} { type ${type};${interval ? " flags interval;" : ""}${elements(xs)} }`;
}

/** The name of a pod's drop counter: `in_10_0_1_5` (dropped on its way in) or `out_…`. */
export const counterName = (direction: Direction, ip: string): string =>
  `${direction === "ingress" ? "in" : "out"}_${ip.replaceAll(".", "_")}`;

const portElement = (p: PortRange): string =>
  `${PROTO[p.protocol]} . ${p.first === p.last ? p.first : `${p.first}-${p.last}`}`;

function ruleLines(r: CompiledRule, n: number, decls: string[]): string[] {
  const [self, other] = r.direction === "ingress" ? ["daddr", "saddr"] : ["saddr", "daddr"];
  decls.push(set(`r${n}_pods`, "ipv4_addr", r.pods));
  let match = `ip ${self} @r${n}_pods`;
  if (r.peers) {
    decls.push(set(`r${n}_peers`, "ipv4_addr", r.peers.map(formatRange), true));
    match += ` ip ${other} @r${n}_peers`;
  }
  const comment = ` comment ${JSON.stringify(r.id.slice(0, 120))}`;
  if (r.ports === null) return [`    ${match} return${comment}`];
  const out: string[] = [];
  if (r.ports.length) {
    decls.push(set(`r${n}_ports`, "inet_proto . inet_service", r.ports.map(portElement), true));
    out.push(`    ${match} meta l4proto . th dport @r${n}_ports return${comment}`);
  }
  if (r.named.length) {
    const xs = [...new Set(r.named.map((p) => `${p.ip} . ${PROTO[p.protocol]} . ${p.port}`))];
    decls.push(set(`r${n}_named`, "ipv4_addr . inet_proto . inet_service", xs));
    out.push(`    ${match} ip daddr . meta l4proto . th dport @r${n}_named return${comment}`);
  }
  return out;
}

function chain(direction: Direction, isolated: string[], rules: string[][], decls: string[]): string[] {
  const [self, tag] = direction === "ingress" ? ["daddr", "in"] : ["saddr", "out"];
  decls.push(set(`${tag}_isolated`, "ipv4_addr", isolated));
  for (const ip of isolated) decls.push(`  counter ${counterName(direction, ip)} {}`);
  const map = isolated.map((ip) => `${ip} : "${counterName(direction, ip)}"`);
  decls.push(`  map ${tag}_drops { type ipv4_addr : counter;${elements(map)} }`);
  return [
    `  chain ${direction} {`,
    `    ip ${self} != @${tag}_isolated return`,
    ...rules.flat(),
    `    counter name ip ${self} map @${tag}_drops drop`,
    "  }",
  ];
}

export function render(rs: RuleSet): string {
  const decls: string[] = [];
  const lines = (d: Direction): string[][] =>
    rs.rules.map((r, n) => (r.direction === d ? ruleLines(r, n, decls) : []));
  const ingress = chain("ingress", rs.ingressIsolated, lines("ingress"), decls);
  const egress = chain("egress", rs.egressIsolated, lines("egress"), decls);
  const base = (hook: string, jumps: string[]): string[] => [
    `  chain ${hook} {`,
    `    type filter hook ${hook} priority filter + 10; policy accept;`,
    "    ct state established,related accept",
    ...jumps.map((j) => `    jump ${j}`),
    "  }",
  ];
  return [
    `table inet ${TABLE} {}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    ...decls,
    ...ingress,
    ...egress,
    ...base("forward", ["egress", "ingress"]),
    ...base("input", ["egress"]),
    "}",
    "",
  ].join("\n");
}
