// The policy compiler: the cluster's NetworkPolicies, Pods and Namespaces and
// this node's pods → the rules this node enforces. Pure; networking.k8s.io/v1
// semantics as the Kubernetes documentation defines them:
// - a pod is isolated for a direction once a policy with that policyType
//   selects it; it then admits only what some rule of some such policy allows
//   (policies add up, none subtracts);
// - a rule without peers allows every peer, one without ports every port;
// - a peer is a podSelector (the policy's namespace), a namespaceSelector
//   (all pods there), both (pods matching in namespaces matching) or an
//   ipBlock minus its excepts (pod addresses included);
// - a named port resolves per pod: the target pod's for ingress, each
//   destination pod's for egress.
// Replies and the node's own traffic to its pods are the enforcer's business.

import { isIpv4 } from "../../lib/net.js";
import { byText } from "../../lib/order.js";
import type {
  Cluster,
  NamedPort,
  PodInfo,
  Policy,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  Protocol,
} from "./model.js";
import { cidrRange, contains, merge, type Range, single, subtract } from "./ranges.js";
import { selects } from "./selector.js";

export type Direction = "ingress" | "egress";

export interface PortRange {
  protocol: Protocol;
  first: number;
  last: number;
}

/** A named port resolved for one pod: its address, protocol and port number. */
export interface PodPort {
  ip: string;
  protocol: Protocol;
  port: number;
}

export interface CompiledRule {
  /** "namespace/name ingress 0": the policy, the direction and the rule's index. */
  id: string;
  direction: Direction;
  /** This node's pods the rule applies to (the destination for ingress, the source for egress). */
  pods: string[];
  /** The other end's addresses; null for any. */
  peers: Range[] | null;
  /** Numeric ports; null for every port and protocol. */
  ports: PortRange[] | null;
  /** Named ports, resolved per destination pod. */
  named: PodPort[];
}

export interface Problem {
  /** The policy's namespace and name. */
  namespace: string;
  name: string;
  message: string;
}

export interface RuleSet {
  ingressIsolated: string[];
  egressIsolated: string[];
  rules: CompiledRule[];
  /** What a policy asks that cannot be enforced (it then allows less, never more). */
  problems: Problem[];
}

const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];
const isPort = (n: unknown): n is number =>
  Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;

interface Ctx {
  pods: PodInfo[]; // every pod with an address, hostNetwork ones left out
  nsLabels: Map<string, Record<string, string>>;
  byNamespace: Map<string, PodInfo[]>;
  problems: Problem[];
}

/** `local`: this node's pods, with the addresses the daemon gave them. */
export function compile(cluster: Cluster, local: PodInfo[]): RuleSet {
  // The cluster's pods with this node's pods as the daemon knows them (its addresses come first).
  // Another pod object that still names a local pod's address (the one that held it before) is
  // left out: its labels must not admit the pod that has the address now.
  const mine = new Map<string, Map<string, PodInfo>>();
  for (const p of local) mine.set(p.namespace, (mine.get(p.namespace) ?? new Map()).set(p.name, p));
  const localIps = new Set(local.map((p) => p.ip));
  const seen = new Set<PodInfo>();
  const pods = cluster.pods
    .flatMap((p) => {
      const l = mine.get(p.namespace)?.get(p.name);
      if (l) seen.add(l);
      return l ? [l] : localIps.has(p.ip) ? [] : [p];
    })
    .concat(local.filter((p) => !seen.has(p)))
    .filter(addressed);
  const ctx: Ctx = {
    pods,
    nsLabels: new Map(cluster.namespaces.map((n) => [n.name, n.labels])),
    byNamespace: byNamespace(pods),
    problems: [],
  };
  const localPods = local.filter(addressed);
  const isolated = { ingress: new Set<string>(), egress: new Set<string>() };
  const rules: CompiledRule[] = [];
  for (const policy of byKey(cluster.policies)) {
    const targets = localPods.filter(
      (p) => p.namespace === policy.namespace && selects(policy.podSelector, p.labels),
    );
    if (targets.length === 0) continue;
    for (const direction of ["ingress", "egress"] as const) {
      if (!policy.policyTypes.includes(direction === "ingress" ? "Ingress" : "Egress")) continue;
      for (const t of targets) isolated[direction].add(t.ip);
      policy[direction].forEach((rule, i) => {
        const r = compileRule(ctx, policy, direction, rule, targets);
        if (r) rules.push({ ...r, id: `${key(policy)} ${direction} ${i}` });
      });
    }
  }
  return {
    ingressIsolated: [...isolated.ingress].sort(),
    egressIsolated: [...isolated.egress].sort(),
    rules,
    problems: ctx.problems,
  };
}

