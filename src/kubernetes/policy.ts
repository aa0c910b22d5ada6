// NetworkPolicy on this node: the whole cluster's NetworkPolicies, Namespaces
// and Pods in informer caches, compiled with this node's pods (the addresses
// the pool gave them) into the rule set, and handed to the enforcer. Any
// change that can alter the rules recompiles (a pod event that changes none
// of what they read does not); one compile and apply runs at a time, and
// changes that arrive meanwhile are taken by the next. Until all three
// caches have synced nothing is applied, so after a restart the kernel keeps
// the rules it had; while the API server is away the caches go stale and
// the last rules stay.

import { compile, type Problem, type RuleSet } from "../../cni/policy/compile.js";
import type { Drops, Enforcer } from "../../cni/policy/enforce.js";
import { type Explanation, explain } from "../../cni/policy/explain.js";
import type { PodInfo as PolicyPod } from "../../cni/policy/model.js";
import type { Logger } from "../../lib/log.js";
import type { KubeApi, PodInfo, PolicyObject } from "./api.js";
import { createInformer, type InformerStats } from "./informer.js";

export interface LocalPod {
  namespace: string;
  name: string;
  ip: string;
}

export interface PolicyDeps {
  api: KubeApi;
  log: Logger;
  enforcer: Enforcer;
  /** This node's pods with the addresses the pool gave them. */
  localPods(): LocalPod[];
  /** A new rule set is in the kernel: seconds since the change it answers. */
  programmed?(seconds: number, rs: RuleSet): void;
  /** A policy asks what cannot be enforced (told once per problem; an Event on the policy). */
  cannotEnforce?(policy: { namespace: string; name: string; uid: string }, message: string): void;
  now?(): number;
}

export interface PolicyStats {
  synced: boolean;
  policies: number;
  rules: number;
  ingressIsolated: number;
  egressIsolated: number;
  compiles: number;
  applies: number;
  failures: number;
  lastError: string;
  problems: Problem[];
  informers: Record<
    "pods" | "namespaces" | "networkpolicies",
    InformerStats & { synced: boolean; count: number }
  >;
}

export interface PolicyController {
  start(): void;
  /**
   * The rules include every pod the pool holds now: resolves after a compile
   * and apply that began after this call (ADD awaits it, so a pod a policy
   * isolates is isolated before ADD returns). Rejects if that apply failed.
   */
  sync(): Promise<void>;
  /** The last rule set applied, if any. */
  current(): RuleSet | null;
  /** Packets dropped per pod address and direction (the kernel's counters). */
  drops(): Promise<Drops[]>;
  /** What may reach this node's pod and what it may reach; null if the pod is not on this node. */
  explain(namespace: string, name: string): Promise<(Explanation & { synced: boolean }) | null>;
  stats(): PolicyStats;
  stop(): Promise<void>;
}

const toPolicyPod = (p: PodInfo): PolicyPod => ({
  namespace: p.namespace,
  name: p.name,
  labels: p.labels,
  ip: p.podIp,
  hostNetwork: p.hostNetwork,
  ports: p.ports,
});

/** What the compiler reads of a pod, as a string: equal means no rule can change. */
const fingerprint = (p: PolicyPod): string => JSON.stringify([p.ip, p.hostNetwork, p.labels, p.ports]);

