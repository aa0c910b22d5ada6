// A vSwitch that runs out of addresses: two nodes share a /28 (12 usable
// addresses). Node b holds pods; node a's ADDs then answer TryAgainLater
// (CNI code 11) with the cloud's reason, never a hang or a crash. When node
// b's pods go, its pool hands the addresses back to the vSwitch, node a's
// next resync sees them, and the ADDs a runtime retries succeed. The ENI
// quota is never exceeded: the cloud never answers EniPerInstanceLimitExceeded.

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
import { errorCodes, readSimStats } from "../helpers/sim-stats.js";

const PREFIX = `ewvs${process.pid % 10000}`;

const world = parseWorld({
  regionId: "cn-hangzhou",
  credentials: [{ accessKeyId: "LTAI-small", accessKeySecret: "small-secret" }],
  vpc: { vpcId: "vpc-small", cidr: "10.50.0.0/16" },
  vSwitches: [{ vSwitchId: "vsw-small", zoneId: "cn-hangzhou-k", cidr: "10.50.1.0/28" }],
  securityGroups: ["sg-small"],
  // Two secondary ENIs of 10 addresses each: more than the vSwitch has.
  instanceTypes: [{ instanceTypeId: "ecs.small", eniQuantity: 3, eniPrivateIpAddressQuantity: 10 }],
  instances: ["a", "b"].map((l) => ({
    instanceId: `i-small-${l}`,
    instanceType: "ecs.small",
    zoneId: "cn-hangzhou-k",
    vSwitchId: "vsw-small",
    netns: `${PREFIX}-node-${l}`,
  })),
  latencyMs: { "*": [5, 20], AttachNetworkInterface: 200, DetachNetworkInterface: 200 },
  datapath: { vpcNetns: `${PREFIX}-vpc` },
});

interface Pod {
  id: string;
  ns: string;
  ip: string;
  node: SandboxNode;
}

describe("a /28 vSwitch shared by two nodes runs out of addresses and recovers", () => {
  let dir: string;
  let sb: Sandbox;
  let a: SandboxNode;
  let b: SandboxNode;
  const namespaces = new Set<string>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-vsw-"));
    sb = await sandboxUp({
      dir: join(dir, "sb"),
      nodes: 2,
      world,
      sets: [
        "pool.minIdle=0",
        "pool.maxIdle=0",
        "pool.cooldownSeconds=0.2",
        "pool.idleReclaimSeconds=0.2",
        "pool.resyncSeconds=2",
        "pool.allocateTimeoutSeconds=2",
      ],
      log: silentLogger,
    });
    [a, b] = sb.file.nodes as [SandboxNode, SandboxNode];
  }, 120_000);

  afterAll(async () => {
    expect(await cleanUp({ sandbox: sb, namespaces, dir, prefix: PREFIX })).toEqual([]);
  });

  const env = (command: string, id: string, ns: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: ns ? `/var/run/netns/${ns}` : "",
    CNI_IFNAME: "eth0",
  });

  /** One ADD as a runtime makes it; a failed one is cleaned up with DEL and its namespace goes. */
  const add = async (node: SandboxNode, id: string): Promise<Pod | { code: number; msg: string }> => {
    const ns = `${PREFIX}-${id}`;
    sh("ip", "netns", "add", ns);
    namespaces.add(ns);
    const r = await runPlugin(node, env("ADD", id, ns), await netconf(node));
    if (r.code === 0) {
      const ip = (JSON.parse(r.out) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!;
      return { id, ns, ip, node };
    }
    const err = JSON.parse(r.out) as { code: number; msg: string };
    const del = await runPlugin(node, env("DEL", id, ns), await netconf(node));
    expect(del.code, del.out).toBe(0);
    sh("ip", "netns", "del", ns);
    namespaces.delete(ns);
    return err;
  };

  const remove = async (pod: Pod): Promise<void> => {
    const del = await runPlugin(pod.node, env("DEL", pod.id, pod.ns), await netconf(pod.node));
    expect(del.code, del.out).toBe(0);
    sh("ip", "netns", "del", pod.ns);
    namespaces.delete(pod.ns);
  };

  it("answers TryAgainLater while the vSwitch is full, then serves once addresses return", async () => {
    // Node b takes what it can: the vSwitch has 12 usable addresses, 2 are the nodes' own.
    const onB: Pod[] = [];
    for (let i = 0; onB.length < 7 && i < 20; i++) {
      const r = await add(b, `b${i}`);
      if ("ip" in r) onB.push(r);
    }
    expect(onB.length).toBe(7);

    // Node a: the few addresses left, then TryAgainLater with the cloud's reason.
    const onA: Pod[] = [];
    const refused: { code: number; msg: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await add(a, `a${i}`);
      if ("ip" in r) onA.push(r);
      else refused.push(r);
    }
    expect(refused.length, `node a got ${onA.length} pods`).toBeGreaterThan(0);
    for (const e of refused) {
      expect(e.code, e.msg).toBe(11);
      expect(e.msg).toMatch(/vsw-small.*no free addresses/);
    }
    expect(errorCodes(await readSimStats(sb.file.sim.endpoint))).toContain("InvalidVSwitchId.IpNotEnough");

    // Node b's pods go; its pool (maxIdle 0) gives the addresses back to the vSwitch.
    for (const p of onB.splice(0, 5)) await remove(p);

    // The runtime retries node a's pods until they run.
    let attempts = 0;
    const deadline = Date.now() + 60_000;
    while (onA.length < 6) {
      expect(Date.now(), `node a has ${onA.length} of 6 pods after 60 s`).toBeLessThan(deadline);
      const r = await add(a, `a${onA.length + refused.length + attempts}`);
      attempts++;
      if ("ip" in r) onA.push(r);
      else {
        expect(r.code, r.msg).toBe(11);
        await sleep(500);
      }
    }
    // Node a's pods reach node b's through the VPC.
    for (const p of onA) expect(tryPing(p.ns, onB[0]!.ip), `${p.ip} → ${onB[0]!.ip}`).toBe(true);
    expect(new Set([...onA, ...onB].map((p) => p.ip)).size).toBe(onA.length + onB.length);

    // The ENI quota was respected throughout, and everything goes cleanly.
    const codes = errorCodes(await readSimStats(sb.file.sim.endpoint));
    expect(codes).not.toContain("EniPerInstanceLimitExceeded");
    for (const p of [...onA, ...onB]) await remove(p);
    const problems = await settledProblems({ sim: sb.sim, clusterId: "sandbox", nodes: [a, b] });
    expect(problems).toEqual([]);
    expect(checkInvariants(sb.sim.state)).toEqual([]);
    console.log(
      `full vSwitch: ${refused.length} ADDs refused with code 11 while full; node a served after ${attempts} retries`,
    );
  }, 180_000);
});
