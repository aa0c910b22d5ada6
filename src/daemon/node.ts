// One node, wired once: the store, the executor, the pool, reconcile, the
// datapath and the CNI handlers, with the timers that keep them going. The
// daemon builds its node here from its configuration; the tests build theirs
// here too, with other numbers, so they run what production runs.

import { existsSync } from "node:fs";
import type { CloudApi } from "../../cloud/api.js";
import type { MetadataClient } from "../../cloud/metadata.js";
import {
  type Attachment,
  createDatapath,
  type Datapath,
  type EniRef,
  type RepairReport,
} from "../../cni/datapath/datapath.js";
import type { Logger } from "../../lib/log.js";
import { BUILT } from "../../lib/process.js";
import { sleep, withTimeout } from "../../lib/time.js";
import { createDatastore } from "../../pool/datastore/datastore.js";
import {
  type CloudFailure,
  createExecutor,
  type Executor,
  type ExecutorConfig,
} from "../../pool/executor.js";
import { noFreePrefix } from "../../pool/failures.js";
import {
  type AllocateResult,
  type Allocation,
  createPool,
  type Pool,
  type PoolLimits,
  type PoolTargets,
  TryAgainError,
} from "../../pool/pool.js";
import { type ReconcileReport, reconcile } from "../../pool/reconcile.js";
import { openStore, type Store } from "../../pool/store.js";
import { createVSwitchCache, type VSwitchFree } from "../../pool/vswitches.js";
import { type CniHandlers, type CniObserver, createCniHandlers, eniOf } from "./cni.js";
import { type NetnsGoneWatch, watchNetnsGone } from "./netns-gone.js";

/** The tags that mark an ENI as eniway's, and the one that names its node. */
export const OWN_TAG_CREATOR = "creator";
export const OWN_TAG_CREATOR_VALUE = "eniway";
export const OWN_TAG_CLUSTER = "eniway.io/cluster";
export const OWN_TAG_NODE = "eniway.io/node";

/** Our tags for a cluster: every ENI with both is ours to adopt or clean up. */
export function ownTags(clusterId: string): Record<string, string> {
  return { [OWN_TAG_CREATOR]: OWN_TAG_CREATOR_VALUE, [OWN_TAG_CLUSTER]: clusterId };
}

export interface NodeSpec {
  instanceId: string;
  /** The node owns the client from now on: stop() closes it. */
  cloud: CloudApi;
  metadata: MetadataClient;
  log: Logger;
  stateDir: string;
  clusterId: string;
  limits: PoolLimits;
  vSwitchIds: string[];
  securityGroupIds: string[];
  /** The user's tags for every ENI we create (ours are added). */
  tags: Record<string, string>;
  /** The pool reads this object: tests may change it while the node runs. */
  targets: PoolTargets;
  executor: ExecutorConfig;
  leakGraceMs: number;
  /** Intents older than this that nobody runs are resumed by a periodic resync. */
  staleIntentMs: number;
  /** Periods of the pool's tick, the resync with the cloud and drift repair; 0 turns one off. */
  timers: { tickMs: number; resyncMs: number; repairMs: number };
  /** The node namespace to wire pods in; null: no datapath (the pool alone). */
  datapath: { nodeNetns: string; mtu: number; ipv6?: boolean } | null;
  /**
   * GC's floor on an attachment's age, and how long a pod's namespace must
   * be gone before its IP is released (with a datapath only).
   */
  cni: { gcMinAgeMs: number; netnsGoneGraceMs: number };
  /** Hears of cloud failures and of the CNI path (the Kubernetes side); never waited on. */
  observer?: NodeObserver;
}

export interface NodeObserver extends CniObserver {
  cloudFailure?(f: CloudFailure): void;
  /** How each allocation ended and how long it took (metrics). */
  allocation?(result: AllocateResult, seconds: number): void;
  storeWrite?(seconds: number): void;
  reconciled?(report: ReconcileReport, startup: boolean): void;
  repaired?(report: RepairReport): void;
  /** An IP was released because its pod's network namespace is gone. */
  netnsGone?(a: Allocation): void;
}

