// The policy compiler as a truth table: for each case the cluster (policies,
// pods, namespaces), then flows and whether they pass, judged by verdict.ts
// (the semantics the nft rules enforce; test/policy/nft.test.ts holds the
// kernel to the same verdicts). The cases follow the Kubernetes documentation
// and the upstream NetworkPolicy e2e tests of 1.20.

import { describe, expect, it } from "vitest";
import { compile } from "../../cni/policy/compile.js";
import type { Cluster, NamedPort, NamespaceInfo, PodInfo, Policy } from "../../cni/policy/model.js";
import { admits, type Flow } from "../../cni/policy/verdict.js";
import { policy } from "../helpers/policy.js";

const pod = (
  ns: string,
  name: string,
  ip: string,
  labels: Record<string, string> = {},
  ports: NamedPort[] = [],
): PodInfo => ({
  namespace: ns,
  name,
  ip,
  labels,
  hostNetwork: false,
  ports,
});

// Namespace x: server (app=server, port 80 named serve-80, 81 named serve-81/UDP), client-a (app=client).
// Namespace y (team=y): client-b (app=client), other (app=other). Namespace z: client-c (app=client).
const SERVER = pod("x", "server", "10.0.0.1", { app: "server" }, [
  { name: "serve-80", port: 80, protocol: "TCP" },
  { name: "serve-81", port: 81, protocol: "UDP" },
]);
const A = pod("x", "client-a", "10.0.0.2", { app: "client" });
const B = pod("y", "client-b", "10.0.1.2", { app: "client" });
const OTHER = pod("y", "other", "10.0.1.3", { app: "other" });
const C = pod("z", "client-c", "10.0.2.2", { app: "client" });
const HOSTNET: PodInfo = { ...pod("y", "hostnet", "192.168.0.10", { app: "client" }), hostNetwork: true };
const PODS = [SERVER, A, B, OTHER, C, HOSTNET];
const NAMESPACES: NamespaceInfo[] = [
  { name: "x", labels: { ns: "x" } },
  { name: "y", labels: { ns: "y", team: "y" } },
  { name: "z", labels: { ns: "z" } },
];
const OUTSIDE = "172.16.0.9";

const tcp = (src: string, dst: string, port = 80): Flow => ({ src, dst, protocol: "TCP", port });
const udp = (src: string, dst: string, port: number): Flow => ({ src, dst, protocol: "UDP", port });
const icmp = (src: string, dst: string): Flow => ({ src, dst, protocol: null, port: 0 });

/** Compiled as one node holding every pod, so a flow meets both its ends' rules. */
function judge(policies: Policy[], pods = PODS) {
  const cluster: Cluster = { policies, pods, namespaces: NAMESPACES };
  const rs = compile(cluster, pods);
  return { rs, pass: (f: Flow): boolean => admits(rs, f) };
}

