// NetworkPolicy metrics: how long a change takes to reach the kernel
// (observed as it happens), and at scrape time the policies, rules, isolated
// pods, failed applies and dropped packets (nft counters) by direction. Per
// pod drops are on the dashboard and `eniway policy`, not labels.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Drops } from "../../cni/policy/enforce.js";
import type { PolicyObserver, PolicyStats } from "../kubernetes/policy.js";

export interface PolicyView {
  stats(): PolicyStats;
  drops(): Promise<Drops[]>;
}

export function policyMetrics(
  registry: Registry,
  read: () => PolicyView | null,
): Required<Pick<PolicyObserver, "programmed" | "admitted">> {
  const programming = new Histogram({
    name: "eniway_policy_programming_seconds",
    help: "From a change of a NetworkPolicy, Namespace or Pod (or a pod's ADD/DEL) to its rules in the kernel.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    set: (s: PolicyStats, g: Gauge) => void,
  ): void =>
    void new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const v = read();
        this.reset();
        if (v) set(v.stats(), this);
      },
    });
  gauge("eniway_policy_policies", "NetworkPolicies in the cluster (the daemon's cache).", [], (s, g) =>
    g.set(s.policies),
  );
  gauge(
    "eniway_policy_rules",
    "Policy rules this node enforces (nft rules; pods are set elements).",
    [],
    (s, g) => g.set(s.rules),
  );
  gauge(
    "eniway_policy_isolated_pods",
    "This node's pods a policy isolates, by direction.",
    ["direction"],
    (s, g) => {
      g.set({ direction: "ingress" }, s.ingressIsolated);
      g.set({ direction: "egress" }, s.egressIsolated);
    },
  );
  gauge(
    "eniway_policy_pending_pods",
    "This node's pods whose traffic is dropped until their NetworkPolicy rules are in the kernel.",
    [],
    (s, g) => g.set(s.held),
  );
  gauge(
    "eniway_policy_synced",
    "1 once the NetworkPolicy, Namespace and Pod caches have synced.",
    [],
    (s, g) => g.set(s.synced ? 1 : 0),
  );
  const counter = (name: string, help: string, value: (s: PolicyStats) => number): void =>
    void new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read();
        this.reset();
        this.inc(v ? value(v.stats()) : 0);
      },
    });
  counter(
    "eniway_policy_apply_failures_total",
    "Rule sets nft refused (the previous rules stayed).",
    (s) => s.failures,
  );
  counter(
    "eniway_policy_compiles_total",
    "Rule sets compiled: one per change that can alter them (an ADD or DEL, a policy, a namespace, a pod's labels, address or ports).",
    (s) => s.compiles,
  );
  new Counter({
    name: "eniway_policy_dropped_packets_total",
    help: "Packets a NetworkPolicy dropped on this node, by direction.",
    labelNames: ["direction"],
    registers: [registry],
    async collect() {
      const v = read();
      this.reset();
      const sums = { ingress: 0, egress: 0 };
      for (const d of v ? await v.drops().catch(() => []) : []) sums[d.direction] += d.packets;
      for (const [direction, n] of Object.entries(sums)) this.inc({ direction }, n);
    },
  });
  const admitted = new Histogram({
    name: "eniway_policy_pod_held_seconds",
    help: "From a pod's address to its NetworkPolicy rules in the kernel: how long its traffic was held.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 120],
    registers: [registry],
  });
  return {
    programmed: (seconds) => programming.observe(seconds),
    admitted: (seconds) => admitted.observe(seconds),
  };
}
