// What the policy compiler reads: the parts of networking.k8s.io/v1
// NetworkPolicy, Pod and Namespace objects that decide what may reach a pod,
// as plain data (the daemon's watches fill them from the API server).

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface PolicyPort {
  /** Defaults to TCP. */
  protocol?: Protocol;
  /** A number, a container port's name, or absent for every port of the protocol. */
  port?: number | string;
  /** With a numeric port: the last port of the range. */
  endPort?: number;
}

export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface PolicyRule {
  /** `from` (ingress) or `to` (egress); absent or empty means every peer. */
  peers?: PolicyPeer[];
  /** Absent or empty means every port and protocol. */
  ports?: PolicyPort[];
}

export interface Policy {
  namespace: string;
  name: string;
  podSelector: LabelSelector;
  /** As the API server defaults it: Ingress, plus Egress when the spec has egress rules. */
  policyTypes: ("Ingress" | "Egress")[];
  ingress: PolicyRule[];
  egress: PolicyRule[];
}

export interface NamedPort {
  name: string;
  port: number;
  protocol: Protocol;
}

export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** The pod's IPv4 address; "" while it has none. */
  ip: string;
  /** hostNetwork pods have the node's address and are neither selected nor peers. */
  hostNetwork: boolean;
  /** Its containers' named ports. */
  ports: NamedPort[];
}

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

export interface Cluster {
  policies: Policy[];
  pods: PodInfo[];
  namespaces: NamespaceInfo[];
}
