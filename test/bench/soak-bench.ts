// Soak: thousands of ADD/DEL cycles through the compiled plugin against one
// daemon (a sandbox node). Per window of cycles: ADD latency p50/p99, the
// daemon's resident memory, its open file descriptors, the pool store's size
// and the pool's composition, so growth or a rising tail shows as a curve.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketRequest } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { runPlugin } from "../../src/sandbox/plugin.js";
import { sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
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
  /** Allocated IPs between cycles: 0 unless a DEL left one behind. */
  allocated: number;
  enis: number;
}

export interface SoakFigures {
  cycles: number;
  windows: SoakWindow[];
  /** RSS at the end minus RSS after the first window (warm-up). */
  rssGrowthMiB: number;
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

export async function soakBench(cycles = 5000, window = 250): Promise<SoakFigures> {
  const prefix = `ews${process.pid % 10000}`;
  const dir = await mkdtemp(join(tmpdir(), "eniway-soak-"));
  const sb = await sandboxUp({
    dir,
    nodes: 1,
    world: sandboxWorld(1, prefix),
    // A short cooldown: with the default 30 s, 12 IPs would cap the soak at 12 cycles per 30 s.
    sets: ["pool.minIdle=2", "pool.maxIdle=8", "pool.cooldownSeconds=1"],
    log: silentLogger,
  });
  const podNs = `${prefix}-pod`;
  execFileSync("ip", ["netns", "add", podNs]);
  try {
    const node = sb.file.nodes[0]!;
    const daemonPid = sb.file.pids[0]!;
    const stateDir = join(dir, node.name, "state");
    const windows: SoakWindow[] = [];
    let adds: number[] = [];
    for (let i = 1; i <= cycles; i++) {
      const env = {
        CNI_CONTAINERID: randomBytes(32).toString("hex"),
        CNI_NETNS: `/var/run/netns/${podNs}`,
        CNI_IFNAME: "eth0",
        CNI_ARGS: `K8S_POD_NAMESPACE=soak;K8S_POD_NAME=p${i}`,
      };
      const t = performance.now();
      const add = await runPlugin(node, { ...env, CNI_COMMAND: "ADD" });
      adds.push(performance.now() - t);
      if (add.code !== 0) throw new Error(`ADD ${i} failed: ${add.out}`);
      const del = await runPlugin(node, { ...env, CNI_COMMAND: "DEL" });
      if (del.code !== 0) throw new Error(`DEL ${i} failed: ${del.out}`);
      if (i % window === 0) {
        const metrics = await fetch(`${node.http}/metrics`).then((r) => r.text());
        const pool = (await socketRequest(node.socket, "GET", "/v1/pool", undefined, 5000)).body as {
          idle: number;
          cooling: number;
          assigned: number;
          enis: unknown[];
        };
        windows.push({
          cycles: i,
          addP50Ms: Number(quantile(adds, 0.5).toFixed(2)),
          addP99Ms: Number(quantile(adds, 0.99).toFixed(2)),
          rssMiB: Number(
            ((samples(metrics, "process_resident_memory_bytes")[0]?.value ?? 0) / 2 ** 20).toFixed(1),
          ),
          fds: readdirSync(`/proc/${daemonPid}/fd`).length,
          storeBytes: folderBytes(stateDir),
          idle: pool.idle + pool.cooling,
          allocated: pool.assigned,
          enis: pool.enis.length,
        });
        adds = [];
      }
    }
    const warm = windows[1] ?? windows[0]!;
    const last = windows[windows.length - 1]!;
    return {
      cycles,
      windows,
      rssGrowthMiB: Number((last.rssMiB - warm.rssMiB).toFixed(1)),
      fdGrowth: last.fds - warm.fds,
      storeGrowthBytes: last.storeBytes - warm.storeBytes,
      p99Trend: Number((last.addP99Ms / warm.addP99Ms).toFixed(2)),
    };
  } finally {
    await sb.stop();
    try {
      execFileSync("ip", ["netns", "del", podNs]);
    } catch {}
    await rm(dir, { recursive: true, force: true });
  }
}
