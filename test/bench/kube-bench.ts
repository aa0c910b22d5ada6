// The Kubernetes side's load and latency against a real kube-apiserver: API
// requests per minute at steady state for a node with 100 pods (watch, not
// polling), and the time from a pod's deletion (no DEL) to its IP's release.

import { parseWorld, type World } from "../../cloud/simulator/world.js";
import { type KubeSandbox, kubeSandbox, until } from "../kubernetes/helpers.js";

export interface KubeFigures {
  pods: number;
  windowSeconds: number;
  requestsPerMinute: number;
  requestsInWindow: Record<string, number>;
  releaseGraceSeconds: number;
  checkSeconds: number;
  deletionToReleaseMs: { min: number; max: number; n: number };
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.keys(b)
      .map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );

/** One big node (8 ENIs × 20 IPs) on a simulated VPC, for the benches against a real API server. */
export function benchWorld(prefix: string): World {
  return parseWorld({
    regionId: "cn-hangzhou",
    credentials: [{ accessKeyId: "LTAI-bench", accessKeySecret: "bench-secret" }],
    vpc: { vpcId: "vpc-bench", cidr: "10.0.0.0/16" },
    vSwitches: [{ vSwitchId: "vsw-bench", zoneId: "cn-hangzhou-k", cidr: "10.0.4.0/22" }],
    securityGroups: ["sg-bench"],
    instanceTypes: [{ instanceTypeId: "ecs.g7.4xlarge", eniQuantity: 8, eniPrivateIpAddressQuantity: 20 }],
    instances: [
      {
        instanceId: "i-bench-a",
        instanceType: "ecs.g7.4xlarge",
        zoneId: "cn-hangzhou-k",
        vSwitchId: "vsw-bench",
        netns: `${prefix}-node-a`,
      },
    ],
    latencyMs: { "*": [5, 20], AttachNetworkInterface: 300, DetachNetworkInterface: 300 },
    datapath: { vpcNetns: `${prefix}-vpc` },
  });
}

export async function kubeBench(
  opts = { pods: 100, windowSeconds: 60, graceSeconds: 10, checkSeconds: 20 },
): Promise<KubeFigures> {
  const prefix = `ewkb${process.pid % 10000}`;
  const world = benchWorld(prefix);
  let k: KubeSandbox | null = null;
  try {
    k = await kubeSandbox({
      prefix,
      world,
      sets: [
        "pool.minIdle=20",
        "pool.maxIdle=40",
        `kubernetes.releaseGraceSeconds=${opts.graceSeconds}`,
        `kubernetes.checkSeconds=${opts.checkSeconds}`,
      ],
    });
    const kk = k;
    const pods: { name: string; ip: string }[] = [];
    for (let i = 0; i < opts.pods; i++) {
      const name = `bench-${i}`;
      const uid = await kk.createPod(name);
      const r = await kk.add({ name, uid });
      if (r.code !== 0) throw new Error(`ADD of ${name} failed: ${r.out}`);
      pods.push({ name, ip: r.ip });
    }
    await new Promise((r) => setTimeout(r, 5000)); // the Events of the ADDs go out
    const before = (await kk.stats()).requests;
    await new Promise((r) => setTimeout(r, opts.windowSeconds * 1000));
    const after = (await kk.stats()).requests;
    const inWindow = diff(before, after);

    // Deletion → release: 10 pods deleted without DEL, older than the grace by now.
    const gone = pods.slice(0, 10);
    const t0 = Date.now();
    await Promise.all(gone.map((p) => kk.deletePod(p.name)));
    const released = new Map<string, number>();
    await until(
      "the releases",
      async () => {
        const held = new Set((await kk.allocations()).map((a) => a.ip));
        for (const p of gone) if (!held.has(p.ip) && !released.has(p.ip)) released.set(p.ip, Date.now() - t0);
        return released.size === gone.length;
      },
      (opts.graceSeconds + 2 * opts.checkSeconds + 30) * 1000,
    );
    const ms = [...released.values()];
    return {
      pods: opts.pods,
      windowSeconds: opts.windowSeconds,
      requestsPerMinute: +((sum(inWindow) * 60) / opts.windowSeconds).toFixed(2),
      requestsInWindow: inWindow,
      releaseGraceSeconds: opts.graceSeconds,
      checkSeconds: opts.checkSeconds,
      deletionToReleaseMs: { min: Math.min(...ms), max: Math.max(...ms), n: ms.length },
    };
  } finally {
    await k?.close();
  }
}
