// The compiled rules as nftables commands for the node's namespace, in one
// table `inet eniway`. `render` makes the whole table anew (deleted and made
// again in one transaction); `renderDelta` changes only the set elements and
// counters that differ, when the chains stay the same (a pod came or went, a
// label changed). Either way packets see the old rules or the new ones,
// never none.
//
// Every pod packet crosses the node's forward hook (pod ↔ pod, pod ↔ ENI)
// after kube-proxy's DNAT, and a pod's packets to the node itself its input
// hook. The node's own packets to its pods (kubelet probes) leave by output,
// which is not filtered. Replies of admitted connections pass by conntrack.
// The rule count follows the policies' rules; the pods are set elements.
// Fail closed: a packet from or to a pod's host veth passes only if that
// veth and the pod's address are in the `admitted` set, which holds the
// pods whose rules this table has. A new pod is therefore dropped until the
// daemon has its rules in (a few ms after ADD, so ADD need not wait), or for
// as long as they cannot be computed (the API server unknown after a
// restart). The pair also stops a pod sending with another pod's address;
// in the forward hook the gate comes before conntrack's shortcut for
// established connections, so no packet of a pod's passes on another's
// entry. The policies are enforced on IPv4. A pod's IPv6 (dual stack) passes
// only with its veth, and only while no policy isolates the pod in either
// direction (the set `open6`): IPv6 of an isolated pod is dropped, never let
// through unfiltered; other IPv6 on pod veths is dropped too.
// Ports are a set per protocol (`inet_service`, an interval set), never a
// concatenation with intervals (`inet_proto . inet_service`, which the
// kernel keeps in a pipapo set): with one, an allowed connection was now and
// then dropped while the table was replaced (half of the runs of
// test/policy/nft.test.ts's replacement test on kernel 6.18), without one
// never; the rules seem to go live a moment before such a set's elements.

import { isIpv4, isIpv6 } from "../../lib/net.js";
import { HOST_VETH, HOST_VETH_PREFIX } from "../facts.js";
import type { CompiledRule, Direction, PortRange, RuleSet } from "./compile.js";
import { formatRange } from "./ranges.js";

/** A pod of this node whose rules a rule set holds: its host-side veth and its address. */
export interface Admitted {
  hostIf: string;
  ip: string;
  /** Dual stack: its IPv6 address. */
  ip6?: string;
}

/** What the node enforces: the rules, and the pods whose traffic may pass under them. */
export interface NodeRules {
  rules: RuleSet;
  admitted: Admitted[];
}

export const TABLE = "eniway";
const PROTO: Record<string, string> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

interface NftSet {
  kind: "set" | "map";
  type: string;
  interval: boolean;
  elements: string[];
}

/** What a rule set puts in the table besides its chains: sets and maps by name, and counters. */
interface Contents {
  sets: Map<string, NftSet>;
  counters: string[];
}

/** The name of a pod's drop counter: `in_10_0_1_5` (dropped on its way in) or `out_…`. */
export const counterName = (direction: Direction, ip: string): string =>
  `${direction === "ingress" ? "in" : "out"}_${ip.replaceAll(".", "_")}`;

