// Pool figures: daemon-side allocate latency from a warm pool (p50/p99, from
// the daemon's own allocation histogram), a burst of 60 allocations on a cold
// pool with realistic simulator latencies against its lower bound, in ip mode
// and in prefix mode, and what /metrics and /dashboard cost with 200 pods.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimulator } from "../../cloud/simulator/server.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import { freePort } from "../../lib/http.js";
import { call, spawnDaemon, waitReady, writeDaemonConfig } from "../daemon-harness.js";
import { histogramQuantile } from "../helpers/prom.js";
import { readSimStats } from "../helpers/sim-stats.js";
import { quantile } from "../helpers/stats.js";

const NODE = "i-bench-node";

function world(latency: Record<string, number | number[]>) {
  return parseWorld({
    regionId: "cn-hangzhou",
    credentials: [{ accessKeyId: "AK", accessKeySecret: "SK-crash-secret" }],
    vpc: { vpcId: "vpc-bench", cidr: "10.40.0.0/16" },
    // A /22 of it reserved for IPv4 prefixes (64 of them), as an operator does for prefix mode.
    vSwitches: [
      { vSwitchId: "vsw-bench", zoneId: "z1", cidr: "10.40.0.0/20", reservations: ["10.40.8.0/22"] },
    ],
    securityGroups: ["sg-bench"],
    // ecs.g7.4xlarge: 8 ENIs, 30 private IPs each.
    instanceTypes: [{ instanceTypeId: "ecs.g7.4xlarge", eniQuantity: 8, eniPrivateIpAddressQuantity: 30 }],
    instances: [{ instanceId: NODE, instanceType: "ecs.g7.4xlarge", zoneId: "z1", vSwitchId: "vsw-bench" }],
    latencyMs: latency,
  });
}

