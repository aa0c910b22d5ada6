// /dashboard: a live page of this node, served entirely by the daemon. The
// page (src/dashboard/assets) and uPlot (from node_modules: a small
// time-series chart library with no dependencies, about 50 KB) come from the
// package, so it works with no internet; /dashboard/data is the snapshot the
// page polls. A Content-Security-Policy keeps every request on this origin.
// Nothing here holds a credential: the snapshot is built from the pool, the
// metrics and the Kubernetes side's counters only.

import { readFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { byText } from "../../lib/order.js";
import { packageRoot } from "../../lib/process.js";
import type { PoolSummary } from "../../pool/pool.js";
import type { KubernetesStats } from "../kubernetes/kubernetes.js";
import { countIps, HELD_STATES, type Metrics, type NodeView, type RecentEvent } from "../metrics/metrics.js";

export interface DashboardData {
  time: number;
  node: { instanceId: string; nodeName: string };
  pool: Pick<
    PoolSummary,
    "idle" | "assigned" | "cooling" | "releasing" | "pending" | "waiting" | "limits" | "targets"
  > & {
    maxIps: number;
  };
  enis: {
    eniId: string;
    vSwitchId: string;
    phase: string;
    ips: Record<"idle" | "assigned" | "cooling" | "releasing", number>;
    /** Its IPv4 prefixes (prefix mode). */
    prefixes: string[];
    /** Its IPv6 addresses paired with IPv4s (dual stack). */
    ipv6s: number;
  }[];
  vSwitches: { vSwitchId: string; available: number; poolIps: number; blockedUntil: number | null }[];
  /** Milliseconds over the last 500 samples. */
  latency: { allocation: Quantiles; add: Quantiles };
  cloud: { action: string; calls: number; errors: number; p50Ms: number | null }[];
  events: RecentEvent[];
  kubernetes: { condition: KubernetesStats["condition"]; releasedPodGone: number } | null;
  /** NetworkPolicy on this node, when it enforces it. */
  policy: {
    synced: boolean;
    policies: number;
    rules: number;
    isolated: { ingress: number; egress: number };
    dropped: { ingress: number; egress: number };
    /** Pods whose traffic is dropped until their rules are in the kernel. */
    pending: number;
  } | null;
}

interface Quantiles {
  p50: number | null;
  p99: number | null;
  n: number;
}

export function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

const ms = (seconds: number[]): Quantiles => {
  const s = [...seconds].sort((a, b) => a - b);
  const q = (x: number): number | null => {
    const v = quantile(s, x);
    return v === null ? null : +(v * 1000).toFixed(2);
  };
  return { p50: q(0.5), p99: q(0.99), n: s.length };
};

/** The median of a histogram from its cumulative buckets (the bucket's upper bound), in ms. */
function histogramP50(buckets: { le: number | string; count: number }[]): number | null {
  const total = buckets.find((b) => b.le === "+Inf")?.count ?? 0;
  if (total === 0) return null;
  const b = buckets.find((x) => x.le !== "+Inf" && x.count >= total / 2);
  return b ? +(Number(b.le) * 1000).toFixed(1) : null;
}

async function cloudTable(metrics: Metrics): Promise<DashboardData["cloud"]> {
  const get = async (name: string) => (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  const calls = await get("eniway_cloud_api_calls_total");
  const durations = await get("eniway_cloud_api_duration_seconds");
  const byAction = new Map<string, { calls: number; errors: number }>();
  for (const v of calls) {
    const action = String(v.labels.action);
    const row = byAction.get(action) ?? { calls: 0, errors: 0 };
    row.calls += v.value;
    if (v.labels.result === "error") row.errors += v.value;
    byAction.set(action, row);
  }
  return [...byAction.entries()]
    .sort(([a], [b]) => byText(a, b))
    .map(([action, r]) => {
      const buckets = durations
        .filter(
          (d) =>
            (d as { metricName?: string }).metricName === "eniway_cloud_api_duration_seconds_bucket" &&
            d.labels.action === action,
        )
        .map((d) => ({ le: d.labels.le ?? "+Inf", count: d.value }));
      return { action, ...r, p50Ms: histogramP50(buckets) };
    });
}

export async function dashboardData(
  view: NodeView,
  metrics: Metrics,
  node: { instanceId: string; nodeName: string },
): Promise<DashboardData> {
  const s = view.summary();
  const ips = view.ips();
  const byEni = countIps(ips, (eniId) => eniId);
  const vswOf = new Map(s.enis.map((e) => [e.eniId, e.vSwitchId]));
  const byVSwitch = countIps(ips, (eniId) => vswOf.get(eniId) ?? "");
  const now = Date.now();
  const recent = metrics.recent();
  const k = view.kubernetes();
  return {
    time: now,
    node,
    pool: {
      idle: s.idle,
      assigned: s.assigned,
      cooling: s.cooling,
      releasing: s.releasing,
      pending: s.pending,
      waiting: s.waiting,
      limits: s.limits,
      targets: s.targets,
      maxIps: s.capacity,
    },
    enis: s.enis.map((e) => ({
      eniId: e.eniId,
      vSwitchId: e.vSwitchId,
      phase: e.phase,
      ips: Object.fromEntries(HELD_STATES.map((st) => [st, byEni(e.eniId, st)])) as Record<
        (typeof HELD_STATES)[number],
        number
      >,
      prefixes: e.prefixes,
      ipv6s: e.ipv6s,
    })),
    vSwitches: view.vSwitches().map((v) => ({
      vSwitchId: v.vSwitchId,
      available: v.available,
      poolIps: byVSwitch(v.vSwitchId),
      blockedUntil: (s.blockedVSwitches[v.vSwitchId] ?? 0) > now ? s.blockedVSwitches[v.vSwitchId]! : null,
    })),
    latency: { allocation: ms(recent.allocation), add: ms(recent.add) },
    cloud: await cloudTable(metrics),
    events: recent.events,
    kubernetes: k ? { condition: k.condition, releasedPodGone: k.releasedPodGone } : null,
    policy: await policyData(view),
  };
}

async function policyData(view: NodeView): Promise<DashboardData["policy"]> {
  const p = view.policy();
  if (!p) return null;
  const st = p.stats();
  const dropped = { ingress: 0, egress: 0 };
  for (const d of await p.drops().catch(() => [])) dropped[d.direction] += d.packets;
  return {
    synced: st.synced,
    policies: st.policies,
    rules: st.rules,
    isolated: { ingress: st.ingressIsolated, egress: st.egressIsolated },
    dropped,
    pending: st.held,
  };
}

const UPLOT_DIST = dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"));
const ASSETS: Record<string, { file: string; type: string }> = {
  "/dashboard": { file: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/dashboard/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/dashboard/uPlot.iife.min.js": {
    file: join(UPLOT_DIST, "uPlot.iife.min.js"),
    type: "text/javascript; charset=utf-8",
  },
  "/dashboard/uPlot.min.css": { file: join(UPLOT_DIST, "uPlot.min.css"), type: "text/css; charset=utf-8" },
};
const ASSET_DIR = join(packageRoot(), "src", "dashboard", "assets");

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** Serves /dashboard and its assets and data; false when the path is not the dashboard's. */
export async function serveDashboard(
  path: string,
  res: ServerResponse,
  data: () => Promise<DashboardData>,
): Promise<boolean> {
  if (path === "/dashboard/data") {
    const body = JSON.stringify(await data());
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "application/json" }).end(body);
    return true;
  }
  const asset = ASSETS[path];
  if (!asset) return false;
  const file = asset.file.startsWith("/") ? asset.file : join(ASSET_DIR, asset.file);
  res.writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type }).end(await readFile(file));
  return true;
}
