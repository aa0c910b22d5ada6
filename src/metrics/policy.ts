// NetworkPolicy metrics: how long a change takes to reach the kernel
// (observed as it happens), and at scrape time the policies, rules, isolated
// pods, failed applies and dropped packets (nft counters) by direction. Per
// pod drops are on the dashboard and `eniway policy`, not labels.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Drops } from "../../cni/policy/enforce.js";
import type { PolicyStats } from "../kubernetes/policy.js";

export interface PolicyView {
  stats(): PolicyStats;
  drops(): Promise<Drops[]>;
}

export function policyMetrics(
  registry: Registry,
  read: () => PolicyView | null,
): { programmed(seconds: number): void } {
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
    "eniway_policy_synced",
    "1 once the NetworkPolicy, Namespace and Pod caches have synced.",
    [],
    (s, g) => g.set(s.synced ? 1 : 0),
  );
  new Counter({
    name: "eniway_policy_apply_failures_total",
    help: "Rule sets nft refused (the previous rules stayed).",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read()?.stats().failures ?? 0);
    },
  });
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
  return { programmed: (seconds) => programming.observe(seconds) };
}