export interface Node {
  instanceId: string;
  cloud: CloudApi;
  metadata: MetadataClient;
  store: Store;
  executor: Executor;
  /** Allocations wait for the start-up reconcile; everything else is served at once. */
  pool: Pool;
  targets: PoolTargets;
  datapath: Datapath | null;
  cni: CniHandlers | null;
  ready(): boolean;
  /**
   * Reconciles with the cloud (resuming what a crash interrupted), sets up
   * the ENI devices already attached, then becomes ready and starts the timers.
   */
  start(): Promise<ReconcileReport>;
  /** A resync with the cloud; one at a time (a second caller shares the running one). */
  resync(startup?: boolean): Promise<ReconcileReport>;
  refreshVSwitches(): Promise<void>;
  /** Free addresses per candidate vSwitch, as the last DescribeVSwitches said. */
  vSwitches(): { vSwitchId: string; available: number }[];
  /** Not ready any more, no more timers: the first step of a stop (stop() does it too). */
  drain(): void;
  stop(): Promise<void>;
}

const readyEnis = (pool: Pool): EniRef[] =>
  pool
    .summary()
    .enis.filter((e) => e.phase === "ready")
    .map((e) => ({
      eniId: e.eniId,
      mac: e.mac,
      gateway: e.gateway,
      ...(e.gateway6 ? { gateway6: e.gateway6 } : {}),
    }));

const attachmentOf = (a: Allocation): Attachment => ({
  containerId: a.containerId,
  ifname: a.ifname,
  ip: a.ip,
  ...(a.ipv6 ? { ip6: a.ipv6 } : {}),
  eni: eniOf(a),
});

