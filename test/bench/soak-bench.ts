// Soak: thousands of DEL/ADD cycles through the compiled plugin against one
// daemon (a sandbox node) that holds 100 live pods throughout: each cycle
// deletes the oldest pod and adds a new one in its place. Per window of
// cycles: ADD latency p50/p99, the daemon's resident memory, its open file
// descriptors, the pool store's size and the pool's composition, so growth
// or a rising tail shows as a curve.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketRequest } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { runPlugin } from "../../src/sandbox/plugin.js";
import { type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { samples } from "../helpers/prom.js";
import { quantile } from "../helpers/stats.js";

export interface SoakWindow {
  cycles: number;
  addP50Ms: number;
  addP99Ms: number;
  rssMiB: number;
  fds: number;
  storeBytes: number;
  /** Idle and cooling IPs: the warm pool between cycles. */
  idle: number;
  /** Allocated IPs between cycles: the live pods (more if a DEL left one behind). */
  allocated: number;
  enis: number;
}

export interface SoakFigures {
  cycles: number;
  windows: SoakWindow[];
  /** Pods alive throughout (each cycle replaces one). */
  live: number;
  /** RSS at the end minus RSS after the first window (warm-up). */
  rssGrowthMiB: number;
  /** The highest RSS after the warm-up window: the daemon's steady footprint (MiB). */
  rssMaxMiB: number;
  fdGrowth: number;
  storeGrowthBytes: number;
  /** p99 of the last window over p99 of the first after warm-up. */
  p99Trend: number;
}

const folderBytes = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size),
    0,
  );

export async function soakBench(cycles = 5000, window = 250, live = 100): Promise<SoakFigures> {
  const prefix = `ews${process.pid % 10000}`;
  const dir = await mkdtemp(join(tmpdir(), "eniway-soak-"));
  const sb = await sandboxUp({
    dir,
    nodes: 1,
    // 7 secondary ENIs × 20 IPs: the live pods, the cooling ones and the warm pool.
    world: sandboxWorld(1, prefix, { instanceType: { eniQuantity: 8, eniPrivateIpAddressQuantity: 20 } }),
    // A short cooldown: a replaced pod's IP is soon idle again.
    sets: ["pool.minIdle=2", "pool.maxIdle=8", "pool.cooldownSeconds=1"],
    log: silentLogger,
  });
  const slots = Array.from({ length: live }, (_, k) => `${prefix}-p${k}`);
  try {
    for (const ns of slots) execFileSync("ip", ["netns", "add", ns]);
    const node = sb.file.nodes[0]!;
    const daemonPid = sb.file.pids[0]!;
    const stateDir = join(dir, node.name, "state");
    const env = (slot: number, containerId: string) => ({
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/var/run/netns/${slots[slot]}`,
      CNI_IFNAME: "eth0",
      CNI_ARGS: `K8S_POD_NAMESPACE=soak;K8S_POD_NAME=p${containerId.slice(0, 12)}`,
    });
    const held: string[] = [];
    const add = async (slot: number): Promise<number> => {
      held[slot] = randomBytes(32).toString("hex");
      const t = performance.now();
      const r = await runPlugin(node, { ...env(slot, held[slot]), CNI_COMMAND: "ADD" });
      if (r.code !== 0) throw new Error(`ADD in slot ${slot} failed: ${r.out}`);
      return performance.now() - t;
    };
    for (let k = 0; k < live; k++) await add(k);
    const windows: SoakWindow[] = [];
    let adds: number[] = [];
    for (let i = 1; i <= cycles; i++) {
      const slot = i % live;
      const del = await runPlugin(node, { ...env(slot, held[slot]!), CNI_COMMAND: "DEL" });
      if (del.code !== 0) throw new Error(`DEL ${i} failed: ${del.out}`);
      adds.push(await add(slot));
      if (i % window === 0) {
        windows.push(await measure(node, daemonPid, stateDir, i, adds));
        adds = [];
      }
    }
    const warm = windows[1] ?? windows[0]!;
    const last = windows[windows.length - 1]!;
    return {
      cycles,
      live,
      windows,
      rssGrowthMiB: Number((last.rssMiB - warm.rssMiB).toFixed(1)),
      rssMaxMiB: Math.max(...windows.slice(1).map((w) => w.rssMiB), warm.rssMiB),
      fdGrowth: last.fds - warm.fds,
      storeGrowthBytes: last.storeBytes - warm.storeBytes,
      p99Trend: Number((last.addP99Ms / warm.addP99Ms).toFixed(2)),
    };
  } finally {
    await sb.stop();
    for (const ns of slots)
      try {
        execFileSync("ip", ["netns", "del", ns]);
      } catch {}
    await rm(dir, { recursive: true, force: true });
  }
}

/** One window: ADD latency, the daemon's memory and fds, the store's size and the pool. */
async function measure(
  node: SandboxNode,
  daemonPid: number,
  stateDir: string,
  cycles: number,
  adds: number[],
): Promise<SoakWindow> {
  const metrics = await fetch(`${node.http}/metrics`).then((r) => r.text());
  const pool = (await socketRequest(node.socket, "GET", "/v1/pool", undefined, 5000)).body as {
    idle: number;
    cooling: number;
    assigned: number;
    enis: unknown[];
  };
  return {
    cycles,
    addP50Ms: Number(quantile(adds, 0.5).toFixed(2)),
    addP99Ms: Number(quantile(adds, 0.99).toFixed(2)),
    rssMiB: Number(((samples(metrics, "process_resident_memory_bytes")[0]?.value ?? 0) / 2 ** 20).toFixed(1)),
    fds: readdirSync(`/proc/${daemonPid}/fd`).length,
    storeBytes: folderBytes(stateDir),
    idle: pool.idle + pool.cooling,
    allocated: pool.assigned,
    enis: pool.enis.length,
  };
}
