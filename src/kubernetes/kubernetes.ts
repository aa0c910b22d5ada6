// The daemon's Kubernetes side, wired once: the pod cache of this node, the
// release of IPs no pod holds any more, Events on pods and on the Node, the
// Node's max-pods annotation and ENIPoolReady condition, and what DEL needs
// to know to hold a StatefulSet pod's IP. Nothing here is on the CNI path:
// the hooks it offers never wait on the API server.

import type { Logger } from "../../lib/log.js";
import type { CloudFailure } from "../../pool/executor.js";
import type { PoolLimits, PoolMode } from "../../pool/pool.js";
import type { KubeApi, NodeCondition, PodInfo } from "./api.js";
import {
  allocationKey,
  goneCandidates,
  goneOnLiveGet,
  type HeldIp,
  maxPods,
  type PoolCondition,
  type PoolHealth,
  poolCondition,
} from "./decide.js";
import { createEventRecorder, type EventTarget } from "./events.js";
import { createInformer, type PodCache } from "./informer.js";

export const MAX_PODS_ANNOTATION = "eniway.io/max-pods";
export const POOL_CONDITION = "ENIPoolReady";
/** Event reasons: a contract (README, "Kubernetes"). */
export const REASONS = {
  allocated: "AllocIPSucceeded",
  allocationFailed: "AllocIPFailed",
  released: "IPReleasedPodGone",
  maxPods: "MaxPodsExceedsENICapacity",
  policyNotEnforced: "NetworkPolicyNotEnforced",
  policyPending: "NetworkPolicyPending",
} as const;

interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** What the Kubernetes side needs of the node it serves. */
export interface NodePort {
  limits: PoolLimits;
  /** What the pool asks the cloud for, which its pod capacity follows. */
  mode: PoolMode;
  allocations(): HeldIp[];
  /** Unwire and release, as a DEL does. */
  release(a: HeldIp): Promise<void>;
  health(): Omit<PoolHealth, "now" | "lastFailure">;
}

export interface KubernetesDeps {
  api: KubeApi;
  nodeName: string;
  log: Logger;
  releaseGraceMs: number;
  checkMs: number;
  now?(): number;
}

export interface KubernetesStats {
  releasedPodGone: number;
  events: { created: number; updated: number; suppressed: number; failed: number };
  informer: ReturnType<PodCache["stats"]> & { watching: boolean; synced: boolean; pods: number };
  requests: Record<string, number>;
  condition: PoolCondition | null;
}

export interface Kubernetes {
  cache: PodCache;
  /** Hooks for the node: they record and return at once. */
  cloudFailure(f: CloudFailure): void;
  allocated(pod: PodRef, a: { ip: string; eniId: string; ms: number }): void;
  allocationFailed(pod: PodRef, error: Error): void;
  /** A StatefulSet pod: DEL holds its IP for its return under the same name. */
  holdsIp(pod: PodRef): boolean;
  /** A Warning Event on a NetworkPolicy that cannot be enforced as written. */
  policyNotEnforced(policy: PodRef, message: string): void;
  /** A Warning Event on a pod whose traffic is held until its NetworkPolicy rules are in. */
  policyPending(pod: PodRef, message: string): void;
  /** Starts the watch and the loops; the node is served from now on. */
  start(node: NodePort): void;
  /** One pass of the loops now (tests and `resync`). */
  check(): Promise<void>;
  stats(): KubernetesStats;
  stop(): Promise<void>;
}

/** How long a StatefulSet pod's name is remembered after its pod object is gone. */
const STATEFUL_MEMORY_MS = 24 * 3600_000;
/** The node's capacity is compared with the kubelet's max-pods this often. */
const NODE_RECHECK_MS = 10 * 60_000;

