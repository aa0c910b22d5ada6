// The metrics of a running sandbox node with the Kubernetes side on, after a
// scripted scenario (ADDs, DELs, a pod deleted without DEL, injected cloud
// faults): the values agree with the daemon's own /v1/pool, `promtool check
// metrics` finds no naming problem, no credential appears anywhere, and a
// real Prometheus scraping the node answers every query of the Grafana
// dashboard with data (a query naming a metric or label we do not export
// would come back empty and fail).

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../lib/http.js";
import { findTool, hasExited, packageRoot, waitExit } from "../../lib/process.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { call } from "../daemon-harness.js";
import { samples, value } from "../helpers/prom.js";
import { type KubeSandbox, kubeSandbox, until } from "../kubernetes/helpers.js";

const PREFIX = `ewm${process.pid % 100000}`;
const DASHBOARD = join(packageRoot(), "charts/eniway/dashboards/eniway-pool.json");

/** Every PromQL expression of the Grafana dashboard, with its panel. */
async function dashboardQueries(): Promise<{ panel: string; expr: string }[]> {
  const d = JSON.parse(await readFile(DASHBOARD, "utf8")) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  return d.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
}

describe("metrics of a running node, checked by promtool and by a real Prometheus", () => {
  let k: KubeSandbox;
  let http: string;
  let prom: ChildProcess | null = null;
  let promUrl = "";
  let promDir = "";
  let scrape = "";

  beforeAll(async () => {
    for (const tool of ["promtool", "prometheus"])
      if (!findTool(tool))
        throw new Error(`${tool} not found: apt-get install -y prometheus (bash test/setup.sh installs it)`);
    k = await kubeSandbox({
      prefix: PREFIX,
      world: sandboxWorld(1, PREFIX),
      sets: [
        "pool.minIdle=3",
        "kubernetes.releaseGraceSeconds=1",
        "kubernetes.checkSeconds=1",
        "pool.cooldownSeconds=1",
      ],
    });
    http = k.node.http;
    // The scenario: 6 ADDs, 2 DELs, a pod deleted without DEL, a throttled and a refused cloud call.
    const added: { containerId: string; ip: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const name = `m-${i}`;
      const uid = await k.createPod(name);
      const r = await k.add({ name, uid, containerId: `ctr-m-${i}` });
      expect(r.code, r.out).toBe(0);
      added.push({ containerId: `ctr-m-${i}`, ip: r.ip });
    }
    for (const a of added.slice(0, 2)) expect((await k.del(a.containerId)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    await k.deletePod("m-5");
    await until("the pod-gone release", async () => (await k.stats()).releasedPodGone >= 1, 30_000);
    const faults = {
      actions: {
        DescribeNetworkInterfaces: { code: "Throttling", rate: 1, count: 2 },
        DescribeVSwitches: { code: "InvalidVSwitchId.NotFound", rate: 1, count: 1 },
      },
    };
    const put = await fetch(`${k.sb.sim.url}/admin/faults`, { method: "PUT", body: JSON.stringify(faults) });
    expect(put.status).toBe(200);
    const resync = await call(k.node.socket, "POST", "/v1/resync");
    expect(resync.status).toBe(200);
    await fetch(`${k.sb.sim.url}/admin/faults`, { method: "PUT", body: "{}" });
  }, 180_000);

  afterAll(async () => {
    if (prom && !hasExited(prom)) {
      prom.kill("SIGTERM");
      await waitExit(prom, 10_000);
    }
    if (promDir) await rm(promDir, { recursive: true, force: true });
    await k?.close();
  }, 60_000);

  it("agrees with the daemon's /v1/pool, counts the scenario, and passes promtool check metrics", async () => {
    const settled = await until("a settled pool", async () => {
      const pool = (await call(k.node.socket, "GET", "/v1/pool")).body as Record<string, number> & {
        enis: unknown[];
      };
      if (pool.pending !== 0 || pool.intents !== 0) return null;
      const text = await (await fetch(`${http}/metrics`)).text();
      const again = (await call(k.node.socket, "GET", "/v1/pool")).body as Record<string, number>;
      return JSON.stringify(again) === JSON.stringify(pool) ? { pool, text } : null;
    });
    scrape = settled.text;
    for (const state of ["idle", "assigned", "cooling", "releasing", "pending"])
      expect(value(scrape, "eniway_pool_ips", { state }), state).toBe(settled.pool[state]);
    expect(value(scrape, "eniway_pool_enis")).toBe(settled.pool.enis.length);
    // Per ENI and per vSwitch, the same IPs add up to the same totals.
    for (const state of ["idle", "assigned", "cooling", "releasing"]) {
      expect(value(scrape, "eniway_pool_eni_ips", { state }), `per ENI ${state}`).toBe(settled.pool[state]);
      expect(value(scrape, "eniway_pool_vswitch_ips", { state }), `per vSwitch ${state}`).toBe(
        settled.pool[state],
      );
    }
    expect(value(scrape, "eniway_pool_waiters")).toBe(settled.pool.waiting);
    expect(value(scrape, "eniway_pool_max_ips")).toBe(12);
    expect(value(scrape, "eniway_pool_ips", { state: "assigned" })).toBe(3); // 6 added, 2 DEL'd, 1 pod gone
    expect(value(scrape, "eniway_cni_requests_total", { command: "ADD", result: "ok" })).toBe(6);
    // The pod-gone release unwires like a DEL but is not a CNI request.
    expect(value(scrape, "eniway_cni_requests_total", { command: "DEL", result: "ok" })).toBe(2);
    expect(value(scrape, "eniway_cni_request_duration_seconds_count", { command: "ADD" })).toBe(6);
    expect(value(scrape, "eniway_cni_add_phase_duration_seconds_count", { phase: "kernel" })).toBe(6);
    expect(
      value(scrape, "eniway_allocation_duration_seconds_count", { result: "ok" }) +
        value(scrape, "eniway_allocation_duration_seconds_count", { result: "waited" }),
    ).toBe(6);
    expect(
      value(scrape, "eniway_cloud_api_throttled_total", { action: "DescribeNetworkInterfaces" }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      value(scrape, "eniway_cloud_api_retries_total", { action: "DescribeNetworkInterfaces" }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      value(scrape, "eniway_cloud_api_errors_total", {
        action: "DescribeVSwitches",
        code: "InvalidVSwitchId.NotFound",
      }),
    ).toBe(1);
    expect(
      value(scrape, "eniway_cloud_api_calls_total", { action: "CreateNetworkInterface", result: "ok" }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(scrape, "eniway_reconcile_runs_total", { kind: "startup" })).toBe(1);
    expect(value(scrape, "eniway_reconcile_runs_total", { kind: "periodic" })).toBeGreaterThanOrEqual(1);
    expect(value(scrape, "eniway_store_write_duration_seconds_count")).toBeGreaterThan(0);
    expect(value(scrape, "eniway_metadata_duration_seconds_count")).toBeGreaterThan(0);
    expect(value(scrape, "eniway_kubernetes_pod_gone_releases_total")).toBe(1);
    expect(value(scrape, "eniway_kubernetes_api_requests_total", { kind: "list" })).toBeGreaterThanOrEqual(1);
    expect(value(scrape, "eniway_kubernetes_events_total", { result: "created" })).toBeGreaterThan(0);
    expect(samples(scrape, "eniway_build_info")[0]?.labels).toMatchObject({
      version: "0.1.0",
      node: k.node.nodeName,
    });
    // The process and runtime metrics under the names every exporter uses.
    expect(value(scrape, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(value(scrape, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(scrape).not.toMatch(/^eniway_(process|nodejs)_/m);
    // No pod or IP ever becomes a label.
    expect(scrape).not.toMatch(/pod="|ip="|10\.0\.\d+\.\d+/);

    const dir = await mkdtemp(join(tmpdir(), "eniway-promtool-"));
    try {
      const file = join(dir, "metrics.txt");
      await writeFile(file, scrape);
      const f = await open(file);
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn("promtool", ["check", "metrics"], { stdio: [f.fd, "pipe", "pipe"] });
        let out = "";
        c.stdout?.on("data", (d: Buffer) => (out += d));
        c.stderr?.on("data", (d: Buffer) => (out += d));
        c.on("close", (code) => resolve({ code, out }));
      });
      await f.close();
      expect(r.out).toBe("");
      expect(r.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("never shows a credential: not in /metrics, the dashboard's data or its page", async () => {
    const secrets = [k.sb.file.sim.accessKeySecret, k.sb.file.sim.accessKeyId];
    const token = /token: (\S+)/.exec(await readFile(join(k.node.socket, "..", "kubeconfig"), "utf8"))![1]!;
    const texts = [
      await (await fetch(`${http}/metrics`)).text(),
      await (await fetch(`${http}/dashboard/data`)).text(),
      await (await fetch(`${http}/dashboard`)).text(),
      await (await fetch(`${http}/dashboard/app.js`)).text(),
    ];
    for (const t of texts) for (const s of [...secrets, token]) expect(t).not.toContain(s);
  });

  it("a real Prometheus answers every query of the Grafana dashboard with data", async () => {
    promDir = await mkdtemp(join(tmpdir(), "eniway-prom-"));
    const port = await freePort();
    const target = new URL(http).host;
    await writeFile(
      join(promDir, "prometheus.yml"),
      [
        "global: {scrape_interval: 1s, evaluation_interval: 1s}",
        "scrape_configs:",
        "  - job_name: eniway",
        `    static_configs: [{targets: ["${target}"]}]`,
        "",
      ].join("\n"),
    );
    prom = spawn(
      "prometheus",
      [
        `--config.file=${join(promDir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(promDir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let promLog = "";
    prom.stderr?.on("data", (d: Buffer) => (promLog += d));
    promUrl = `http://127.0.0.1:${port}`;
    const query = async (q: string): Promise<{ status: string; data: { result: unknown[] } }> =>
      (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as {
        status: string;
        data: { result: unknown[] };
      };
    await until(
      "Prometheus to scrape the node",
      async () => {
        if (prom && hasExited(prom)) throw new Error(`prometheus ended: ${promLog}`);
        const r = await query("count_over_time(up[1m]) >= 5").catch(() => null);
        return (r?.data.result.length ?? 0) > 0;
      },
      60_000,
    );
    // Some traffic inside the rate windows.
    const uid = await k.createPod("m-late");
    expect((await k.add({ name: "m-late", uid, containerId: "ctr-m-late" })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));

    const nodes = (await (
      await fetch(`${promUrl}/api/v1/label/node/values?match[]=eniway_build_info`)
    ).json()) as { data: string[] };
    expect(nodes.data).toEqual([k.node.nodeName]);
    const empty: string[] = [];
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(20);
    for (const q of queries) {
      const expr = q.expr.replaceAll("$node", ".*").replaceAll("$__rate_interval", "30s");
      const r = await query(expr);
      expect(r.status, `${q.panel}: ${expr}`).toBe("success");
      if (r.data.result.length === 0) empty.push(`${q.panel}: ${expr}`);
    }
    expect(empty).toEqual([]);
    // The check can fail: a metric or a label we do not export comes back empty.
    expect((await query('sum(eniway_pool_ipz{state="idle"})')).data.result).toEqual([]);
    expect((await query('sum by (state) (eniway_pool_ips{nodename=~".+"})')).data.result).toEqual([]);
  }, 120_000);
});
