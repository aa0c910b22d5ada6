// The daemon's metrics (prom-client): names `eniway_*`, base units, bounded
// labels (actions, codes, states, ENI and vSwitch ids; never a pod or an IP).
// Events are counted as they happen through the observers handed to the
// cloud client, the metadata client, the store, the pool and the socket API;
// the pool's state and the Kubernetes side's counters are read at scrape
// time. A short memory of recent latencies and events feeds /dashboard.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { CloudObserver } from "../../cloud/api.js";
import type { RepairReport } from "../../cni/datapath/datapath.js";
import type { PoolSummary } from "../../pool/pool.js";
import type { ReconcileReport } from "../../pool/reconcile.js";
import type { KubernetesStats } from "../kubernetes/kubernetes.js";
import type { PolicyObserver } from "../kubernetes/policy.js";
import { type PolicyView, policyMetrics } from "./policy.js";

export const IP_STATES = ["idle", "assigned", "cooling", "releasing", "pending"] as const;
/** The states an IP the pool holds can be in (pending IPs are not on an ENI yet). */
export const HELD_STATES = ["idle", "assigned", "cooling", "releasing"] as const;

/**
 * The pool's IPs counted by phase and by a key of their ENI (the ENI itself,
 * or its vSwitch), in one pass: the metrics and the dashboard both ask.
 */
export function countIps(
  ips: { eniId: string; phase: string }[],
  keyOf: (eniId: string) => string,
): (key: string, phase?: string) => number {
  const counts = new Map<string, number>();
  const add = (k: string): void => {
    counts.set(k, (counts.get(k) ?? 0) + 1);
  };
  for (const ip of ips) {
    const key = keyOf(ip.eniId);
    add(`${key}\0${ip.phase}`);
    add(key);
  }
  return (key, phase) => counts.get(phase === undefined ? key : `${key}\0${phase}`) ?? 0;
}
type CniCommand = "ADD" | "DEL" | "CHECK" | "GC";

/** What the scrape reads of the node. */
export interface NodeView {
  summary(): PoolSummary;
  ips(): { ip: string; eniId: string; phase: string }[];
  /** Free addresses per candidate vSwitch, as the last DescribeVSwitches said. */
  vSwitches(): { vSwitchId: string; available: number }[];
  kubernetes(): KubernetesStats | null;
  /** NetworkPolicy, when the node enforces it. */
  policy(): PolicyView | null;
}

export interface RecentEvent {
  at: number;
  kind: "allocated" | "released" | "failed" | "cloud";
  /** A pod ("namespace/name" or the container id), an IP, an ENI: for the page, never a label. */
  subject: string;
  detail: string;
}