export function createKubernetes(deps: KubernetesDeps): Kubernetes {
  const { api, nodeName, log } = deps;
  const now = deps.now ?? Date.now;
  const stateful = new Map<string, number>(); // "ns/name" → last seen as a StatefulSet pod
  const soon = new Set<NodeJS.Timeout>();
  const informer = createInformer(api.pods(nodeName), "pod", log.child({ component: "pod-watch" }), {
    onChange(pod, deleted) {
      if (pod.statefulSet) stateful.set(`${pod.namespace}/${pod.name}`, now());
      if (deleted && node) podDeleted(node, pod);
    },
  });
  const events = createEventRecorder(api, log.child({ component: "events" }), { host: nodeName, now });
  const nodeTarget: EventTarget = { kind: "Node", namespace: "", name: nodeName, uid: nodeName };
  let node: NodePort | null = null;
  let missingSince = new Map<string, number>();
  let lastFailure: PoolHealth["lastFailure"] = null;
  let sent: { condition: PoolCondition; transition: Date } | null = null;
  let nodeCheckedAt = 0;
  let releasedPodGone = 0;
  let timer: NodeJS.Timeout | null = null;
  let checking: Promise<void> | null = null;

  const podTarget = (pod: PodRef): EventTarget => ({
    kind: "Pod",
    namespace: pod.namespace,
    name: pod.name,
    uid: pod.uid || informer.get(pod.namespace, pod.name)?.uid || "",
  });

  /** A deletion seen in the watch starts the grace at once, and the check comes right after it. */
  const podDeleted = (n: NodePort, pod: PodInfo): void => {
    let any = false;
    for (const a of n.allocations()) {
      if (
        a.pod.namespace !== pod.namespace ||
        a.pod.name !== pod.name ||
        (a.pod.uid && a.pod.uid !== pod.uid)
      )
        continue;
      // It existed until now: an earlier "missing" was the cache lagging behind, not the pod.
      missingSince.set(allocationKey(a), now());
      any = true;
    }
    if (!any) return;
    const t = setTimeout(() => {
      soon.delete(t);
      void check();
    }, deps.releaseGraceMs + 50);
    soon.add(t);
  };

  const releaseGone = async (n: NodePort): Promise<void> => {
    const next = goneCandidates({
      allocations: n.allocations(),
      cached: informer.get,
      synced: informer.synced(),
      now: now(),
      graceMs: deps.releaseGraceMs,
      missingSince,
    });
    missingSince = next.missingSince;
    for (const a of next.check) {
      let live: Awaited<ReturnType<KubeApi["getPod"]>>;
      try {
        live = await api.getPod(a.pod.namespace, a.pod.name);
      } catch (e) {
        log.warn("cannot verify that a pod is gone; keeping its IP", { ip: a.ip, error: String(e) });
        continue;
      }
      if (!goneOnLiveGet(a, live)) continue;
      await n.release(a);
      releasedPodGone++;
      missingSince.delete(allocationKey(a));
      const who = `${a.pod.namespace}/${a.pod.name}`;
      log.info("released the IP of a pod that is gone", { ip: a.ip, pod: who, uid: a.pod.uid });
      events.record(nodeTarget, "Normal", REASONS.released, `released ${a.ip}: pod ${who} is gone`);
    }
  };

  const syncNode = async (n: NodePort): Promise<void> => {
    const t = now();
    if (t - nodeCheckedAt >= NODE_RECHECK_MS || nodeCheckedAt === 0) {
      const capacity = maxPods(n.limits, n.mode);
      await api.annotateNode(nodeName, { [MAX_PODS_ANNOTATION]: String(capacity) });
      const info = await api.getNode(nodeName);
      nodeCheckedAt = t;
      if (info.podCapacity !== null && info.podCapacity > capacity)
        events.record(
          nodeTarget,
          "Warning",
          REASONS.maxPods,
          `the kubelet allows ${info.podCapacity} pods but the node's ENIs hold ${capacity} pod IPs; ` +
            `set the kubelet's maxPods to at most ${capacity} (plus host-network pods)`,
        );
    }
    const c = poolCondition({ ...n.health(), now: t, lastFailure });
    const same = sent && sent.condition.status === c.status && sent.condition.reason === c.reason;
    if (same) return;
    const transition = sent && sent.condition.status === c.status ? sent.transition : new Date(t);
    const condition: NodeCondition = { type: POOL_CONDITION, ...c };
    await api.setNodeCondition(nodeName, condition, transition);
    if (sent?.condition.status !== c.status) log.info("node condition", { [POOL_CONDITION]: c });
    sent = { condition: c, transition };
  };

  const checkOnce = async (): Promise<void> => {
    const n = node;
    if (!n) return;
    try {
      await releaseGone(n);
    } catch (e) {
      log.warn("release of IPs whose pod is gone failed", { error: String(e) });
    }
    try {
      await syncNode(n);
    } catch (e) {
      log.warn("cannot update the Node", { error: String(e) });
    }
  };

  /** One check at a time; a call during one runs another right after it (it may know more). */
  let again = false;
  const check = (): Promise<void> => {
    if (checking) {
      again = true;
      return checking;
    }
    checking = (async () => {
      do {
        again = false;
        await checkOnce();
      } while (again && node);
    })().finally(() => {
      checking = null;
    });
    return checking;
  };

  return {
    cache: informer,
    cloudFailure(f) {
      lastFailure = { reason: f.reason, message: f.message, at: now() };
      events.record(nodeTarget, "Warning", f.reason, f.message);
      if (node) void check();
    },
    allocated(pod, a) {
      if (!pod.name) return;
      events.record(
        podTarget(pod),
        "Normal",
        REASONS.allocated,
        `allocated ${a.ip} on ${a.eniId} in ${Math.round(a.ms)} ms`,
      );
    },
    allocationFailed(pod, error) {
      if (!pod.name) return;
      events.record(podTarget(pod), "Warning", REASONS.allocationFailed, error.message.slice(0, 500));
    },
    policyNotEnforced(policy, message) {
      const target: EventTarget = { kind: "NetworkPolicy", ...policy };
      events.record(target, "Warning", REASONS.policyNotEnforced, `on ${nodeName}: ${message}`);
    },
    policyPending(pod, message) {
      events.record({ kind: "Pod", ...pod }, "Warning", REASONS.policyPending, message);
    },
    holdsIp(pod) {
      if (!pod.name) return false;
      const cached = informer.get(pod.namespace, pod.name);
      if (cached?.statefulSet) return true;
      const seen = stateful.get(`${pod.namespace}/${pod.name}`);
      if (seen !== undefined && now() - seen < STATEFUL_MEMORY_MS) return true;
      // A pod the cache cannot know yet because the watch is down: keep its IP, in case it returns.
      if (!cached && !informer.watching()) {
        log.info("holding the IP of a pod unknown while the pod watch is down", {
          pod: `${pod.namespace}/${pod.name}`,
        });
        return true;
      }
      return false;
    },
    start(n) {
      node = n;
      informer.start();
      void check();
      timer = setInterval(() => void check(), deps.checkMs);
    },
    check,
    stats: () => ({
      releasedPodGone,
      events: events.stats(),
      informer: {
        ...informer.stats(),
        watching: informer.watching(),
        synced: informer.synced(),
        pods: informer.items().length,
      },
      requests: api.requests(),
      condition: sent?.condition ?? null,
    }),
    async stop() {
      if (timer) clearInterval(timer);
      for (const t of soon) clearTimeout(t);
      node = null;
      await checking;
      await informer.stop();
      await events.stop();
    },
  };
}