describe("policy compiler", () => {
  it("without policies nothing is isolated and every flow passes", () => {
    const { rs, pass } = judge([]);
    expect(rs).toMatchObject({ ingressIsolated: [], egressIsolated: [], rules: [] });
    expect(pass(tcp(C.ip, SERVER.ip))).toBe(true);
  });

  it("default deny ingress isolates every pod of its namespace only, for ingress only", () => {
    const { rs, pass } = judge([policy("x", "deny", {})]);
    expect(rs.ingressIsolated).toEqual([SERVER.ip, A.ip].sort());
    expect(rs.egressIsolated).toEqual([]);
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(false);
    expect(pass(icmp(B.ip, A.ip))).toBe(false);
    expect(pass(tcp(SERVER.ip, B.ip))).toBe(true); // egress is not isolated
    expect(pass(tcp(A.ip, B.ip))).toBe(true);
  });

  it("allow-all ingress (an empty rule) admits everything to its pods", () => {
    const { pass } = judge([policy("x", "deny", {}), policy("x", "allow", { ingress: [{}] })]);
    expect(pass(tcp(OUTSIDE, SERVER.ip, 1234))).toBe(true);
    expect(pass(icmp(C.ip, A.ip))).toBe(true);
  });

  it("a podSelector peer means pods of the policy's namespace", () => {
    const { pass } = judge([
      policy("x", "p", {
        podSelector: { matchLabels: { app: "server" } },
        ingress: [{ peers: [{ podSelector: { matchLabels: { app: "client" } } }] }],
      }),
    ]);
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(true);
    expect(pass(tcp(B.ip, SERVER.ip))).toBe(false); // app=client, but namespace y
    expect(pass(tcp(OUTSIDE, SERVER.ip))).toBe(false);
    expect(pass(tcp(B.ip, A.ip))).toBe(true); // client-a is not selected
  });

  it("a namespaceSelector peer means every pod there; both in one peer means both must hold", () => {
    const nsOnly = judge([
      policy("x", "p", { ingress: [{ peers: [{ namespaceSelector: { matchLabels: { team: "y" } } }] }] }),
    ]);
    expect(nsOnly.pass(tcp(B.ip, SERVER.ip))).toBe(true);
    expect(nsOnly.pass(tcp(OTHER.ip, SERVER.ip))).toBe(true);
    expect(nsOnly.pass(tcp(A.ip, SERVER.ip))).toBe(false); // its own namespace is not team=y
    expect(nsOnly.pass(tcp(C.ip, SERVER.ip))).toBe(false);
    const both = judge([
      policy("x", "p", {
        ingress: [
          {
            peers: [
              {
                namespaceSelector: { matchLabels: { team: "y" } },
                podSelector: { matchLabels: { app: "client" } },
              },
            ],
          },
        ],
      }),
    ]);
    expect(both.pass(tcp(B.ip, SERVER.ip))).toBe(true);
    expect(both.pass(tcp(OTHER.ip, SERVER.ip))).toBe(false);
    expect(both.pass(tcp(C.ip, SERVER.ip))).toBe(false);
  });

  it("two peers add up; an empty namespaceSelector means every namespace", () => {
    const { pass } = judge([
      policy("x", "p", {
        ingress: [
          {
            peers: [
              { namespaceSelector: { matchLabels: { ns: "z" } } },
              { podSelector: { matchLabels: { app: "client" } } },
            ],
          },
        ],
      }),
      policy("x", "all-ns", {
        podSelector: { matchLabels: { app: "client" } },
        ingress: [{ peers: [{ namespaceSelector: {} }] }],
      }),
    ]);
    expect(pass(tcp(C.ip, SERVER.ip))).toBe(true);
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(true);
    expect(pass(tcp(B.ip, SERVER.ip))).toBe(false);
    expect(pass(tcp(OTHER.ip, A.ip))).toBe(true);
    expect(pass(tcp(OUTSIDE, A.ip))).toBe(false); // namespaceSelector {} means pods, not any address
  });

  it("matchExpressions: In, NotIn, Exists, DoesNotExist; an unknown operator selects nothing", () => {
    const by = (operator: string, values?: string[]) =>
      judge([
        policy("x", "p", {
          podSelector: { matchLabels: { app: "server" } },
          ingress: [
            {
              peers: [
                {
                  namespaceSelector: {},
                  podSelector: { matchExpressions: [{ key: "app", operator, values }] },
                },
              ],
            },
          ],
        }),
      ]).pass;
    expect([A, B, OTHER].map((p) => by("In", ["client"])(tcp(p.ip, SERVER.ip)))).toEqual([true, true, false]);
    expect([A, B, OTHER].map((p) => by("NotIn", ["client"])(tcp(p.ip, SERVER.ip)))).toEqual([
      false,
      false,
      true,
    ]);
    expect([A, OTHER].map((p) => by("Exists")(tcp(p.ip, SERVER.ip)))).toEqual([true, true]);
    expect([A, OTHER].map((p) => by("DoesNotExist")(tcp(p.ip, SERVER.ip)))).toEqual([false, false]);
    expect(by("Matches", ["client"])(tcp(A.ip, SERVER.ip))).toBe(false);
  });

  it("ipBlock minus its excepts, pod addresses included", () => {
    const { pass } = judge([
      policy("x", "p", {
        podSelector: { matchLabels: { app: "server" } },
        ingress: [{ peers: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.1.2/32"] } }] }],
      }),
    ]);
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(true);
    expect(pass(tcp(OTHER.ip, SERVER.ip))).toBe(true);
    expect(pass(tcp(B.ip, SERVER.ip))).toBe(false); // the except
    expect(pass(tcp(OUTSIDE, SERVER.ip))).toBe(false);
  });

  it("ports by number, range and protocol; a port without a number means every port of its protocol", () => {
    const { pass } = judge([
      policy("x", "p", {
        podSelector: { matchLabels: { app: "server" } },
        ingress: [
          { ports: [{ port: 80 }, { protocol: "UDP", port: 5000, endPort: 5010 }, { protocol: "SCTP" }] },
        ],
      }),
    ]);
    expect(pass(tcp(B.ip, SERVER.ip, 80))).toBe(true);
    expect(pass(tcp(B.ip, SERVER.ip, 81))).toBe(false);
    expect(pass(udp(B.ip, SERVER.ip, 80))).toBe(false);
    expect(pass(udp(B.ip, SERVER.ip, 5010))).toBe(true);
    expect(pass(udp(B.ip, SERVER.ip, 5011))).toBe(false);
    expect(pass({ src: B.ip, dst: SERVER.ip, protocol: "SCTP", port: 9 })).toBe(true);
    expect(pass(icmp(B.ip, SERVER.ip))).toBe(false);
  });

  it("a named port resolves against the target pod for ingress, with its protocol", () => {
    const other = pod("x", "server-2", "10.0.0.3", { app: "server" }, [
      { name: "serve-80", port: 8080, protocol: "TCP" },
    ]);
    const { pass, rs } = judge(
      [
        policy("x", "p", {
          podSelector: { matchLabels: { app: "server" } },
          ingress: [
            { ports: [{ port: "serve-80" }, { port: "serve-81", protocol: "UDP" }, { port: "serve-81" }] },
          ],
        }),
      ],
      [...PODS, other],
    );
    expect(pass(tcp(A.ip, SERVER.ip, 80))).toBe(true);
    expect(pass(tcp(A.ip, other.ip, 8080))).toBe(true);
    expect(pass(tcp(A.ip, other.ip, 80))).toBe(false); // server-2's serve-80 is 8080
    expect(pass(udp(A.ip, SERVER.ip, 81))).toBe(true);
    expect(pass(tcp(A.ip, SERVER.ip, 81))).toBe(false); // serve-81 is UDP
    expect(rs.rules).toHaveLength(1);
  });

  it("egress: isolation of the source, named ports of each destination pod, DNS by number", () => {
    const { pass, rs } = judge([
      policy("x", "p", {
        podSelector: { matchLabels: { app: "client" } },
        policyTypes: ["Egress"],
        egress: [
          { peers: [{ podSelector: { matchLabels: { app: "server" } } }], ports: [{ port: "serve-80" }] },
          { ports: [{ protocol: "UDP", port: 53 }] },
        ],
      }),
    ]);
    expect(rs.egressIsolated).toEqual([A.ip]);
    expect(rs.ingressIsolated).toEqual([]);
    expect(pass(tcp(A.ip, SERVER.ip, 80))).toBe(true);
    expect(pass(tcp(A.ip, SERVER.ip, 81))).toBe(false);
    expect(pass(tcp(A.ip, B.ip, 80))).toBe(false);
    expect(pass(udp(A.ip, OUTSIDE, 53))).toBe(true);
    expect(pass(tcp(B.ip, A.ip, 80))).toBe(true); // ingress to client-a is not isolated
  });

  it("egress to an ipBlock with an except", () => {
    const { pass } = judge([
      policy("x", "p", {
        podSelector: { matchLabels: { app: "client" } },
        policyTypes: ["Egress"],
        egress: [{ peers: [{ ipBlock: { cidr: `${SERVER.ip}/24`, except: [`${SERVER.ip}/32`] } }] }],
      }),
    ]);
    expect(pass(tcp(A.ip, "10.0.0.3"))).toBe(true);
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(false);
    expect(pass(tcp(A.ip, B.ip))).toBe(false);
  });

  it("a flow must pass the source's egress and the destination's ingress", () => {
    const { pass } = judge([
      policy("x", "deny-out", { podSelector: { matchLabels: { app: "client" } }, policyTypes: ["Egress"] }),
      policy("x", "in", { podSelector: { matchLabels: { app: "server" } }, ingress: [{}] }),
      policy("x", "out", {
        podSelector: { matchLabels: { app: "client" } },
        policyTypes: ["Egress"],
        egress: [{ peers: [{ podSelector: { matchLabels: { app: "server" } } }] }],
      }),
    ]);
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(true);
    expect(pass(tcp(A.ip, B.ip))).toBe(false);
  });

  it("hostNetwork pods are never selected and never peers; pods without an address neither", () => {
    const noIp = pod("y", "pending", "", { app: "client" });
    const { rs, pass } = judge(
      [
        policy("y", "deny", {}),
        policy("x", "p", {
          ingress: [{ peers: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "client" } } }] }],
        }),
      ],
      [...PODS, noIp],
    );
    expect(rs.ingressIsolated).not.toContain(HOSTNET.ip);
    expect(rs.ingressIsolated).toEqual([SERVER.ip, A.ip, B.ip, OTHER.ip].sort());
    expect(pass(tcp(HOSTNET.ip, SERVER.ip))).toBe(false);
    expect(pass(tcp(B.ip, SERVER.ip))).toBe(true);
  });

  it("a rule whose selectors select nobody allows nothing, and its pods stay isolated", () => {
    const { rs, pass } = judge([
      policy("x", "p", { ingress: [{ peers: [{ podSelector: { matchLabels: { app: "nobody" } } }] }] }),
    ]);
    expect(rs.rules).toEqual([]);
    expect(rs.ingressIsolated).toEqual([SERVER.ip, A.ip].sort());
    expect(pass(tcp(A.ip, SERVER.ip))).toBe(false);
  });

  it("what cannot be enforced is reported and allows nothing", () => {
    const { rs, pass } = judge([
      policy("x", "p", {
        ingress: [
          { peers: [{ ipBlock: { cidr: "fd00::/64" } }] },
          { ports: [{ protocol: "ICMP" as "TCP", port: 1 }] },
          { ports: [{ port: 70_000 }] },
        ],
      }),
    ]);
    expect(rs.problems).toHaveLength(3);
    expect(rs.problems[0]).toEqual({
      namespace: "x",
      name: "p",
      message: "ipBlock fd00::/64 is not IPv4; it allows nothing",
    });
    expect(pass(tcp(OUTSIDE, SERVER.ip, 1))).toBe(false);
  });

  it("only this node's pods get rules; a local pod's address comes from the daemon", () => {
    const local = [{ ...SERVER }];
    const cluster: Cluster = {
      policies: [policy("x", "p", { ingress: [{ peers: [{ podSelector: {} }] }] })],
      pods: [{ ...SERVER, ip: "" }, A, B],
      namespaces: NAMESPACES,
    };
    const rs = compile(cluster, local);
    expect(rs.ingressIsolated).toEqual([SERVER.ip]);
    expect(rs.rules.map((r) => r.pods)).toEqual([[SERVER.ip]]);
    expect(admits(rs, tcp(A.ip, SERVER.ip))).toBe(true);
    expect(admits(rs, tcp(B.ip, SERVER.ip))).toBe(false);
  });

  it("a pod object that still names a local pod's address (its earlier holder) is no peer", () => {
    // B's address went back to the pool and now belongs to this node's new pod; B's object lags.
    const reused = pod("x", "newcomer", B.ip, { app: "other" });
    const rs = compile(
      {
        policies: [
          policy("x", "server", {
            podSelector: { matchLabels: { app: "server" } },
            ingress: [
              { peers: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "client" } } }] },
            ],
          }),
        ],
        pods: [SERVER, A, B],
        namespaces: NAMESPACES,
      },
      [SERVER, reused],
    );
    expect(admits(rs, tcp(A.ip, SERVER.ip))).toBe(true);
    expect(admits(rs, tcp(reused.ip, SERVER.ip)), "B's labels do not admit the newcomer").toBe(false);
  });
});