const byName = (a: PolicyObject, b: PolicyObject): number => {
  const x = `${a.namespace}/${a.name}`;
  const y = `${b.namespace}/${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
};

export function createPolicyController(deps: PolicyDeps): PolicyController {
  const { api, log } = deps;
  const now = deps.now ?? Date.now;
  const onChange = (): void => void schedule().catch(() => {});
  const hooks = { onChange, onSynced: onChange };
  /** The pods as the compiler reads them, converted once per change. */
  const view = new Map<string, { pod: PolicyPod; print: string; uid: string }>();
  const isLocal = (namespace: string, name: string): boolean =>
    deps.localPods().some((l) => l.namespace === namespace && l.name === name);
  // A pod event recompiles only if it changes what the compiler reads, and
  // the pod has an address (or is this node's: the pool gave it one). Most
  // pod events (status conditions, a new pod not yet started) change nothing,
  // and an ADD's own compile would otherwise wait behind theirs.
  const onPod = (p: PodInfo, deleted: boolean): void => {
    const key = `${p.namespace}/${p.name}`;
    const had = view.get(key);
    const pod = toPolicyPod(p);
    const print = fingerprint(pod);
    if (deleted && had?.uid !== p.uid) return; // a later incarnation under the same name stays
    if (deleted) view.delete(key);
    else view.set(key, { pod, print, uid: p.uid });
    const addressed = (had?.pod.ip ?? "") !== "" || pod.ip !== "" || isLocal(p.namespace, p.name);
    if ((deleted ? had !== undefined : had?.print !== print) && addressed) onChange();
  };
  const pods = createInformer(api.pods(""), "pod (cluster)", log, { onChange: onPod, onSynced: onChange });
  let sortedPolicies: PolicyObject[] | null = null;
  const policies = createInformer(api.networkPolicies, "networkpolicy", log, {
    onChange: () => {
      sortedPolicies = null;
      onChange();
    },
    onSynced: onChange,
  });
  const namespaces = createInformer(api.namespaces, "namespace", log, hooks);
  const all = [pods, namespaces, policies];
  /** Local pods the cache does not hold yet, read from the API server once. */
  const fetched = new Map<string, PolicyPod | null>();
  let rs: RuleSet | null = null;
  let lastScript = "";
  const counts = { compiles: 0, applies: 0, failures: 0, lastError: "" };
  let dirtySince = 0;
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  let stopped = false;

  const localPods = async (): Promise<PolicyPod[]> => {
    const out: PolicyPod[] = [];
    for (const l of deps.localPods()) {
      const key = `${l.namespace}/${l.name}`;
      let p = view.get(key)?.pod;
      if (!p && l.name && !fetched.has(key)) {
        const got = await api.getPod(l.namespace, l.name).catch(() => null);
        fetched.set(key, got && toPolicyPod(got));
      }
      p ??= fetched.get(key) ?? undefined;
      if (p) out.push({ ...p, ip: l.ip });
    }
    return out;
  };

  const once = async (): Promise<void> => {
    if (stopped || !all.every((i) => i.synced())) return;
    const since = dirtySince || now();
    dirtySince = 0;
    const t0 = performance.now();
    const local = await localPods();
    const t1 = performance.now();
    sortedPolicies ??= policies.items().sort(byName);
    const next = compile(
      {
        policies: sortedPolicies,
        pods: [...view.values()].map((v) => v.pod),
        namespaces: namespaces.items(),
      },
      local,
    );
    counts.compiles++;
    const script = JSON.stringify(next);
    const t2 = performance.now();
    if (script !== lastScript) {
      try {
        await deps.enforcer.apply(next);
      } catch (e) {
        counts.failures++;
        counts.lastError = String(e);
        log.error("cannot apply the NetworkPolicy rules; the previous ones stay", { error: String(e) });
        throw e;
      }
      counts.applies++;
      lastScript = script;
      const told = new Set((rs?.problems ?? []).map((p) => JSON.stringify(p)));
      for (const p of next.problems) {
        if (told.has(JSON.stringify(p))) continue;
        log.warn("a NetworkPolicy cannot be enforced as written", {
          policy: `${p.namespace}/${p.name}`,
          problem: p.message,
        });
        const uid = policies.get(p.namespace, p.name)?.uid ?? "";
        deps.cannotEnforce?.({ namespace: p.namespace, name: p.name, uid }, p.message);
      }
      rs = next;
      deps.programmed?.((now() - since) / 1000, next);
      const ms = (a: number, b: number): number => +(b - a).toFixed(2);
      log.debug("NetworkPolicy rules applied", {
        sinceChangeMs: now() - since,
        localMs: ms(t0, t1),
        compileMs: ms(t1, t2),
        applyMs: ms(t2, performance.now()),
      });
    }
    for (const k of fetched.keys())
      if (!deps.localPods().some((l) => `${l.namespace}/${l.name}` === k)) fetched.delete(k);
  };

  /** A compile that begins after this call; calls while one waits share it. */
  const schedule = (): Promise<void> => {
    dirtySince ||= now();
    if (queued) return queued;
    const p: Promise<void> = (running ?? Promise.resolve())
      .catch(() => {})
      .then(() => {
        queued = null;
        running = p;
        return once();
      })
      .finally(() => {
        if (running === p) running = null;
      });
    queued = p;
    return p;
  };

  const informerStats = (i: (typeof all)[number]) => ({
    ...i.stats(),
    synced: i.synced(),
    count: i.items().length,
  });

  return {
    start() {
      for (const i of all) i.start();
    },
    sync: schedule,
    current: () => rs,
    drops: () => deps.enforcer.drops(),
    async explain(namespace, name) {
      const pod = deps.localPods().find((p) => p.namespace === namespace && p.name === name);
      if (!pod) return null;
      const drops = await deps.enforcer.drops().catch(() => []);
      const dropped = (d: Drops["direction"]): number =>
        drops.find((x) => x.direction === d && x.ip === pod.ip)?.packets ?? 0;
      const empty: RuleSet = { ingressIsolated: [], egressIsolated: [], rules: [], problems: [] };
      return { ...explain(rs ?? empty, pod.ip, dropped), synced: all.every((i) => i.synced()) };
    },
    stats: () => ({
      synced: all.every((i) => i.synced()),
      policies: policies.items().length,
      rules: rs?.rules.length ?? 0,
      ingressIsolated: rs?.ingressIsolated.length ?? 0,
      egressIsolated: rs?.egressIsolated.length ?? 0,
      ...counts,
      problems: rs?.problems ?? [],
      informers: {
        pods: informerStats(pods),
        namespaces: informerStats(namespaces),
        networkpolicies: informerStats(policies),
      },
    }),
    async stop() {
      stopped = true;
      await Promise.all(all.map((i) => i.stop()));
      await running?.catch(() => {});
      deps.enforcer.close();
    },
  };
}
