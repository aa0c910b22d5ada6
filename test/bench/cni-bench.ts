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
  /**
   * Dual-stack pods (an IPv4 and an IPv6 each) against bridge + host-local
   * with an IPv4 and an IPv6 range, measured in a second sandbox; `addVsIpv4`
   * is eniway's dual-stack ADD over its IPv4 ADD.
   */
  dual?: {
    n: number;
    eniway: { addP50: number; delP50: number };
    bridge: { addP50: number; delP50: number };
    ratio: { add: number; del: number; addVsIpv4: number };
  };
  /** Every ADD and DEL, in ms, in the order they ran. */
  samples: {
    eniway: { add: number[]; del: number[] };
    bridge: { add: number[]; del: number[] };
  };
}

/** What one pass measured, in ms: eniway's and bridge's ADDs, DELs and VERSIONs. */
interface Times {
  eAdd: number[];
  eDel: number[];
  bAdd: number[];
  bDel: number[];
  eVer: number[];
  bVer: number[];
}

/** A sandbox node and `n` alternating ADD/DEL pairs of eniway and bridge + host-local on it. */
async function measure(
  n: number,
  dual: boolean,
): Promise<{ times: Times; metrics: string; binaryMB: CniFigures["binaryMB"] }> {
  const prefix = `ewb${dual ? "d" : ""}${process.pid % 100000}`;
  const dir = await mkdtemp(join(tmpdir(), "eniway-cnibench-"));
  const sb = await sandboxUp({
    dir,
    nodes: 1,
    world: sandboxWorld(1, prefix, { ipv6: dual }),
    sets: [
      "pool.minIdle=6",
      "pool.maxIdle=10",
      "pool.cooldownSeconds=0",
      "log.level=info",
      ...(dual ? ["ipStack=dual"] : []),
    ],
    log: silentLogger,
  });
  const node = sb.file.nodes[0] as SandboxNode;
  const conf = JSON.parse(await readFile(node.cniConfFile, "utf8")) as { plugins: object[] };
  const eniwayConf = JSON.stringify({ cniVersion: "1.0.0", name: "eniway", ...conf.plugins[0] });
  // The reference in the same stack: host-local gives one address per range.
  const ranges = [[{ subnet: "10.250.0.0/16" }], ...(dual ? [[{ subnet: "fd00:250::/64" }]] : [])];
  const bridgeConf = JSON.stringify({
    cniVersion: "1.0.0",
    name: "bench-bridge",
    type: "bridge",
    bridge: `${prefix}br`.slice(0, 15),
    isGateway: true,
    ipam: { type: "host-local", ranges, dataDir: join(dir, "ipam") },
  });
  const pod = `${prefix}-pod`;
  const times: Times = { eAdd: [], eDel: [], bAdd: [], bDel: [], eVer: [], bVer: [] };
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
        if (dual && (JSON.parse(add.out) as { ips: unknown[] }).ips.length !== 2)
          throw new Error(`${who} ADD gave no two addresses: ${add.out}`);
        const del = await exec(bin, { ...env, CNI_COMMAND: "DEL" }, cfg);
        if (del.code !== 0) throw new Error(`${who} DEL failed: ${del.out}`);
        (who === "e" ? times.eAdd : times.bAdd).push(add.ms);
        (who === "e" ? times.eDel : times.bDel).push(del.ms);
      }
      sh("ip", "netns", "del", pod);
      times.eVer.push((await exec(join(node.cniBinDir, "eniway"), { CNI_COMMAND: "VERSION" }, "{}")).ms);
      times.bVer.push((await exec(join(REF, "bridge"), { CNI_COMMAND: "VERSION" }, "{}")).ms);
    }
    const binaryMB = {
      eniway: Number((statSync(join(node.cniBinDir, "eniway")).size / 1e6).toFixed(1)),
      bridge: Number((statSync(join(REF, "bridge")).size / 1e6).toFixed(1)),
    };
    return { times, metrics: await (await fetch(`${node.http}/metrics`)).text(), binaryMB };
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

const r1 = (x: number): number => Number(x.toFixed(1));
const ratioOf = (a: number, b: number): number => Number((a / b).toFixed(2));

/** IPv4 pods (`n` pairs), then dual-stack pods (`nDual` pairs; 0: none) against a dual-stack bridge. */
export async function cniBench(n = 40, nDual = 20): Promise<CniFigures> {
  for (const p of ["bridge", "host-local"])
    if (!existsSync(join(REF, p)))
      throw new Error(`${REF}/${p} is missing: apt-get install containernetworking-plugins`);
  const { times, metrics, binaryMB } = await measure(n, false);
  // The daemon's share of an ADD, from its own histograms.
  const phase = (p: string): number =>
    histogramQuantile(metrics, "eniway_cni_add_phase_duration_seconds", 0.5, { phase: p }) * 1000;
  const p50 = (xs: number[]): number => r1(quantile(xs, 0.5));
  const p90 = (xs: number[]): number => r1(quantile(xs, 0.9));
  const f: CniFigures = {
    n,
    eniway: {
      addP50: p50(times.eAdd),
      addP90: p90(times.eAdd),
      delP50: p50(times.eDel),
      delP90: p90(times.eDel),
      versionP50: p50(times.eVer),
    },
    bridge: {
      addP50: p50(times.bAdd),
      addP90: p90(times.bAdd),
      delP50: p50(times.bDel),
      delP90: p90(times.bDel),
      versionP50: p50(times.bVer),
    },
    ratio: { add: 0, del: 0, version: 0 },
    binaryMB,
    daemon: { allocateP50: r1(phase("allocate")), kernelP50: r1(phase("kernel")) },
    samples: {
      eniway: { add: times.eAdd, del: times.eDel },
      bridge: { add: times.bAdd, del: times.bDel },
    },
  };
  f.ratio = {
    add: ratioOf(f.eniway.addP50, f.bridge.addP50),
    del: ratioOf(f.eniway.delP50, f.bridge.delP50),
    version: ratioOf(f.eniway.versionP50, f.bridge.versionP50),
  };
  if (nDual > 0) {
    const d = (await measure(nDual, true)).times;
    const dual = {
      n: nDual,
      eniway: { addP50: p50(d.eAdd), delP50: p50(d.eDel) },
      bridge: { addP50: p50(d.bAdd), delP50: p50(d.bDel) },
      ratio: { add: 0, del: 0, addVsIpv4: 0 },
    };
    dual.ratio = {
      add: ratioOf(dual.eniway.addP50, dual.bridge.addP50),
      del: ratioOf(dual.eniway.delP50, dual.bridge.delP50),
      addVsIpv4: ratioOf(dual.eniway.addP50, f.eniway.addP50),
    };
    f.dual = dual;
  }
  return f;
}