/** A pod the rules can name: an IPv4 address of its own (what reaches nft is checked here). */
const addressed = (p: PodInfo): boolean => !p.hostNetwork && isIpv4(p.ip);

function byNamespace(pods: PodInfo[]): Map<string, PodInfo[]> {
  const out = new Map<string, PodInfo[]>();
  for (const p of pods) {
    const list = out.get(p.namespace);
    if (list) list.push(p);
    else out.set(p.namespace, [p]);
  }
  return out;
}

const key = (p: Policy): string => `${p.namespace}/${p.name}`;

/** Policies in the order of their keys (rule ids and sets follow it), each key made once. */
function byKey(policies: Policy[]): Policy[] {
  return policies
    .map((p) => ({ p, k: key(p) }))
    .sort((a, b) => byText(a.k, b.k))
    .map((x) => x.p);
}
const problem = (p: Policy, message: string): Problem => ({ namespace: p.namespace, name: p.name, message });

function compileRule(
  ctx: Ctx,
  policy: Policy,
  direction: Direction,
  rule: PolicyRule,
  targets: PodInfo[],
): Omit<CompiledRule, "id"> | null {
  const peers = rule.peers?.length ? merge(rule.peers.flatMap((p) => peerRanges(ctx, policy, p))) : null;
  if (peers?.length === 0) return null; // its selectors select nobody: it allows nothing
  const wanted = (rule.ports ?? []).flatMap((p) => portOf(ctx, policy, p));
  if (rule.ports?.length && wanted.length === 0) return null;
  const numeric = wanted.filter((p): p is PortRange => "first" in p);
  const names = wanted.filter((p): p is { protocol: Protocol; name: string } => "name" in p);
  // Ingress: the target pod's named ports. Egress: those of each destination pod among the peers.
  const owners =
    direction === "ingress" ? targets : ctx.pods.filter((p) => peers === null || contains(peers, p.ip));
  const named = owners.flatMap((pod) =>
    names.flatMap((n) => resolve(pod.ports, n).map((port) => ({ ip: pod.ip, protocol: n.protocol, port }))),
  );
  if (rule.ports?.length && numeric.length === 0 && named.length === 0) return null;
  return {
    direction,
    pods: targets.map((t) => t.ip).sort(),
    peers,
    ports: rule.ports?.length ? numeric : null,
    named,
  };
}

function resolve(ports: NamedPort[], want: { protocol: Protocol; name: string }): number[] {
  return ports
    .filter((p) => p.name === want.name && p.protocol === want.protocol && isPort(p.port))
    .map((p) => p.port);
}

function portOf(
  ctx: Ctx,
  policy: Policy,
  p: PolicyPort,
): (PortRange | { protocol: Protocol; name: string })[] {
  const protocol = p.protocol ?? "TCP";
  if (!PROTOCOLS.includes(protocol)) {
    ctx.problems.push(
      problem(
        policy,
        `protocol ${JSON.stringify(protocol)} is not TCP, UDP or SCTP; the port allows nothing`,
      ),
    );
    return [];
  }
  if (p.port === undefined) return [{ protocol, first: 0, last: 65535 }];
  if (typeof p.port === "string")
    return /^\d+$/.test(p.port)
      ? portOf(ctx, policy, { ...p, port: Number(p.port) })
      : [{ protocol, name: p.port }];
  const last = p.endPort ?? p.port;
  if (!isPort(p.port) || !isPort(last) || last < p.port) {
    ctx.problems.push(
      problem(
        policy,
        `port ${p.port}${p.endPort ? `-${p.endPort}` : ""} is not a port range; it allows nothing`,
      ),
    );
    return [];
  }
  return [{ protocol, first: p.port, last }];
}

function peerRanges(ctx: Ctx, policy: Policy, peer: PolicyPeer): Range[] {
  if (peer.ipBlock) {
    const block = cidrRange(peer.ipBlock.cidr);
    if (!block) {
      ctx.problems.push(problem(policy, `ipBlock ${peer.ipBlock.cidr} is not IPv4; it allows nothing`));
      return [];
    }
    const except = (peer.ipBlock.except ?? []).map(cidrRange).filter((r): r is Range => r !== null);
    return subtract([block], except);
  }
  if (!peer.podSelector && !peer.namespaceSelector) return [];
  const nsSel = peer.namespaceSelector;
  // Without a namespaceSelector, the policy's own namespace; with one, every namespace it selects.
  const namespaces = nsSel
    ? [...ctx.nsLabels].filter(([, labels]) => selects(nsSel, labels)).map(([name]) => name)
    : [policy.namespace];
  const podSel = peer.podSelector;
  return namespaces
    .flatMap((ns) => ctx.byNamespace.get(ns) ?? [])
    .filter((p) => !podSel || selects(podSel, p.labels))
    .map((p) => single(p.ip));
}