export async function createNode(spec: NodeSpec): Promise<Node> {
  const { cloud, metadata, instanceId } = spec;
  const log = spec.log.child({ instanceId });
  const now = (): number => Date.now();
  const own = ownTags(spec.clusterId);
  const obs = spec.observer ?? {};
  const store = await openStore(spec.stateDir, instanceId, (s) => obs.storeWrite?.(s));
  const datastore = createDatastore(store, now);
  const executor = createExecutor({
    cloud,
    metadata,
    datastore,
    log: log.child({ component: "executor" }),
    now,
    sleep,
    instanceId,
    securityGroupIds: spec.securityGroupIds,
    tags: { ...spec.tags, ...own, [OWN_TAG_NODE]: instanceId },
    config: spec.executor,
    ...(spec.observer?.cloudFailure ? { onFailure: spec.observer.cloudFailure } : {}),
  });
  const vSwitches = createVSwitchCache(cloud, spec.vSwitchIds, {
    prefixes: spec.targets.mode === "prefix",
    log,
  });
  const pool = createPool({
    datastore,
    executor,
    log: log.child({ component: "pool" }),
    now,
    limits: spec.limits,
    targets: spec.targets,
    vSwitches: () => vSwitches.list(),
    onAllocate: (result, seconds) => obs.allocation?.(result, seconds),
  });
  const reconcileDeps = {
    cloud,
    metadata,
    datastore,
    executor,
    pool,
    log: log.child({ component: "reconcile" }),
    now,
    instanceId,
    ownTags: own,
    leakGraceMs: spec.leakGraceMs,
    staleIntentMs: spec.staleIntentMs,
    ipv6: spec.targets.ipStack === "dual",
  };

  let ready = false;
  let markStarted!: () => void;
  const started = new Promise<void>((r) => {
    markStarted = r;
  });
  // Until the start-up reconcile is done the store may list IPs the cloud no longer has.
  const gatedPool: Pool = {
    ...pool,
    async allocate(req, opts) {
      if (!ready) {
        const ok = await withTimeout(
          started.then(() => true),
          spec.targets.allocateTimeoutMs,
        );
        if (!ok) throw new TryAgainError("the daemon is still starting; try again");
      }
      return pool.allocate(req, opts);
    },
  };
  const datapath = spec.datapath
    ? createDatapath({
        ...spec.datapath,
        log: log.child({ component: "datapath" }),
        // The plugin's executable also serves as the netlink helper; without it, `ip -batch`.
        ...(existsSync(BUILT.netlink) ? { netlinkHelper: BUILT.netlink } : {}),
      })
    : null;
  const cni = datapath
    ? createCniHandlers({
        pool: gatedPool,
        datapath,
        log: log.child({ component: "cni" }),
        gcMinAgeMs: spec.cni.gcMinAgeMs,
        ...(spec.observer ? { observer: spec.observer } : {}),
      })
    : null;
  let netnsGone: NetnsGoneWatch | null = null;

  let resyncing: Promise<ReconcileReport> | null = null;
  const resync = (startup = false): Promise<ReconcileReport> => {
    resyncing ??= (async () => {
      try {
        // A blocked vSwitch is used again once a resync sees free addresses (ip mode) or free
        // prefixes in its reserved blocks (prefix mode; while they cannot be listed, the block lasts).
        const freeAgain = (v: VSwitchFree): boolean =>
          v.available > 0 && (spec.targets.mode === "ip" || (v.prefixes ?? 0) > 0);
        await vSwitches
          .refresh()
          .then(async () => {
            await pool.unblockVSwitches(
              vSwitches
                .list()
                .filter(freeAgain)
                .map((v) => v.vSwitchId),
            );
            // Prefix mode: a vSwitch whose reserved blocks are known to be used up is not tried at all.
            const used = vSwitches.list().filter((v) => spec.targets.mode === "prefix" && v.prefixes === 0);
            for (const id of await pool.blockVSwitches(
              used.map((v) => v.vSwitchId),
              spec.executor.vSwitchBlockMs,
            )) {
              log.warn(noFreePrefix(id), { vSwitchId: id });
              obs.cloudFailure?.({ reason: "VSwitchIPExhausted", code: "", message: noFreePrefix(id) });
            }
          })
          .catch((e: unknown) => log.warn("DescribeVSwitches failed", { error: String(e) }));
        const report = await reconcile(reconcileDeps, startup);
        log.info(startup ? "start-up reconcile done" : "resync done", { ...report });
        obs.reconciled?.(report, startup);
        return report;
      } finally {
        resyncing = null;
      }
    })();
    return resyncing;
  };

  let repairing = false;
  const repair = (): void => {
    if (!datapath || repairing || !ready) return;
    repairing = true;
    datapath
      .repair(() => pool.allocations().map(attachmentOf), readyEnis(pool))
      .then((report) => obs.repaired?.(report))
      .catch((e: unknown) =>
        log.warn("datapath repair failed", { error: e instanceof Error ? e.message : String(e) }),
      )
      .finally(() => {
        repairing = false;
      });
  };

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, fn: () => void): void => {
    if (ms > 0) timers.push(setInterval(fn, ms));
  };
  let stopping: Promise<void> | null = null;
  const drain = (): void => {
    for (const t of timers.splice(0)) clearInterval(t);
    netnsGone?.stop();
    ready = false;
  };

  return {
    instanceId,
    cloud,
    metadata,
    store,
    executor,
    pool: gatedPool,
    targets: spec.targets,
    datapath,
    cni,
    ready: () => ready,
    refreshVSwitches: () => vSwitches.refresh(),
    vSwitches: () => vSwitches.list(),
    resync,
    async start() {
      const report = await resync(true);
      // ENI devices before ready: a CHECK or an ADD right after a restart finds them set up.
      await datapath
        ?.discover(readyEnis(pool))
        .catch((e: unknown) => log.warn("ENI discovery failed", { error: String(e) }));
      // One repair before serving: an ADD wires the pod while its allocation's write is
      // under way, so a crash between them leaves wiring of an IP the store calls idle.
      await datapath
        ?.repair(() => pool.allocations().map(attachmentOf), readyEnis(pool))
        .then((report) => obs.repaired?.(report))
        .catch((e: unknown) => log.warn("datapath repair at start failed", { error: String(e) }));
      ready = true;
      markStarted();
      log.info("node ready", { limits: spec.limits, vSwitchIds: spec.vSwitchIds, summary: pool.summary() });
      pool.kick();
      every(spec.timers.tickMs, () => pool.kick());
      every(spec.timers.resyncMs, () => {
        resync(false).catch((e: unknown) =>
          log.warn("resync failed", { error: e instanceof Error ? e.message : String(e) }),
        );
      });
      every(spec.timers.repairMs, repair);
      if (cni) {
        const graceMs = spec.cni.netnsGoneGraceMs;
        netnsGone = watchNetnsGone({
          allocations: () => pool.allocations(),
          busy: (a) => cni.busy(a),
          release: async (a) => {
            await cni.del(a);
          },
          graceMs,
          periodMs: Math.min(5000, Math.max(250, graceMs / 3)),
          log: log.child({ component: "netns-gone" }),
          onRelease: (a) => obs.netnsGone?.(a),
        });
        // At once: a namespace that went while the daemon was down starts its grace now.
        void netnsGone.check().catch(() => {});
      }
      return report;
    },
    drain,
    stop() {
      stopping ??= (async () => {
        drain();
        // In-flight work gets most of the stop budget; intents make an early exit safe anyway.
        await withTimeout(pool.stop(), 5000);
        await store.close();
        datapath?.close();
        await cloud.close();
      })();
      return stopping;
    },
  };
}