/** Port ranges sorted and merged: an interval set refuses elements that overlap. */
function mergePorts(ports: PortRange[]): string[] {
  const out: [number, number][] = [];
  for (const p of [...ports].sort((a, b) => a.first - b.first)) {
    const last = out.at(-1);
    if (last && p.first <= last[1] + 1) last[1] = Math.max(last[1], p.last);
    else out.push([p.first, p.last]);
  }
  return out.map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`));
}

/** A rule's numeric ports by protocol, in the order TCP, UDP, SCTP. */
function byProtocol(ports: PortRange[]): [string, string[]][] {
  return Object.entries(PROTO)
    .map(([name, proto]): [string, string[]] => [proto, mergePorts(ports.filter((p) => p.protocol === name))])
    .filter(([, xs]) => xs.length > 0);
}

const tagOf = (d: Direction): string => (d === "ingress" ? "in" : "out");
const set = (type: string, elements: string[], interval = false): NftSet => ({
  kind: "set",
  type,
  interval,
  elements,
});

function ruleSets(r: CompiledRule, n: number, into: Map<string, NftSet>): void {
  into.set(`r${n}_pods`, set("ipv4_addr", r.pods));
  if (r.peers) into.set(`r${n}_peers`, set("ipv4_addr", r.peers.map(formatRange), true));
  for (const [proto, xs] of byProtocol(r.ports ?? []))
    into.set(`r${n}_${proto}`, set("inet_service", xs, true));
  if (r.named.length) {
    const xs = [...new Set(r.named.map((p) => `${p.ip} . ${PROTO[p.protocol]} . ${p.port}`))];
    into.set(`r${n}_named`, set("ipv4_addr . inet_proto . inet_service", xs));
  }
}

function contents({ rules: rs, admitted }: NodeRules): Contents {
  const sets = new Map<string, NftSet>();
  const pairs = admitted.map((a) => {
    if (!HOST_VETH.test(a.hostIf) || !isIpv4(a.ip))
      throw new Error(`not a pod's host veth and IPv4 address: ${JSON.stringify(a)}`);
    return `"${a.hostIf}" . ${a.ip}`;
  });
  sets.set("admitted", set("ifname . ipv4_addr", [...new Set(pairs)].sort()));
  const isolated = new Set([...rs.ingressIsolated, ...rs.egressIsolated]);
  const open6 = admitted.flatMap((a) => {
    if (a.ip6 === undefined || isolated.has(a.ip)) return [];
    if (!isIpv6(a.ip6)) throw new Error(`not a pod's IPv6 address: ${JSON.stringify(a)}`);
    return [`"${a.hostIf}" . ${a.ip6}`];
  });
  sets.set("open6", set("ifname . ipv6_addr", [...new Set(open6)].sort()));
  for (const [n, r] of rs.rules.entries()) ruleSets(r, n, sets);
  const counters: string[] = [];
  for (const [d, isolated] of [
    ["ingress", rs.ingressIsolated],
    ["egress", rs.egressIsolated],
  ] as const) {
    sets.set(`${tagOf(d)}_isolated`, set("ipv4_addr", isolated));
    const names = isolated.map((ip) => counterName(d, ip));
    counters.push(...names);
    sets.set(`${tagOf(d)}_drops`, {
      kind: "map",
      type: "ipv4_addr : counter",
      interval: false,
      elements: isolated.map((ip, i) => `${ip} : "${names[i]}"`),
    });
  }
  return { sets, counters };
}

function ruleLines(r: CompiledRule, n: number): string[] {
  const [self, other] = r.direction === "ingress" ? ["daddr", "saddr"] : ["saddr", "daddr"];
  let match = `ip ${self} @r${n}_pods`;
  if (r.peers) match += ` ip ${other} @r${n}_peers`;
  const comment = ` comment ${JSON.stringify(r.id.slice(0, 120))}`;
  if (r.ports === null) return [`    ${match} return${comment}`];
  const out: string[] = [];
  for (const [proto] of byProtocol(r.ports))
    out.push(`    ${match} meta l4proto ${proto} th dport @r${n}_${proto} return${comment}`);
  if (r.named.length)
    out.push(`    ${match} ip daddr . meta l4proto . th dport @r${n}_named return${comment}`);
  return out;
}