export interface Metrics {
  registry: Registry;
  cloud: CloudObserver;
  metadata(item: string, seconds: number, error: string | null): void;
  storeWrite(seconds: number): void;
  allocation(result: "ok" | "waited" | "try_again", seconds: number): void;
  cni(
    command: CniCommand,
    result: string,
    seconds: number,
    add?: { allocateMs: number; kernelMs: number },
  ): void;
  /** IPs released by the daemon on its own: a CNI GC, or a pod whose network namespace is gone. */
  released(reason: "gc" | "netns_gone", n: number): void;
  reconciled(report: ReconcileReport, startup: boolean): void;
  repaired(report: RepairReport): void;
  /** NetworkPolicy: a change reached the kernel after this long; a pod's traffic was held this long. */
  policy: Required<Pick<PolicyObserver, "programmed" | "admitted">>;
  event(e: Omit<RecentEvent, "at">): void;
  /** The node to read at scrape time, and what eniway_build_info says (set once the node exists). */
  bind(view: NodeView, info: { version: string; node: string }): void;
  /** Recent samples (seconds), newest last, and recent events (newest first). */
  recent(): { allocation: number[]; add: number[]; events: RecentEvent[] };
  text(): Promise<string>;
  contentType: string;
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RECENT_SAMPLES = 500;
const RECENT_EVENTS = 50;

export function createMetrics(): Metrics {
  const registry = new Registry();
  // The process and runtime metrics keep the names every exporter gives them, so generic dashboards work.
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which promtool rightly refuses; the un-suffixed ones stay.
  for (const name of [
    "nodejs_active_handles_total",
    "nodejs_active_requests_total",
    "nodejs_active_resources_total",
  ])
    registry.removeSingleMetric(name);
  let view: NodeView | null = null;
  const samples = { allocation: [] as number[], add: [] as number[] };
  const events: RecentEvent[] = [];
  const keep = (list: number[], v: number): void => {
    list.push(v);
    if (list.length > RECENT_SAMPLES) list.shift();
  };

  const buildInfo = new Gauge({
    name: "eniway_build_info",
    help: "eniway's version and the node it runs on (always 1).",
    labelNames: ["version", "node_version", "node"],
    registers: [registry],
  });

  // The pool, read at scrape time.
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void): Gauge =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        if (view) collect(this);
      },
    });
  gauge("eniway_pool_ips", "IPs in the pool by state.", ["state"], (g) => {
    const s = view!.summary();
    for (const st of IP_STATES) g.set({ state: st }, s[st]);
  });
  gauge("eniway_pool_enis", "Secondary ENIs in the pool.", [], (g) => g.set(view!.summary().enis.length));
  gauge("eniway_pool_max_enis", "Secondary ENIs this node may have.", [], (g) =>
    g.set(view!.summary().limits.maxSecondaryEnis),
  );
  gauge(
    "eniway_pool_max_ips",
    "Pod IPs this node can hold: secondary ENIs x IPs per ENI, or x prefixes of 16 in prefix mode, capped as max-pods.",
    [],
    (g) => g.set(view!.summary().capacity),
  );
  gauge("eniway_pool_ips_per_eni", "IPs one ENI can carry.", [], (g) =>
    g.set(view!.summary().limits.ipsPerEni),
  );
  gauge("eniway_pool_idle_target", "The pool's idle IP targets.", ["bound"], (g) => {
    const t = view!.summary().targets;
    g.set({ bound: "min" }, t.minIdle);
    g.set({ bound: "max" }, t.maxIdle);
  });
  gauge(
    "eniway_pool_info",
    "The pool's mode (ip or prefix) and IP stack (ipv4 or dual) (always 1).",
    ["mode", "ip_stack"],
    (g) => {
      const t = view!.summary().targets;
      g.set({ mode: t.mode, ip_stack: t.ipStack }, 1);
    },
  );
  gauge("eniway_pool_eni_prefixes", "IPv4 prefixes (/28) per ENI.", ["eni", "vswitch"], (g) => {
    for (const e of view!.summary().enis) g.set({ eni: e.eniId, vswitch: e.vSwitchId }, e.prefixes.length);
  });
  gauge(
    "eniway_pool_eni_ipv6",
    "IPv6 addresses per ENI paired with its IPv4s (dual stack).",
    ["eni", "vswitch"],
    (g) => {
      for (const e of view!.summary().enis) g.set({ eni: e.eniId, vswitch: e.vSwitchId }, e.ipv6s);
    },
  );
  gauge("eniway_pool_waiters", "Allocations waiting for an IP.", [], (g) => g.set(view!.summary().waiting));
  gauge("eniway_pool_eni_ips", "IPs per ENI by state.", ["eni", "vswitch", "state"], (g) => {
    const count = countIps(view!.ips(), (eniId) => eniId);
    for (const e of view!.summary().enis)
      for (const st of HELD_STATES)
        g.set({ eni: e.eniId, vswitch: e.vSwitchId, state: st }, count(e.eniId, st));
  });
  gauge("eniway_pool_vswitch_ips", "The pool's IPs per vSwitch by state.", ["vswitch", "state"], (g) => {
    const vsw = new Map(view!.summary().enis.map((e) => [e.eniId, e.vSwitchId]));
    const count = countIps(view!.ips(), (eniId) => vsw.get(eniId) ?? "");
    for (const v of new Set(vsw.values()))
      for (const st of HELD_STATES) g.set({ vswitch: v, state: st }, count(v, st));
  });
  gauge(
    "eniway_vswitch_available_ips",
    "Free addresses of each candidate vSwitch (DescribeVSwitches).",
    ["vswitch"],
    (g) => {
      for (const v of view!.vSwitches()) g.set({ vswitch: v.vSwitchId }, v.available);
    },
  );
  gauge(
    "eniway_vswitch_blocked",
    "1 while a vSwitch is skipped because it ran out of addresses.",
    ["vswitch"],
    (g) => {
      const now = Date.now();
      const blocked = view!.summary().blockedVSwitches;
      for (const v of view!.vSwitches())
        g.set({ vswitch: v.vSwitchId }, (blocked[v.vSwitchId] ?? 0) > now ? 1 : 0);
    },
  );

  // Allocation and CNI.
  const allocation = new Histogram({
    name: "eniway_allocation_duration_seconds",
    help: "From an allocation request to its durable answer, by result (ok: warm pool, waited: a refill, try_again).",
    labelNames: ["result"],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const tryAgain = new Counter({
    name: "eniway_allocation_try_again_total",
    help: "Allocations answered TryAgainLater.",
    registers: [registry],
  });
  const cniRequests = new Counter({
    name: "eniway_cni_requests_total",
    help: "CNI requests from the plugin by command and result (ok or the daemon's error code).",
    labelNames: ["command", "result"],
    registers: [registry],
  });
  const cniDuration = new Histogram({
    name: "eniway_cni_request_duration_seconds",
    help: "CNI requests as the daemon served them, by command and result.",
    labelNames: ["command", "result"],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const released = new Counter({
    name: "eniway_cni_released_total",
    help: "IPs released without a DEL for them, by reason (gc: a CNI GC did not list them; netns_gone: their pod's network namespace was gone).",
    labelNames: ["reason"],
    registers: [registry],
  });
  for (const reason of ["gc", "netns_gone"]) released.inc({ reason }, 0);
  const addPhase = new Histogram({
    name: "eniway_cni_add_phase_duration_seconds",
    help: "A successful ADD split into allocation and kernel work.",
    labelNames: ["phase"],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });

  // The cloud.
  const cloudCalls = new Counter({
    name: "eniway_cloud_api_calls_total",
    help: "Cloud API calls (each with its retries) by action and result.",
    labelNames: ["action", "result"],
    registers: [registry],
  });
  const cloudErrors = new Counter({
    name: "eniway_cloud_api_errors_total",
    help: "Cloud API calls that failed, by action and the cloud's error code.",
    labelNames: ["action", "code"],
    registers: [registry],
  });
  const cloudDuration = new Histogram({
    name: "eniway_cloud_api_duration_seconds",
    help: "Cloud API calls by action, retries included.",
    labelNames: ["action"],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const throttled = new Counter({
    name: "eniway_cloud_api_throttled_total",
    help: "Cloud API attempts refused with a Throttling code.",
    labelNames: ["action"],
    registers: [registry],
  });
  const retries = new Counter({
    name: "eniway_cloud_api_retries_total",
    help: "Cloud API attempts retried, by action.",
    labelNames: ["action"],
    registers: [registry],
  });
  const metadataDuration = new Histogram({
    name: "eniway_metadata_duration_seconds",
    help: "Instance metadata reads by item.",
    labelNames: ["item"],
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const metadataErrors = new Counter({
    name: "eniway_metadata_errors_total",
    help: "Instance metadata reads that failed, by item and error.",
    labelNames: ["item", "error"],
    registers: [registry],
  });

  // Reconcile, repair, store.
  const reconcileRuns = new Counter({
    name: "eniway_reconcile_runs_total",
    help: "Reconciles with the cloud (at start-up and periodic resyncs).",
    labelNames: ["kind"],
    registers: [registry],
  });
  const reconcileFixed = new Counter({
    name: "eniway_reconcile_fixed_total",
    help: "What reconciles fixed, by kind.",
    labelNames: ["what"],
    registers: [registry],
  });
  const repairRuns = new Counter({
    name: "eniway_datapath_repair_runs_total",
    help: "Drift repair runs of the datapath.",
    registers: [registry],
  });
  const repairs = new Counter({
    name: "eniway_datapath_repairs_total",
    help: "Datapath repairs by kind.",
    labelNames: ["kind"],
    registers: [registry],
  });
  const storeWrite = new Histogram({
    name: "eniway_store_write_duration_seconds",
    help: "Durable writes of the pool's store (write, fsync, rename, fsync of the folder).",
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  for (const what of [
    "resumed_intents",
    "adopted_enis",
    "adopted_ips",
    "dropped_enis",
    "dropped_ips",
    "broken_allocations",
    "leaked_enis_deleted",
  ])
    reconcileFixed.inc({ what }, 0);
  for (const kind of ["eni_up", "restored", "removed"]) repairs.inc({ kind }, 0);
  tryAgain.inc(0);

  // The Kubernetes side, read at scrape time: counters that only ever grow there.
  const kubeCounter = (
    name: string,
    help: string,
    labelNames: string[],
    read: (k: KubernetesStats, c: Counter) => void,
  ): Counter =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const k = view?.kubernetes();
        this.reset();
        if (k) read(k, this);
      },
    });
  kubeCounter(
    "eniway_kubernetes_pod_gone_releases_total",
    "IPs released because their pod was gone.",
    [],
    (k, c) => c.inc(k.releasedPodGone),
  );
  kubeCounter(
    "eniway_kubernetes_events_total",
    "Events sent to the API server, by result.",
    ["result"],
    (k, c) => {
      for (const [result, n] of Object.entries(k.events)) c.inc({ result }, n);
    },
  );
  kubeCounter(
    "eniway_kubernetes_watch_restarts_total",
    "Pod watches started after the first, by why.",
    ["reason"],
    (k, c) => {
      c.inc({ reason: "relist" }, k.informer.relists);
      c.inc({ reason: "failure" }, k.informer.failures);
      c.inc({ reason: "rewatch" }, Math.max(0, k.informer.watches - 1));
    },
  );
  kubeCounter(
    "eniway_kubernetes_api_requests_total",
    "Requests to the API server by kind.",
    ["kind"],
    (k, c) => {
      for (const [kind, n] of Object.entries(k.requests)) c.inc({ kind }, n);
    },
  );

  const policy = policyMetrics(registry, () => view?.policy() ?? null);

  const event = (e: Omit<RecentEvent, "at">): void => {
    events.unshift({ at: Date.now(), ...e });
    if (events.length > RECENT_EVENTS) events.pop();
  };

  return {
    registry,
    contentType: registry.contentType,
    cloud: {
      call(action, seconds, code) {
        cloudCalls.inc({ action, result: code === null ? "ok" : "error" });
        cloudDuration.observe({ action }, seconds);
        if (code !== null) {
          cloudErrors.inc({ action, code });
          if (code.startsWith("Throttling")) throttled.inc({ action });
          event({ kind: "cloud", subject: action, detail: code });
        }
      },
      retry(action, code) {
        retries.inc({ action });
        if (code.startsWith("Throttling")) throttled.inc({ action });
      },
    },
    metadata(item, seconds, error) {
      metadataDuration.observe({ item }, seconds);
      if (error) metadataErrors.inc({ item, error });
    },
    storeWrite: (seconds) => storeWrite.observe(seconds),
    allocation(result, seconds) {
      allocation.observe({ result }, seconds);
      if (result === "try_again") tryAgain.inc();
      else keep(samples.allocation, seconds);
    },
    cni(command, result, seconds, add) {
      cniRequests.inc({ command, result });
      cniDuration.observe({ command, result }, seconds);
      if (command === "ADD" && result === "ok") {
        keep(samples.add, seconds);
        if (add) {
          addPhase.observe({ phase: "allocate" }, add.allocateMs / 1000);
          addPhase.observe({ phase: "kernel" }, add.kernelMs / 1000);
        }
      }
    },
    released: (reason, n) => released.inc({ reason }, n),
    reconciled(r, startup) {
      reconcileRuns.inc({ kind: startup ? "startup" : "periodic" });
      reconcileFixed.inc({ what: "resumed_intents" }, r.resumedIntents);
      reconcileFixed.inc({ what: "adopted_enis" }, r.adoptedEnis.length);
      reconcileFixed.inc({ what: "adopted_ips" }, r.adoptedIps.length);
      reconcileFixed.inc({ what: "dropped_enis" }, r.droppedEnis.length);
      reconcileFixed.inc({ what: "dropped_ips" }, r.droppedIps.length);
      reconcileFixed.inc({ what: "broken_allocations" }, r.brokenAllocations.length);
      reconcileFixed.inc({ what: "leaked_enis_deleted" }, r.leakedEnisDeleted.length);
    },
    repaired(r) {
      repairRuns.inc();
      repairs.inc({ kind: "eni_up" }, r.enisBroughtUp.length);
      repairs.inc({ kind: "restored" }, r.restored.length);
      repairs.inc({ kind: "removed" }, r.removed.length);
    },
    policy,
    event,
    bind(v, info) {
      view = v;
      buildInfo.reset();
      buildInfo.set({ version: info.version, node_version: process.version, node: info.node }, 1);
    },
    recent: () => ({ allocation: [...samples.allocation], add: [...samples.add], events: [...events] }),
    text: () => registry.metrics(),
  };
}
