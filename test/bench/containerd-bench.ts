// The end-to-end figure users feel: containerd's CRI RunPodSandbox (and
// Stop/Remove) with eniway against the reference bridge + host-local, in the
// same run. Two private containerds run side by side, each with one conflist:
// eniway's points at a one-node sandbox, bridge's runs in a namespace of its
// own. Pods alternate between them so drift in the machine hits both alike.

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../lib/log.js";
import { sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { quantile } from "../helpers/stats.js";
import {
  CNI_PLUGINS,
  type Containerd,
  importPauseImage,
  requireTools,
  runPod,
  sh,
  startContainerd,
  stopContainerd,
} from "../runtimes/containerd.js";
import { type CriClient, criClient } from "../runtimes/cri.js";

export interface ContainerdFigures {
  n: number;
  eniway: { runP50: number; runP90: number; stopP50: number; removeP50: number };
  bridge: { runP50: number; runP90: number; stopP50: number; removeP50: number };
  ratio: { run: number; stop: number; remove: number };
}

const ms = (xs: number[], q: number): number => +quantile(xs, q).toFixed(1);

interface Runtime {
  ctrd: Containerd;
  cri: CriClient;
  sandboxes: Set<string>;
  netnsPaths: Set<string>;
  times: { run: number[]; stop: number[]; remove: number[] };
}

async function startRuntime(
  dir: string,
  prefix: string,
  conflist: object,
  plugins: Record<string, string>,
  netns?: string,
): Promise<Runtime> {
  const bin = join(dir, "cni-bin");
  const conf = join(dir, "cni-conf");
  await mkdir(bin, { recursive: true });
  await mkdir(conf, { recursive: true });
  for (const [name, target] of Object.entries(plugins)) await symlink(target, join(bin, name));
  await writeFile(join(conf, "10-bench.conflist"), JSON.stringify(conflist));
  const ctrd = await startContainerd(dir, bin, conf, netns);
  let cri: CriClient | undefined;
  try {
    cri = criClient(ctrd.socket);
    await importPauseImage(ctrd);
  } catch (e) {
    await stopContainerd({ ctrd, cri, sandboxes: [], netnsPaths: [], cgroupPrefix: prefix });
    throw e;
  }
  const rt: Runtime = {
    ctrd,
    cri,
    sandboxes: new Set(),
    netnsPaths: new Set(),
    times: { run: [], stop: [], remove: [] },
  };
  return rt;
}

async function cycle(rt: Runtime, name: string, prefix: string, record: boolean): Promise<void> {
  let t = performance.now();
  const pod = await runPod(rt.cri, rt.ctrd, { name, cgroupPrefix: prefix });
  const run = performance.now() - t;
  rt.sandboxes.add(pod.id);
  if (pod.netnsPath) rt.netnsPaths.add(pod.netnsPath);
  if (!pod.ip) throw new Error(`${name}: no IP in the sandbox status`);
  t = performance.now();
  await rt.cri.stopPodSandbox(pod.id);
  const stop = performance.now() - t;
  t = performance.now();
  await rt.cri.removePodSandbox(pod.id);
  const remove = performance.now() - t;
  rt.sandboxes.delete(pod.id);
  if (!record) return;
  rt.times.run.push(run);
  rt.times.stop.push(stop);
  rt.times.remove.push(remove);
}

export async function containerdBench(n = 20): Promise<ContainerdFigures> {
  requireTools();
  const prefix = `ewcb${randomBytes(2).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "eniway-ctrd-bench-"));
  const bridgeNs = `${prefix}-br`;
  const sb = await sandboxUp({
    dir: join(dir, "sb"),
    nodes: 1,
    world: sandboxWorld(1, prefix),
    sets: [],
    log: silentLogger,
  });
  const runtimes: Runtime[] = [];
  try {
    const node = sb.file.nodes[0]!;
    const eniway = await startRuntime(
      join(dir, "eniway"),
      prefix,
      {
        cniVersion: "1.0.0",
        name: "eniway",
        plugins: [{ type: "eniway", socket: node.socket }],
      },
      { eniway: join(node.cniBinDir, "eniway"), loopback: join(CNI_PLUGINS, "loopback") },
    );
    runtimes.push(eniway);
    sh("ip", "netns", "add", bridgeNs);
    const bridge = await startRuntime(
      join(dir, "bridge"),
      prefix,
      {
        cniVersion: "1.0.0",
        name: "bridge",
        plugins: [
          {
            type: "bridge",
            bridge: `${prefix}br0`,
            isGateway: true,
            ipam: { type: "host-local", ranges: [[{ subnet: "10.99.0.0/24" }]], dataDir: join(dir, "ipam") },
          },
        ],
      },
      Object.fromEntries(["bridge", "host-local", "loopback"].map((p) => [p, join(CNI_PLUGINS, p)])),
      bridgeNs,
    );
    runtimes.push(bridge);
    for (let i = 0; i < n + 3; i++) {
      // The first three of each warm caches (images, binaries, the pool) and are not counted.
      await cycle(eniway, `e${i}`, prefix, i >= 3);
      await cycle(bridge, `b${i}`, prefix, i >= 3);
    }
    const figures = (rt: Runtime) => ({
      runP50: ms(rt.times.run, 0.5),
      runP90: ms(rt.times.run, 0.9),
      stopP50: ms(rt.times.stop, 0.5),
      removeP50: ms(rt.times.remove, 0.5),
    });
    const e = figures(eniway);
    const b = figures(bridge);
    const r = (x: number, y: number): number => +(x / y).toFixed(2);
    return {
      n,
      eniway: e,
      bridge: b,
      ratio: {
        run: r(e.runP50, b.runP50),
        stop: r(e.stopP50, b.stopP50),
        remove: r(e.removeP50, b.removeP50),
      },
    };
  } finally {
    for (const rt of runtimes) {
      const errors = await stopContainerd({ ...rt, cgroupPrefix: prefix });
      if (errors.length) console.error(`containerd bench clean-up: ${errors.join("; ")}`);
    }
    try {
      sh("ip", "netns", "del", bridgeNs);
    } catch {}
    await sb.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
