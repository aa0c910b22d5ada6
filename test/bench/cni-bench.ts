// Warm-pool ADD and DEL of the real eniway plugin against the reference
// bridge + host-local, measured in the same run: median, p90, ratio. Also
// VERSION latency and the daemon's share of an ADD (allocation vs kernel).

import { execFileSync, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../lib/log.js";
import { type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { histogramQuantile } from "../helpers/prom.js";
import { quantile } from "../helpers/stats.js";

/** Where the reference plugins (bridge, host-local) are looked up: Debian's containernetworking-plugins. */
export const REF = "/usr/lib/cni";

function exec(
  bin: string,
  env: Record<string, string>,
  stdin: string,
): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(bin, [], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["pipe", "pipe", "ignore"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => resolve({ ms: performance.now() - t, code, out }));
    child.stdin.end(stdin);
  });
}

const sh = (...argv: string[]): void => {
  execFileSync(argv[0]!, argv.slice(1), { stdio: "ignore" });
};

export interface CniFigures {
  n: number;
  eniway: { addP50: number; addP90: number; delP50: number; delP90: number; versionP50: number };
  bridge: { addP50: number; addP90: number; delP50: number; delP90: number; versionP50: number };
  ratio: { add: number; del: number; version: number };
  daemon: { allocateP50: number; kernelP50: number };
  /** The node's CNI binaries on disk (MB): eniway's forwarder, the reference bridge. */
  binaryMB: { eniway: number; bridge: number };
  /** Every ADD and DEL, in ms, in the order they ran. */
  samples: {
    eniway: { add: number[]; del: number[] };
    bridge: { add: number[]; del: number[] };
  };
}

export async function cniBench(n = 40): Promise<CniFigures> {
  for (const p of ["bridge", "host-local"])
    if (!existsSync(join(REF, p)))
      throw new Error(`${REF}/${p} is missing: apt-get install containernetworking-plugins`);
  const prefix = `ewb${process.pid % 100000}`;
  const dir = await mkdtemp(join(tmpdir(), "eniway-cnibench-"));
  const sb = await sandboxUp({
    dir,
    nodes: 1,
    world: sandboxWorld(1, prefix),
    sets: ["pool.minIdle=6", "pool.maxIdle=10", "pool.cooldownSeconds=0", "log.level=info"],
    log: silentLogger,
  });
  const node = sb.file.nodes[0] as SandboxNode;
  const conf = JSON.parse(await readFile(node.cniConfFile, "utf8")) as { plugins: object[] };
  const eniwayConf = JSON.stringify({ cniVersion: "1.0.0", name: "eniway", ...conf.plugins[0] });
  const bridgeConf = JSON.stringify({
    cniVersion: "1.0.0",
    name: "bench-bridge",
    type: "bridge",
    bridge: `${prefix}br`.slice(0, 15),
    isGateway: true,
    ipam: { type: "host-local", subnet: "10.250.0.0/16", dataDir: join(dir, "ipam") },
  });
  const pod = `${prefix}-pod`;
  const times = {
    eAdd: [] as number[],
    eDel: [] as number[],
    bAdd: [] as number[],
    bDel: [] as number[],
    eVer: [] as number[],
    bVer: [] as number[],
  };
  try {
    // Let the pool reach minIdle first: this measures a warm pool.
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < n; i++) {
      sh("ip", "netns", "add", pod);
      const base = { CNI_CONTAINERID: `bench${i}`, CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: "eth0" };
      const eniEnv = { ...base, CNI_PATH: node.cniBinDir };
      const refEnv = { ...base, CNI_PATH: REF };
      // Alternate who goes first, so neither gets a systematically warmer cache.
      const order = i % 2 === 0 ? ["e", "b"] : ["b", "e"];
      for (const who of order) {
        const [bin, env, cfg] =
          who === "e"
            ? [join(node.cniBinDir, "eniway"), eniEnv, eniwayConf]
            : [join(REF, "bridge"), refEnv, bridgeConf];
        const add = await exec(bin, { ...env, CNI_COMMAND: "ADD" }, cfg);
        if (add.code !== 0) throw new Error(`${who} ADD failed: ${add.out}`);
        const del = await exec(bin, { ...env, CNI_COMMAND: "DEL" }, cfg);
        if (del.code !== 0) throw new Error(`${who} DEL failed: ${del.out}`);
        (who === "e" ? times.eAdd : times.bAdd).push(add.ms);
        (who === "e" ? times.eDel : times.bDel).push(del.ms);
      }
      sh("ip", "netns", "del", pod);
      times.eVer.push((await exec(join(node.cniBinDir, "eniway"), { CNI_COMMAND: "VERSION" }, "{}")).ms);
      times.bVer.push((await exec(join(REF, "bridge"), { CNI_COMMAND: "VERSION" }, "{}")).ms);
    }
    // The daemon's share of an ADD, from its own histograms.
    const text = await (await fetch(`${node.http}/metrics`)).text();
    const phase = (p: string): number =>
      histogramQuantile(text, "eniway_cni_add_phase_duration_seconds", 0.5, { phase: p }) * 1000;
    const r = (x: number): number => Number(x.toFixed(1));
    const f: CniFigures = {
      n,
      eniway: {
        addP50: r(quantile(times.eAdd, 0.5)),
        addP90: r(quantile(times.eAdd, 0.9)),
        delP50: r(quantile(times.eDel, 0.5)),
        delP90: r(quantile(times.eDel, 0.9)),
        versionP50: r(quantile(times.eVer, 0.5)),
      },
      bridge: {
        addP50: r(quantile(times.bAdd, 0.5)),
        addP90: r(quantile(times.bAdd, 0.9)),
        delP50: r(quantile(times.bDel, 0.5)),
        delP90: r(quantile(times.bDel, 0.9)),
        versionP50: r(quantile(times.bVer, 0.5)),
      },
      ratio: { add: 0, del: 0, version: 0 },
      binaryMB: {
        eniway: r(statSync(join(node.cniBinDir, "eniway")).size / 1e6),
        bridge: r(statSync(join(REF, "bridge")).size / 1e6),
      },
      daemon: { allocateP50: r(phase("allocate")), kernelP50: r(phase("kernel")) },
      samples: {
        eniway: { add: times.eAdd, del: times.eDel },
        bridge: { add: times.bAdd, del: times.bDel },
      },
    };
    f.ratio = {
      add: Number((f.eniway.addP50 / f.bridge.addP50).toFixed(2)),
      del: Number((f.eniway.delP50 / f.bridge.delP50).toFixed(2)),
      version: Number((f.eniway.versionP50 / f.bridge.versionP50).toFixed(2)),
    };
    return f;
  } finally {
    try {
      sh("ip", "netns", "del", pod);
    } catch {}
    try {
      sh("ip", "link", "del", `${prefix}br`.slice(0, 15));
    } catch {}
    await sb.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
