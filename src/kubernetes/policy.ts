// NetworkPolicy on this node: the whole cluster's NetworkPolicies, Namespaces
// and Pods in informer caches, compiled with this node's pods (the addresses
// the pool gave them) into the rule set, and handed to the enforcer. Any
// change that can alter the rules recompiles (a pod event that changes none
// of what they read does not); one compile and apply runs at a time, and
// changes that arrive meanwhile are taken by the next. Until all three
// caches have synced nothing is applied, so after a restart the kernel keeps
// the rules it had; while the API server is away the caches go stale and
// the last rules stay.
//
// A pod's traffic passes only once the kernel has its rules (the gate, see
// cni/policy/nft.ts): ADD needs only the gate in place and returns; the
// pod's rules follow a few ms later. A pod held for long (caches not
// synced, the pod unknown, nft failing) is logged and gets a Warning Event,
// and the rules are retried while any pod is held.

import { compile, type Problem, type RuleSet } from "../../cni/policy/compile.js";
import type { Drops, Enforcer } from "../../cni/policy/enforce.js";
import { type Explanation, explain } from "../../cni/policy/explain.js";
import type { PodInfo as PolicyPod } from "../../cni/policy/model.js";
import type { Admitted, NodeRules } from "../../cni/policy/nft.js";
import type { Logger } from "../../lib/log.js";
import type { KubeApi, KubeObject, PodInfo } from "./api.js";
import { createInformer, type Informer, type InformerStats } from "./informer.js";
import { admittedKey, type Held, heldPods, type LocalPod, type PodRef, tellHeld } from "./policy-held.js";

export type { Held, LocalPod };

export interface PolicyDeps {
  api: KubeApi;
  log: Logger;
  enforcer: Enforcer;
  /** This node's pods with the addresses the pool gave them. */
  localPods(): LocalPod[];
  observer?: PolicyObserver;
  now?(): number;
}

/** What the rest of the daemon hears (metrics, Events); each hook returns at once. */
export interface PolicyObserver {
  /** A new rule set is in the kernel: seconds since the change it answers. */
  programmed?(seconds: number): void;
  /** A pod's traffic passes its rules now: seconds since the pool gave it its address. */
  admitted?(seconds: number): void;
  /** A policy asks what cannot be enforced (told once per problem; an Event on the policy). */
  cannotEnforce?(policy: PodRef, message: string): void;
  /** A pod's traffic has been held for long: why (told now and then while it lasts; an Event on the pod). */
  held?(pod: PodRef, message: string): void;
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
  /** This node's pods whose traffic the gate holds until their rules are in. */
  held: number;
  problems: Problem[];
  informers: Record<
    "pods" | "namespaces" | "networkpolicies",
    InformerStats & { synced: boolean; count: number }
  >;
}

