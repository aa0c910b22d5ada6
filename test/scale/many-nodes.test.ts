// Scale: 8 sandbox nodes × 30 pods (240 pods) added in parallel through the
// real plugin (several ADDs at once per node, retried on TryAgainLater as a
// kubelet does), every pod reaching a pod on another node through the VPC,
// then all deleted in parallel. Afterwards no IP, ENI, rule, route, veth or
// namespace is left, and no node ever asked for more ENIs than its type has.

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkInvariants } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import { silentLogger } from "../../lib/log.js";
import { sleep } from "../../lib/time.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp } from "../../src/sandbox/sandbox.js";
import { settledProblems } from "../helpers/agreement.js";
import { cleanUp, sh, tryPing } from "../helpers/netns.js";
import { errors, readSimStats } from "../helpers/sim-stats.js";

const NODES = 8;
const PODS_PER_NODE = 30;
/** ADDs in flight at once on each node. */
const PARALLEL = 4;
const PREFIX = `ewsc${process.pid % 10000}`;
const LETTERS = "abcdefgh";

const ENI_QUANTITY = 4;
const world = parseWorld({
  regionId: "cn-hangzhou",
  credentials: [{ accessKeyId: "LTAI-scale", accessKeySecret: "scale-secret" }],
  vpc: { vpcId: "vpc-scale", cidr: "10.40.0.0/16" },
  vSwitches: [{ vSwitchId: "vsw-scale", zoneId: "cn-hangzhou-k", cidr: "10.40.0.0/22" }],
  securityGroups: ["sg-scale"],
  // Three secondary ENIs of 15 addresses: room for 30 pods and the pool's headroom.
  instanceTypes: [
    { instanceTypeId: "ecs.g7.2xlarge", eniQuantity: ENI_QUANTITY, eniPrivateIpAddressQuantity: 15 },
  ],
  instances: [...LETTERS].slice(0, NODES).map((l) => ({
    instanceId: `i-scale-${l}`,
    instanceType: "ecs.g7.2xlarge",
    zoneId: "cn-hangzhou-k",
    vSwitchId: "vsw-scale",
    netns: `${PREFIX}-node-${l}`,
  })),
  latencyMs: { "*": [5, 20], AttachNetworkInterface: 300, DetachNetworkInterface: 300 },
  datapath: { vpcNetns: `${PREFIX}-vpc` },
});

interface Pod {
  id: string;
  ns: string;
  node: SandboxNode;
  ip: string;
}

describe(`${NODES} nodes × ${PODS_PER_NODE} pods in parallel`, () => {
  let dir: string;
  let sb: Sandbox;
  const namespaces = new Set<string>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-scale-"));
    sb = await sandboxUp({
      dir: join(dir, "sb"),
      nodes: NODES,
      world,
      sets: ["pool.cooldownSeconds=0.2", "pool.idleReclaimSeconds=0.5", "pool.resyncSeconds=5"],
      log: silentLogger,
    });
  }, 300_000);

  afterAll(async () => {
    expect(await cleanUp({ sandbox: sb, namespaces, dir, prefix: PREFIX })).toEqual([]);
  });

  const env = (command: string, pod: { id: string; ns: string }) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.id,
    CNI_NETNS: `/var/run/netns/${pod.ns}`,
    CNI_IFNAME: "eth0",
  });

  /** Runs `work` over `items`, `n` at a time. */
  const inParallel = async <T>(items: T[], n: number, work: (item: T) => Promise<void>): Promise<void> => {
    const queue = [...items];
    await Promise.all(
      Array.from({ length: n }, async () => {
        for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
      }),
    );
  };

  it("serves every pod, each reaches another node, and deleting them all leaves nothing", async () => {
    const nodes = sb.file.nodes;
    const confs = new Map(await Promise.all(nodes.map(async (n) => [n, await netconf(n)] as const)));
    const pods: Pod[] = [];
    let retries = 0;
    const started = Date.now();
    await Promise.all(
      nodes.map((node, n) =>
        inParallel(
          Array.from({ length: PODS_PER_NODE }, (_, i) => i),
          PARALLEL,
          async (i) => {
            const pod = { id: `scale-${n}-${i}`, ns: `${PREFIX}-${n}-${i}`, node, ip: "" };
            sh("ip", "netns", "add", pod.ns);
            namespaces.add(pod.ns);
            for (let attempt = 0; ; attempt++) {
              const r = await runPlugin(node, env("ADD", pod), confs.get(node));
              if (r.code === 0) {
                pod.ip = (JSON.parse(r.out) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!;
                break;
              }
              // A kubelet retries a sandbox whose network setup said "try again later".
              expect((JSON.parse(r.out) as { code: number }).code, r.out).toBe(11);
              expect(attempt, `${pod.id} still refused: ${r.out}`).toBeLessThan(30);
              retries++;
              const del = await runPlugin(node, env("DEL", pod), confs.get(node));
              expect(del.code, del.out).toBe(0);
              await sleep(1000);
            }
            pods.push(pod);
          },
        ),
      ),
    );
    const addMs = Date.now() - started;
    expect(pods.length).toBe(NODES * PODS_PER_NODE);
    expect(new Set(pods.map((p) => p.ip)).size, "an IP on two pods").toBe(pods.length);

    // Each pod reaches the pod with its index on the next node.
    const byNode = nodes.map((n) => pods.filter((p) => p.node === n));
    const unreachable: string[] = [];
    await inParallel(pods, 8, async (p) => {
      const n = nodes.indexOf(p.node);
      const peer = byNode[(n + 1) % NODES]![byNode[n]!.indexOf(p)]!;
      if (!tryPing(p.ns, peer.ip, 2)) unreachable.push(`${p.id} ${p.ip} → ${peer.id} ${peer.ip}`);
    });
    expect(unreachable).toEqual([]);

    // No node asked for more ENIs than its instance type has.
    const stats = await readSimStats(sb.file.sim.endpoint);
    expect(errors(stats, "CreateNetworkInterface", "EniPerInstanceLimitExceeded")).toBe(0);
    expect(errors(stats, "AttachNetworkInterface", "EniPerInstanceLimitExceeded")).toBe(0);
    for (const n of nodes) {
      const enis = [...sb.sim.state.enis.values()].filter((e) => e.instanceId === n.instanceId);
      expect(enis.length, n.instanceId).toBeLessThanOrEqual(ENI_QUANTITY);
    }

    const delStarted = Date.now();
    await Promise.all(
      nodes.map((node) =>
        inParallel(
          pods.filter((p) => p.node === node),
          PARALLEL,
          async (p) => {
            for (let time = 0; time < 2; time++) {
              const r = await runPlugin(node, env("DEL", p), confs.get(node));
              expect(r.code, r.out).toBe(0);
            }
            sh("ip", "netns", "del", p.ns);
            namespaces.delete(p.ns);
          },
        ),
      ),
    );
    const delMs = Date.now() - delStarted;

    const problems = await settledProblems({ sim: sb.sim, clusterId: "sandbox", nodes });
    expect(problems).toEqual([]);
    expect(checkInvariants(sb.sim.state)).toEqual([]);
    console.log(
      `scale: ${pods.length} pods on ${NODES} nodes added in ${addMs} ms (${retries} TryAgainLater retries), deleted in ${delMs} ms`,
    );
  }, 600_000);
});
