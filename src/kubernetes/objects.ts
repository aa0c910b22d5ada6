// The API server's objects as the daemon keeps them: only the fields it
// uses, as plain values. A Pod (its IP, labels, named ports, owner), a
// Namespace (its labels) and a NetworkPolicy (as cni/policy's compiler reads
// it, with the API server's defaulting of policyTypes applied).

import type {
  V1LabelSelector,
  V1Namespace,
  V1NetworkPolicy,
  V1NetworkPolicyPeer,
  V1NetworkPolicyPort,
  V1Pod,
} from "@kubernetes/client-node";
import type {
  LabelSelector,
  NamedPort,
  Policy,
  PolicyPeer,
  PolicyPort,
  Protocol,
} from "../../cni/policy/model.js";
import { isIpv4 } from "../../lib/net.js";

/** What every cached object has. */
export interface KubeObject {
  namespace: string;
  name: string;
  uid: string;
}

/** What the daemon needs to know of a pod. */
export interface PodInfo extends KubeObject {
  /** Owned by a StatefulSet: its IP is held for its return under the same name. */
  statefulSet: boolean;
  hostNetwork: boolean;
  podIp: string;
  createdAt: number;
  annotations: Record<string, string>;
  labels: Record<string, string>;
  nodeName: string;
  /** Its containers' named ports (for NetworkPolicy). */
  ports: NamedPort[];
}

export interface NamespaceObject extends KubeObject {
  labels: Record<string, string>;
}

export type PolicyObject = Policy & KubeObject;

export const STATEFULSET_KIND = "StatefulSet";

const protocol = (p: string | undefined): Protocol => (p ?? "TCP") as Protocol;

/** The pod's IPv4 address among those its status gives, or "" (the rules are IPv4: an address reaches nft; a finished pod has none). */
function ipv4Of(status: V1Pod["status"]): string {
  // A pod that has finished keeps its address in its status, but no longer has it: another may.
  if (status?.phase === "Succeeded" || status?.phase === "Failed") return "";
  const ips = [...(status?.podIPs ?? []).map((x) => x.ip), status?.podIP ?? ""];
  return ips.find((ip) => isIpv4(ip)) ?? "";
}

export function podInfo(p: V1Pod): PodInfo {
  const m = p.metadata ?? {};
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    uid: m.uid ?? "",
    statefulSet: (m.ownerReferences ?? []).some((o) => o.kind === STATEFULSET_KIND && o.controller !== false),
    hostNetwork: p.spec?.hostNetwork === true,
    podIp: ipv4Of(p.status),
    createdAt: m.creationTimestamp ? new Date(m.creationTimestamp).getTime() : 0,
    annotations: m.annotations ?? {},
    labels: m.labels ?? {},
    nodeName: p.spec?.nodeName ?? "",
    ports: (p.spec?.containers ?? []).flatMap((c) =>
      (c.ports ?? [])
        .filter((cp) => cp.name)
        .map((cp) => ({ name: cp.name!, port: cp.containerPort, protocol: protocol(cp.protocol) })),
    ),
  };
}

export function namespaceObject(n: V1Namespace): NamespaceObject {
  const m = n.metadata ?? {};
  return { namespace: "", name: m.name ?? "", uid: m.uid ?? "", labels: m.labels ?? {} };
}

const selector = (s: V1LabelSelector | undefined): LabelSelector => ({
  matchLabels: s?.matchLabels ?? {},
  matchExpressions: (s?.matchExpressions ?? []).map((e) => ({
    key: e.key,
    operator: e.operator,
    values: e.values ?? [],
  })),
});

const peer = (p: V1NetworkPolicyPeer): PolicyPeer => ({
  ...(p.podSelector ? { podSelector: selector(p.podSelector) } : {}),
  ...(p.namespaceSelector ? { namespaceSelector: selector(p.namespaceSelector) } : {}),
  ...(p.ipBlock ? { ipBlock: { cidr: p.ipBlock.cidr, except: p.ipBlock.except ?? [] } } : {}),
});

const port = (p: V1NetworkPolicyPort): PolicyPort => ({
  protocol: protocol(p.protocol),
  ...(p.port !== undefined ? { port: p.port as number | string } : {}),
  ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
});

export function policyObject(np: V1NetworkPolicy): PolicyObject {
  const m = np.metadata ?? {};
  const s = np.spec ?? { podSelector: {} };
  const egress = s.egress ?? [];
  const types = s.policyTypes?.length ? s.policyTypes : ["Ingress", ...(egress.length ? ["Egress"] : [])];
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    uid: m.uid ?? "",
    podSelector: selector(s.podSelector),
    policyTypes: types.filter((t): t is "Ingress" | "Egress" => t === "Ingress" || t === "Egress"),
    // A listed object comes through the client's deserializer (`_from`), a watched one as the server's JSON (`from`).
    ingress: (s.ingress ?? []).map((r) => ({
      peers: (r._from ?? (r as { from?: V1NetworkPolicyPeer[] }).from ?? []).map(peer),
      ports: (r.ports ?? []).map(port),
    })),
    egress: egress.map((r) => ({ peers: (r.to ?? []).map(peer), ports: (r.ports ?? []).map(port) })),
  };
}