export interface PolicyController {
  /** Puts the gate in the kernel (a table left by an earlier run stays); before pods are served. */
  prepare(): Promise<void>;
  start(): void;
  /**
   * ADD: resolves once the gate is in the kernel (at once, unless `prepare`
   * failed: then it tries again, and rejects if it fails). Until the pod's
   * rules are in, its traffic is dropped.
   */
  admitting(): Promise<void>;
  /**
   * The rules include every pod the pool holds now: resolves after a compile
   * and apply that began after this call. Rejects if that apply failed.
   */
  sync(): Promise<void>;
  /** The last rule set applied, if any. */
  current(): RuleSet | null;
  /** Packets dropped per pod address and direction (the kernel's counters). */
  drops(): Promise<Drops[]>;
  /** This node's pods whose traffic is held, and why. */
  held(): Held[];
  /** What may reach this node's pod and what it may reach; null if the pod is not on this node. */
  explain(
    namespace: string,
    name: string,
  ): Promise<(Explanation & { synced: boolean; held: string | null }) | null>;
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

/** A pod held longer than this is logged and gets a Warning Event, again every minute it stays held. */
const HELD_TELL = { afterMs: 10_000, againMs: 60_000 };
/** While a pod is held, the rules are computed and applied again this often. */
const HELD_RETRY_MS = 5_000;
/** A GET of a local pod that failed (not a 404) is tried again after this. */
const FETCH_RETRY_MS = 10_000;
const EMPTY: RuleSet = { ingressIsolated: [], egressIsolated: [], rules: [], problems: [] };

export function createPolicyController(deps: PolicyDeps): PolicyController {
  const { api, log } = deps;
  const obs = deps.observer ?? {};
  const now = deps.now ?? Date.now;
  const startedAt = now();
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
  const policies = createInformer(api.networkPolicies, "networkpolicy", log, hooks);
  const namespaces = createInformer(api.namespaces, "namespace", log, hooks);
  const all = [pods, namespaces, policies];
  const synced = (): boolean => all.every((i) => i.synced());
  /**
   * Local pods the cache does not hold yet, read from the API server: found
   * (with its UID), not found, or failed (read again after FETCH_RETRY_MS).
   */
  const fetched = new Map<string, { pod: PolicyPod | null; uid: string; until: number }>();
  let rs: RuleSet | null = null;
  let lastScript = "";
  const counts = { compiles: 0, applies: 0, failures: 0, lastError: "" };
  let failing = false;
  /** The pods the kernel admits (keys of admittedKey); null until the gate is known to be in. */
  let admitted: Set<string> | null = null;
  let preparing: Promise<void> | null = null;
  let dirtySince = 0;
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  const told = new Map<string, number>();

  /** The pod as the rules read it: this incarnation (the UID the ADD named), from the cache or a GET. */
  const known = (l: LocalPod): PolicyPod | undefined => {
    const key = `${l.namespace}/${l.name}`;
    const same = (uid: string): boolean => !l.uid || uid === l.uid;
    const cached = view.get(key);
    if (cached && same(cached.uid)) return cached.pod;
    const got = fetched.get(key);
    return got?.pod && same(got.uid) ? got.pod : undefined;
  };

  /** Reads the local pods neither the cache nor an earlier GET knows, all at once. */
  const fetchUnknown = async (local: LocalPod[]): Promise<void> => {
    const t = now();
    const unknown = local.filter(
      (l) => l.name && !known(l) && (fetched.get(`${l.namespace}/${l.name}`)?.until ?? 0) <= t,
    );
    await Promise.all(
      unknown.map(async (l) => {
        const key = `${l.namespace}/${l.name}`;
        try {
          const got = await api.getPod(l.namespace, l.name);
          fetched.set(key, {
            pod: got && toPolicyPod(got),
            uid: got?.uid ?? "",
            until: Number.POSITIVE_INFINITY,
          });
        } catch {
          fetched.set(key, { pod: null, uid: "", until: now() + FETCH_RETRY_MS });
        }
      }),
    );
  };

  /** This node's pods as the compiler reads them, and those whose traffic the rules then admit. */
  const localView = async (): Promise<{ pods: PolicyPod[]; admit: Admitted[] }> => {
    const out: PolicyPod[] = [];
    const admit: Admitted[] = [];
    const local = deps.localPods();
    await fetchUnknown(local);
    for (const l of local) {
      const p = known(l);
      // No Kubernetes pod: no policy can select it. An unknown pod's labels are not known: it stays held.
      if (p) out.push({ ...p, ip: l.ip });
      if (p || !l.name) admit.push({ hostIf: l.hostIf, ip: l.ip, ...(l.ip6 ? { ip6: l.ip6 } : {}) });
    }
    return { pods: out, admit };
  };

  const tellProblems = (next: RuleSet): void => {
    const seen = new Set((rs?.problems ?? []).map((p) => JSON.stringify(p)));
    for (const p of next.problems) {
      if (seen.has(JSON.stringify(p))) continue;
      log.warn("a NetworkPolicy cannot be enforced as written", {
        policy: `${p.namespace}/${p.name}`,
        problem: p.message,
      });
      const uid = policies.get(p.namespace, p.name)?.uid ?? "";
      obs.cannotEnforce?.({ namespace: p.namespace, name: p.name, uid }, p.message);
    }
  };

  const apply = async (next: NodeRules): Promise<void> => {
    try {
      await deps.enforcer.apply(next);
    } catch (e) {
      counts.failures++;
      counts.lastError = String(e);
      failing = true;
      log.error("cannot apply the NetworkPolicy rules; the previous ones stay", { error: String(e) });
      throw e;
    }
    counts.applies++;
    failing = false;
    const before = admitted ?? new Set();
    admitted = new Set(next.admitted.map(admittedKey));
    for (const l of deps.localPods())
      if (admitted.has(admittedKey(l)) && !before.has(admittedKey(l)))
        obs.admitted?.((now() - l.since) / 1000);
  };

  const once = async (): Promise<void> => {
    if (stopped || !synced()) return;
    const since = dirtySince || now();
    dirtySince = 0;
    const t0 = performance.now();
    const local = await localView();
    const t1 = performance.now();
    const rules = compile(
      {
        policies: policies.items(),
        pods: [...view.values()].map((v) => v.pod),
        namespaces: namespaces.items(),
      },
      local.pods,
    );
    counts.compiles++;
    const next: NodeRules = { rules, admitted: local.admit };
    const script = JSON.stringify(next);
    const t2 = performance.now();
    if (script !== lastScript) {
      await apply(next);
      lastScript = script;
      tellProblems(rules);
      rs = rules;
      obs.programmed?.((now() - since) / 1000);
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

  const prepare = (): Promise<void> => {
    preparing ??= (async () => {
      try {
        // No table yet (policy was off, or the node is new): the pods the pool held before this
        // daemon started keep their traffic (no policy was enforced on them); a pod added since is
        // held until its rules are in.
        const before = deps
          .localPods()
          .filter((l) => !l.name || l.since < startedAt)
          .map((l) => ({ hostIf: l.hostIf, ip: l.ip }));
        const got = await deps.enforcer.prepare({ rules: EMPTY, admitted: before });
        admitted ??= new Set(got.admitted.map(admittedKey));
        log.info(
          got.kept
            ? "NetworkPolicy: the rules of the last run stay until recomputed"
            : "NetworkPolicy: gate in place",
          {
            admitted: got.admitted.length,
          },
        );
      } catch (e) {
        log.error("cannot put the NetworkPolicy gate in the kernel; ADD fails until it can", {
          error: String(e),
        });
        throw e;
      } finally {
        preparing = null;
      }
    })();
    return preparing;
  };

  const reasonOf = (l: LocalPod): string => {
    if (!synced())
      return "the daemon has not read the cluster's NetworkPolicies, Namespaces and Pods yet (is the API server reachable?)";
    if (!known(l)) return "the API server does not know the pod yet (by the name and UID its ADD gave)";
    if (failing) return `applying the rules failed: ${counts.lastError}`;
    return "its rules are being applied";
  };
  const held = (): Held[] => heldPods(deps.localPods(), admitted ?? new Set(), now(), reasonOf);

  /** While pods are held: try again, and tell of those held for long. */
  const watchHeld = (): void => {
    const h = held();
    if (h.length && synced()) onChange();
    tellHeld(told, h, { ...HELD_TELL, now: now() }, (p) => {
      const message = `its traffic is dropped until its NetworkPolicy rules are in the kernel: ${p.reason}`;
      log.warn("a pod is held by NetworkPolicy", {
        pod: `${p.namespace}/${p.name}`,
        ip: p.ip,
        reason: p.reason,
      });
      if (p.name) obs.held?.({ namespace: p.namespace, name: p.name, uid: p.uid }, message);
    });
  };

  return {
    prepare,
    start() {
      for (const i of all) i.start();
      retry = setInterval(watchHeld, HELD_RETRY_MS);
      retry.unref();
    },
    async admitting() {
      if (!admitted) await prepare();
    },
    sync: schedule,
    current: () => rs,
    drops: () => deps.enforcer.drops(),
    held,
    async explain(namespace, name) {
      const pod = deps.localPods().find((p) => p.namespace === namespace && p.name === name);
      if (!pod) return null;
      const drops = await deps.enforcer.drops().catch(() => []);
      const dropped = (d: Drops["direction"]): number =>
        drops.find((x) => x.direction === d && x.ip === pod.ip)?.packets ?? 0;
      const h = held().find((x) => x.hostIf === pod.hostIf);
      return { ...explain(rs ?? EMPTY, pod.ip, dropped), synced: synced(), held: h?.reason ?? null };
    },
    stats: () => ({
      synced: synced(),
      policies: policies.items().length,
      rules: rs?.rules.length ?? 0,
      ingressIsolated: rs?.ingressIsolated.length ?? 0,
      egressIsolated: rs?.egressIsolated.length ?? 0,
      ...counts,
      held: held().length,
      problems: rs?.problems ?? [],
      informers: {
        pods: informerStats(pods),
        namespaces: informerStats(namespaces),
        networkpolicies: informerStats(policies),
      },
    }),
    async stop() {
      stopped = true;
      if (retry) clearInterval(retry);
      await Promise.all(all.map((i) => i.stop()));
      await running?.catch(() => {});
      deps.enforcer.close();
    },
  };
}

const informerStats = (i: Informer<KubeObject>) => ({
  ...i.stats(),
  synced: i.synced(),
  count: i.items().length,
});
