// eniway on a real cluster (`sandbox up --cluster`, 2 nodes), against the
// reference bridge + host-local on the same nodes in the same run: the time
// from `helm install` to every DaemonSet pod and node Ready, from a
// Deployment's apply to all its pods Running (eniway vs bridge), the
// daemon's resident memory with 60 pods on its node, and the sandbox's stop
// (SIGTERM's clean-up) with those 60 pods still running.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseWorld } from "../../cloud/simulator/world.js";
import { ipBatch } from "../../lib/ip.js";
import { createLogger } from "../../lib/log.js";
import { type ClusterSandbox, readyNodeCount, sandboxClusterUp } from "../../src/sandbox/clusterup.js";
import { type Kube, kube, requireClusterTestTools, webDeployment } from "../cluster/helpers.js";
import { samples } from "../helpers/prom.js";

export interface ClusterFigures {
  installToReadyMs: number;
  deploymentToRunningMs: { eniway: number; bridge: number; pods: number; ratio: number };
  daemonRssMiB: { pods: number; rss: number };
  /** The sandbox's stop with the RSS pods still running, until nothing of it is left. */
  stopMs: { pods: number; ms: number };
}

async function timeDeployment(
  k: Kube,
  name: string,
  pods: number,
  image: string,
  nodeSelector?: Record<string, string>,
): Promise<number> {
  const t0 = Date.now();
  await k.apply(
    name,
    webDeployment({ name, replicas: pods, image, ...(nodeSelector ? { nodeSelector } : {}) }),
  );
  await k.waitRunning(`app=${name}`, pods, 300_000);
  return Date.now() - t0;
}

async function remove(k: Kube, name: string): Promise<void> {
  await k.kubectl(["delete", "deployment", name, "--wait=false"]);
  await k.waitGone(`app=${name}`, 300_000);
}

export async function clusterBench(opts = { pods: 20, rssPods: 60 }): Promise<ClusterFigures> {
  requireClusterTestTools();
  const dir = await mkdtemp(join(tmpdir(), "eniway-cluster-bench-"));
  const world = parseWorld({
    regionId: "cn-hangzhou",
    credentials: [{ accessKeyId: "LTAI-bench", accessKeySecret: "bench-secret" }],
    vpc: { vpcId: "vpc-bench", cidr: "10.0.0.0/16" },
    vSwitches: [{ vSwitchId: "vsw-bench", zoneId: "cn-hangzhou-k", cidr: "10.0.4.0/22" }],
    securityGroups: ["sg-bench"],
    instanceTypes: [{ instanceTypeId: "ecs.g7.2xlarge", eniQuantity: 4, eniPrivateIpAddressQuantity: 20 }],
    instances: ["a", "b"].map((x) => ({
      instanceId: `i-bench-${x}`,
      instanceType: "ecs.g7.2xlarge",
      zoneId: "cn-hangzhou-k",
      vSwitchId: "vsw-bench",
      netns: `ewcb-node-${x}`,
    })),
    latencyMs: { "*": [5, 20], AttachNetworkInterface: 300, DetachNetworkInterface: 300 },
    datapath: { vpcNetns: "ewcb-vpc" },
  });
  let sb: ClusterSandbox | null = null;
  try {
    sb = await sandboxClusterUp({
      dir: join(dir, "sandbox"),
      nodes: 2,
      world,
      sets: ["pool.minIdle=4", "pool.maxIdle=10"],
      install: false,
      log: createLogger({ level: "warn", base: { component: "cluster-bench" } }),
    });
    const k = kube(sb, dir);
    const image = sb.file.image!;
    // The reference: bridge + host-local + portmap, the conflist a kubeadm tutorial writes.
    for (const [i, n] of sb.file.nodes.entries())
      await writeFile(
        join(n.cniConfFile, "..", "10-bridge.conflist"),
        JSON.stringify({
          cniVersion: "0.4.0",
          name: "bench-bridge",
          plugins: [
            {
              type: "bridge",
              bridge: "ewcbbr0",
              isGateway: true,
              ipMasq: true,
              ipam: {
                type: "host-local",
                ranges: [[{ subnet: `10.244.${i + 1}.0/24` }]],
                dataDir: join(dir, `ipam-${i}`),
              },
            },
            { type: "portmap", capabilities: { portMappings: true } },
          ],
        }),
      );
    await waitNodesReady(k, 2);
    const bridge = await timeDeployment(k, "bench-bridge", opts.pods, image);
    await remove(k, "bench-bridge");
    for (const n of sb.file.nodes) {
      await rm(join(n.cniConfFile, "..", "10-bridge.conflist"));
      await ipBatch(`/var/run/netns/${n.netns}`, ["link del ewcbbr0"], true);
    }
    const t0 = Date.now();
    await sb.release("install");
    const installToReadyMs = Date.now() - t0;
    const eniway = await timeDeployment(k, "bench-eniway", opts.pods, image);
    await remove(k, "bench-eniway");
    const nodeA = sb.file.nodes[0]!;
    await timeDeployment(k, "bench-rss", opts.rssPods, image, { "kubernetes.io/hostname": nodeA.nodeName! });
    const text = await (await fetch(`${nodeA.http}/metrics`)).text();
    const rss = samples(text, "process_resident_memory_bytes")[0]?.value ?? Number.NaN;
    const stopping = sb;
    sb = null;
    const t1 = Date.now();
    await stopping.stop();
    const stopMs = Date.now() - t1;
    return {
      installToReadyMs,
      deploymentToRunningMs: { eniway, bridge, pods: opts.pods, ratio: Number((eniway / bridge).toFixed(2)) },
      daemonRssMiB: { pods: opts.rssPods, rss: Number((rss / 1024 / 1024).toFixed(1)) },
      stopMs: { pods: opts.rssPods, ms: stopMs },
    };
  } finally {
    await sb?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitNodesReady(k: Kube, count: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if ((await readyNodeCount(k.core)) === count) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("nodes not Ready with the bridge conflist after 120 s");
}