/** The chains: they change with the policies' rules, never with the pods. */
function chains(rs: RuleSet): string[] {
  const chain = (d: Direction): string[] => {
    const [self, tag] = d === "ingress" ? ["daddr", "in"] : ["saddr", "out"];
    return [
      `  chain ${d} {`,
      `    ip ${self} != @${tag}_isolated return`,
      ...rs.rules.flatMap((r, n) => (r.direction === d ? ruleLines(r, n) : [])),
      `    counter name ip ${self} map @${tag}_drops drop`,
      "  }",
    ];
  };
  const veth = `"${HOST_VETH_PREFIX}*"`;
  // An IPv4 packet from or to a pod's veth passes only with the pair `admitted` holds, an IPv6 one
  // only with the pair `open6` holds (a pod no policy isolates). (An inet table's hooks see nothing else.)
  const gate = (side: "iifname" | "oifname"): string[] => {
    const addr = side === "iifname" ? "saddr" : "daddr";
    return [
      `    ${side} ${veth} meta nfproto ipv6 ${side} . ip6 ${addr} != @open6 drop`,
      `    ${side} ${veth} meta nfproto ipv4 ${side} . ip ${addr} != @admitted drop`,
    ];
  };
  const established = "    ct state established,related accept";
  const base = (hook: string, lines: string[]): string[] => [
    `  chain ${hook} {`,
    `    type filter hook ${hook} priority filter + 10; policy accept;`,
    ...lines,
    "  }",
  ];
  return [
    ...chain("ingress"),
    ...chain("egress"),
    // Forward: the gate comes first, so a pod not admitted (one that took a freed address, say)
    // never rides an earlier owner's conntrack entries; then replies of admitted connections.
    ...base("forward", [
      ...gate("iifname"),
      ...gate("oifname"),
      established,
      "    jump egress",
      "    jump ingress",
    ]),
    // Input: replies first, so the node's own connections to a held pod (kubelet probes) are answered.
    ...base("input", [established, ...gate("iifname"), "    jump egress"]),
  ];
}

/** Chains and contents, rendered once (the enforcer's last rules are the next delta's `prev`). */
const rendered = new WeakMap<NodeRules, { chains: string; contents: Contents }>();
function parts(nr: NodeRules): { chains: string; contents: Contents } {
  const had = rendered.get(nr);
  if (had) return had;
  const p = { chains: chains(nr.rules).join("\n"), contents: contents(nr) };
  rendered.set(nr, p);
  return p;
}

const elements = (xs: string[]): string => (xs.length ? ` elements = { ${xs.join(", ")} };` : "");

/** The whole table, replaced in one transaction. */
export function render(nr: NodeRules): string {
  const c = parts(nr).contents;
  const decl = ([name, s]: [string, NftSet]): string =>
    `  ${s.kind} ${name} { type ${s.type};${s.interval ? " flags interval;" : ""}${elements(s.elements)} }`;
  return [
    `table inet ${TABLE} {}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    ...c.counters.map((name) => `  counter ${name} {}`),
    ...[...c.sets].map(decl),
    parts(nr).chains,
    "}",
    "",
  ].join("\n");
}

/**
 * A set's change: the elements that went and came, or, for an interval set
 * (whose ranges merge, so an element is no address of its own), flushed
 * and filled anew. A map's element is deleted by its key.
 */
function elementDelta(name: string, old: NftSet, s: NftSet): string[] {
  const add = (xs: string[]): string[] =>
    xs.length ? [`add element inet ${TABLE} ${name} { ${xs.join(", ")} }`] : [];
  if (s.interval) return [`flush ${s.kind} inet ${TABLE} ${name}`, ...add(s.elements)];
  const had = new Set(old.elements);
  const has = new Set(s.elements);
  const gone = old.elements.filter((e) => !has.has(e)).map((e) => e.split(" : ")[0]!);
  const lines = gone.length ? [`delete element inet ${TABLE} ${name} { ${gone.join(", ")} }`] : [];
  return lines.concat(add(s.elements.filter((e) => !had.has(e))));
}

/**
 * From the table `prev` made to the one `next` makes, touching only the sets
 * and counters that differ; "" when nothing does, null when the chains differ
 * (then the table is rendered anew). Counters that go are deleted last: read
 * them first.
 */
export function renderDelta(prev: NodeRules, next: NodeRules): { script: string; deleted: string[] } | null {
  if (parts(prev).chains !== parts(next).chains) return null;
  const a = parts(prev).contents;
  const b = parts(next).contents;
  const had = new Set(a.counters);
  const has = new Set(b.counters);
  const lines = b.counters.filter((c) => !had.has(c)).map((c) => `add counter inet ${TABLE} ${c}`);
  for (const [name, s] of b.sets) {
    const old = a.sets.get(name);
    if (!old) return null;
    if (old.elements.join(",") === s.elements.join(",")) continue;
    lines.push(...elementDelta(name, old, s));
  }
  const deleted = a.counters.filter((c) => !has.has(c));
  lines.push(...deleted.map((c) => `delete counter inet ${TABLE} ${c}`));
  return { script: lines.length ? `${lines.join("\n")}\n` : "", deleted };
}