async function withDaemon<T>(
  latency: Record<string, number | number[]>,
  pool: object,
  run: (socket: string, simUrl: string, http: string) => Promise<T>,
): Promise<T> {
  const sim = await startSimulator(world(latency));
  const dir = await mkdtemp(join(tmpdir(), "eniway-poolbench-"));
  const socket = join(dir, "eniway.sock");
  const port = await freePort();
  const config = await writeDaemonConfig(dir, sim.url, NODE, {
    pool,
    log: { level: "info" },
    http: { listen: `127.0.0.1:${port}` },
  });
  const d = spawnDaemon(config);
  try {
    await waitReady(socket, d, 60_000);
    return await run(socket, sim.url, `http://127.0.0.1:${port}`);
  } finally {
    d.child.kill("SIGTERM");
    await d.exited;
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export interface WarmFigures {
  n: number;
  daemonP50Ms: number;
  daemonP99Ms: number;
  roundTripP50Ms: number;
  roundTripP99Ms: number;
}

export async function warmAllocate(n = 400): Promise<WarmFigures> {
  return withDaemon({}, { minIdle: 40, maxIdle: 60, cooldownSeconds: 0 }, async (socket, _url, http) => {
    // Wait for the pool to reach minIdle.
    for (let i = 0; i < 200; i++) {
      const s = (await call(socket, "GET", "/v1/pool")).body as { idle: number };
      if (s.idle >= 40) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const rtt: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await call(socket, "POST", "/v1/allocate", { containerId: `warm-${i}`, ifname: "eth0" });
      rtt.push(performance.now() - t);
      if (r.status !== 200) throw new Error(`allocate failed: ${JSON.stringify(r.body)}`);
      await call(socket, "POST", "/v1/release", { containerId: `warm-${i}`, ifname: "eth0" });
    }
    // The daemon's own histogram: request to durable answer.
    const text = await (await fetch(`${http}/metrics`)).text();
    const ms = (q: number): number =>
      +(histogramQuantile(text, "eniway_allocation_duration_seconds", q, { result: "ok" }) * 1000).toFixed(2);
    return {
      n,
      daemonP50Ms: ms(0.5),
      daemonP99Ms: ms(0.99),
      roundTripP50Ms: quantile(rtt, 0.5),
      roundTripP99Ms: quantile(rtt, 0.99),
    };
  });
}

export interface BurstFigures {
  pods: number;
  allServedMs: number;
  lowerBoundMs: number;
  ratio: number;
  cloudCalls: Record<string, number>;
  callsPerIp: number;
  firstMs: number;
  p50Ms: number;
  /** When each allocation was served, in ms since the burst started, in the order they were asked. */
  servedAtMs: number[];
  /** The same burst with `pool.mode: prefix` (IPv4 prefixes from the reserved block). */
  prefix?: Omit<BurstFigures, "prefix" | "servedAtMs">;
}

/** The cold burst in ip mode, then the same in prefix mode. */
export async function coldBurst(pods = 60): Promise<BurstFigures> {
  const ip = await burstIn("ip", pods);
  const { servedAtMs: _, ...prefix } = await burstIn("prefix", pods);
  return { ...ip, prefix };
}

async function burstIn(mode: "ip" | "prefix", pods: number): Promise<BurstFigures> {
  const latency = { "*": [100, 300], AttachNetworkInterface: 1500, DetachNetworkInterface: 1500 };
  const pool = { mode, minIdle: 0, maxIdle: 80, allocateTimeoutSeconds: 60 };
  return withDaemon(latency, pool, async (socket, url) => {
    const before = (await readSimStats(url)).calls;
    const t0 = performance.now();
    const done = await Promise.all(
      Array.from({ length: pods }, async (_, i) => {
        const r = await call(
          socket,
          "POST",
          "/v1/allocate",
          { containerId: `burst-${i}`, ifname: "eth0" },
          90_000,
        );
        if (r.status !== 200) throw new Error(`allocate ${i} failed: ${JSON.stringify(r.body)}`);
        return performance.now() - t0;
      }),
    );
    const allServedMs = Math.max(...done);
    const after = (await readSimStats(url)).calls;
    const cloudCalls: Record<string, number> = {};
    for (const [k, v] of Object.entries(after))
      if (v - (before[k] ?? 0) > 0) cloudCalls[k] = v - (before[k] ?? 0);
    // Lower bound: IPs come only with a ready ENI. Two ENIs of 30 IPs each (or one with 4 prefixes),
    // created and attached in parallel, cost at least the fastest Create (100 ms) + the fastest
    // Attach call (100 ms) + the attach itself (1500 ms). No Assign is needed: Create carries up to
    // 30 IPs, or 10 prefixes.
    const lowerBoundMs = 100 + 100 + 1500;
    return {
      pods,
      allServedMs: Math.round(allServedMs),
      lowerBoundMs,
      ratio: Number((allServedMs / lowerBoundMs).toFixed(2)),
      cloudCalls,
      callsPerIp: Number((Object.values(cloudCalls).reduce((a, b) => a + b, 0) / pods).toFixed(2)),
      firstMs: Math.round(Math.min(...done)),
      p50Ms: Math.round(quantile(done, 0.5)),
      servedAtMs: done,
    };
  });
}

export interface ScrapeFigures {
  pods: number;
  metricsP50Ms: number;
  metricsBytes: number;
  dashboardDataP50Ms: number;
  dashboardDataBytes: number;
  /** Everything /dashboard loads: the page, its script and style, and uPlot. */
  pageBytes: number;
}

/** /metrics and /dashboard with 200 allocated IPs (7 secondary ENIs x 30 IPs). */
export async function scrapeWithPods(pods = 200): Promise<ScrapeFigures> {
  return withDaemon(
    {},
    { minIdle: 0, maxIdle: 10, allocateTimeoutSeconds: 60 },
    async (socket, _url, http) => {
      await Promise.all(
        Array.from({ length: pods }, async (_, i) => {
          const r = await call(socket, "POST", "/v1/allocate", {
            containerId: `scrape-${i}`,
            ifname: "eth0",
            pod: { namespace: "bench", name: `pod-${i}`, uid: `uid-${i}` },
          });
          if (r.status !== 200) throw new Error(`allocate failed: ${JSON.stringify(r.body)}`);
        }),
      );
      const timed = async (path: string): Promise<{ p50: number; bytes: number }> => {
        const ms: number[] = [];
        let bytes = 0;
        for (let i = 0; i < 30; i++) {
          const t = performance.now();
          bytes = (await (await fetch(`${http}${path}`)).arrayBuffer()).byteLength;
          ms.push(performance.now() - t);
        }
        return { p50: +quantile(ms, 0.5).toFixed(2), bytes };
      };
      const metrics = await timed("/metrics");
      const data = await timed("/dashboard/data");
      let pageBytes = 0;
      for (const asset of ["", "/app.js", "/style.css", "/uPlot.iife.min.js", "/uPlot.min.css"])
        pageBytes += (await (await fetch(`${http}/dashboard${asset}`)).arrayBuffer()).byteLength;
      return {
        pods,
        metricsP50Ms: metrics.p50,
        metricsBytes: metrics.bytes,
        dashboardDataP50Ms: data.p50,
        dashboardDataBytes: data.bytes,
        pageBytes: pageBytes + data.bytes,
      };
    },
  );
}
