// Restart and resync against the real simulator: the store, the metadata
// service and DescribeNetworkInterfaces are put back in agreement. IPs the
// store does not know are adopted, IPs the cloud lost are dropped (loudly if
// a pod held one), leaked ENIs are deleted, and intents are resumed with
// their own ClientToken.

import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CLUSTER,
  calls,
  harness,
  NODE,
  OTHER_NODE,
  OWN_TAGS,
  ourEnis,
  req,
  SG,
  type Simulator,
  simStats,
  storeOnDisk,
  type TestNode,
  VSW,
  waitFor,
} from "./helpers.js";

const h = harness();

const settled = (n: TestNode, idle: number) => () => {
  const s = n.pool.summary();
  return s.idle >= idle && s.pending === 0 && s.intents === 0;
};

/** A node with one ready ENI holding 4 IPs, two of them allocated; then stopped. */
async function firstLife(sim: Simulator): Promise<{ node: TestNode; eniId: string; held: string[] }> {
  const node = await h.node(sim, { targets: { minIdle: 4, maxIdle: 4 } });
  await waitFor("a warm pool", settled(node, 4));
  node.targets.minIdle = 0; // no refill: one ENI with 4 IPs, 2 of them held
  const a = await node.pool.allocate(req(1));
  const b = await node.pool.allocate(req(2));
  await node.stop();
  expect(sim.state.enis.get(Object.keys(node.store.data.enis)[0]!)?.ips).toHaveLength(4);
  const enis = Object.keys(node.store.data.enis);
  expect(enis).toHaveLength(1);
  return { node, eniId: enis[0]!, held: [a.ip, b.ip] };
}

/** The second life: same state dir, nothing planned before the start-up reconcile. */
const restart = (sim: Simulator, first: TestNode, extra: Parameters<typeof h.node>[1] = {}) =>
  h.node(sim, { stateDir: first.stateDir, targets: { minIdle: 0, maxIdle: 100 }, ...extra });

describe("reconcile against the simulator", () => {
  it("a restart keeps allocations and idle IPs as they were", async () => {
    const sim = await h.sim();
    const { node: first, eniId, held } = await firstLife(sim);
    const before = structuredClone(first.store.data);
    const second = await restart(sim, first);
    expect(second.startup).toMatchObject({
      resumedIntents: 0,
      adoptedEnis: [],
      adoptedIps: [],
      droppedEnis: [],
      droppedIps: [],
      brokenAllocations: [],
      leakedEnisDeleted: [],
    });
    expect(second.store.data.enis).toEqual(before.enis);
    expect(second.store.data.ips).toEqual(before.ips);
    expect(
      second.pool
        .allocations()
        .map((a) => a.ip)
        .sort(),
    ).toEqual([...held].sort());
    // The same key gets the same IP back after the restart.
    expect((await second.pool.allocate(req(1))).ip).toBe(held[0]);
    expect(sim.state.enis.get(eniId)?.status).toBe("InUse");
  });

  it("adopts IPs assigned to our ENI behind the store's back as idle", async () => {
    const sim = await h.sim();
    const { node: first, eniId } = await firstLife(sim);
    const outsider = h.client(sim);
    const extra = await outsider.assignPrivateIpAddresses({ eniId, count: 2 });
    expect(extra).toHaveLength(2);
    const second = await restart(sim, first);
    expect(second.startup!.adoptedIps.sort()).toEqual([...extra].sort());
    expect(second.startup!.adoptedEnis).toEqual([]);
    for (const ip of extra) expect(second.store.data.ips[ip]).toMatchObject({ phase: "idle", eniId });
    // The store now mirrors the cloud exactly, and it is on disk.
    const cloudIps = [...sim.state.enis.get(eniId)!.ips].sort();
    expect(Object.keys(second.store.data.ips).sort()).toEqual(cloudIps);
    expect(Object.keys((await storeOnDisk(second.stateDir)).ips).sort()).toEqual(cloudIps);
    // Adopted IPs are handed out like any other.
    const got = new Set<string>();
    for (let i = 10; i < 16; i++) got.add((await second.pool.allocate(req(i))).ip);
    for (const ip of extra) expect(got.has(ip)).toBe(true);
  });

  it("drops an allocated IP the cloud no longer has on our ENI and reports the broken allocation", async () => {
    const sim = await h.sim();
    const { node: first, eniId, held } = await firstLife(sim);
    const outsider = h.client(sim);
    const lost = held[1]!;
    await outsider.unassignPrivateIpAddresses(eniId, [lost]);
    const second = await restart(sim, first);
    expect(second.startup!.droppedIps).toEqual([lost]);
    expect(second.startup!.brokenAllocations).toEqual([
      { ip: lost, containerId: "c2", ifname: "eth0", pod: "default/p2" },
    ]);
    expect(second.store.data.ips[lost]).toBeUndefined();
    expect((await storeOnDisk(second.stateDir)).ips[lost]).toBeUndefined();
    expect(second.pool.allocations().map((a) => a.ip)).toEqual([held[0]]);
    const err = second.logs.find((l) => l.level === "error" && /allocation lost/.test(l.msg));
    expect(err).toMatchObject({ ip: lost, containerId: "c2" });
  });

  it("drops an ENI that is gone from the cloud, with its allocations reported", async () => {
    const sim = await h.sim();
    const { node: first, eniId, held } = await firstLife(sim);
    const outsider = h.client(sim);
    await outsider.detachNetworkInterface(eniId, NODE);
    await waitFor("detach", () => sim.state.enis.get(eniId)?.status === "Available");
    await outsider.deleteNetworkInterface(eniId);
    const second = await restart(sim, first);
    expect(second.startup!.droppedEnis).toEqual([eniId]);
    expect(second.startup!.brokenAllocations.map((b) => b.ip).sort()).toEqual([...held].sort());
    expect(second.store.data.enis).toEqual({});
    expect(second.store.data.ips).toEqual({});
  });

  it("adopts our attached ENI when the store was lost", async () => {
    const sim = await h.sim();
    const { node: first, eniId } = await firstLife(sim);
    await rm(join(first.stateDir, "pool.json"));
    const second = await restart(sim, first);
    expect(second.startup!.adoptedEnis).toEqual([eniId]);
    const eni = sim.state.enis.get(eniId)!;
    expect(second.startup!.adoptedIps.sort()).toEqual([...eni.ips].sort());
    expect(second.store.data.enis[eniId]).toMatchObject({
      phase: "ready",
      mac: eni.mac,
      gateway: "10.0.1.253",
      cidr: "10.0.1.0/24",
    });
    expect(ourEnis(sim)).toHaveLength(1);
  });

  it("deletes leaked ENIs that carry our tags, after the grace period, and nothing else", async () => {
    const sim = await h.sim();
    const outsider = h.client(sim);
    const mk = (tags: Record<string, string>) =>
      outsider.createNetworkInterface({ vSwitchId: VSW, securityGroupIds: [SG], tags, secondaryIpCount: 1 });
    const leaked = await mk({ ...OWN_TAGS, "eniway.io/node": NODE });
    const foreign = await mk({ team: "other" });
    const otherCluster = await mk({ creator: "eniway", "eniway.io/cluster": `${CLUSTER}-2` });
    const noCluster = await mk({ creator: "eniway" });
    // Ours, but attached to another node: not a leak of this node.
    const elsewhere = await mk({ ...OWN_TAGS, "eniway.io/node": OTHER_NODE });
    await outsider.attachNetworkInterface(elsewhere.eniId, OTHER_NODE);
    await sim.settle();

    // Within the grace period, nothing is touched.
    const young = await h.node(sim, { targets: { minIdle: 0 }, leakGraceMs: 600_000 });
    expect(young.startup!.leakedEnisDeleted).toEqual([]);
    expect(sim.state.enis.has(leaked.eniId)).toBe(true);
    await young.stop();

    const node = await h.node(sim, { stateDir: young.stateDir, targets: { minIdle: 0 }, leakGraceMs: 0 });
    expect(node.startup!.leakedEnisDeleted).toEqual([leaked.eniId]);
    expect(sim.state.enis.has(leaked.eniId)).toBe(false);
    for (const e of [foreign, otherCluster, noCluster, elsewhere])
      expect(sim.state.enis.has(e.eniId), `${e.eniId} was deleted`).toBe(true);
    expect(sim.state.enis.get(elsewhere.eniId)?.instanceId).toBe(OTHER_NODE);
    expect(node.store.data.enis).toEqual({});
    // A periodic resync finds nothing more to do.
    const again = await node.resync();
    expect(again.leakedEnisDeleted).toEqual([]);
  });

  it("never deletes an ENI of its own that is still being created and attached", async () => {
    const sim = await h.sim({ latencyMs: { AttachNetworkInterface: 600 } });
    const node = await h.node(sim, { targets: { minIdle: 2 }, leakGraceMs: 0 });
    // Resync while the ENI is Available or Attaching, written in the store as attaching.
    await waitFor("an ENI in flight", () => ourEnis(sim).length === 1);
    const r = await node.resync();
    expect(r.leakedEnisDeleted).toEqual([]);
    await waitFor("the pool to fill", settled(node, 2), 5000);
    expect(ourEnis(sim)).toHaveLength(1);
    expect(node.store.data.enis[ourEnis(sim)[0]!.id]?.phase).toBe("ready");
  });

  it("resumes an assign intent with its own ClientToken: the IPs become idle, nothing is assigned twice", async () => {
    const sim = await h.sim();
    const { node: first, eniId } = await firstLife(sim);
    const outsider = h.client(sim);
    // A crash right after the cloud answered: the call happened, the store only has the intent.
    const clientToken = randomUUID();
    const assigned = await outsider.assignPrivateIpAddresses({ eniId, count: 2, clientToken });
    await first.store.update((d) => {
      d.intents["assign-crashed"] = {
        id: "assign-crashed",
        kind: "assign",
        clientToken,
        eniId,
        count: 2,
        at: Date.now(),
      };
    });
    const assignsBefore = calls(await simStats(sim), "AssignPrivateIpAddresses");
    const ipsBefore = [...sim.state.enis.get(eniId)!.ips];

    const second = await restart(sim, first);
    expect(second.startup!.resumedIntents).toBe(1);
    // The call was sent again, with the same token, and the cloud answered with the same IPs.
    expect(calls(await simStats(sim), "AssignPrivateIpAddresses")).toBe(assignsBefore + 1);
    expect(sim.state.enis.get(eniId)!.ips).toEqual(ipsBefore);
    for (const ip of assigned) expect(second.store.data.ips[ip]).toMatchObject({ phase: "idle", eniId });
    // Resume added them; adoption had nothing left to add.
    expect(second.startup!.adoptedIps).toEqual([]);
    expect(second.store.data.intents).toEqual({});
    expect((await storeOnDisk(second.stateDir)).intents).toEqual({});
    expect(Object.keys(second.store.data.ips).sort()).toEqual([...ipsBefore].sort());
    const infoLog = second.logs.find((l) => l.msg === "resuming intent");
    expect(infoLog).toMatchObject({ intent: "assign-crashed", kind: "assign" });
  });

  it("resumes a create intent whose ENI the cloud made: the same ENI is attached, no second one is created", async () => {
    const sim = await h.sim();
    const node0 = await h.node(sim, { targets: { minIdle: 0 } });
    await node0.stop();
    const outsider = h.client(sim);
    const clientToken = randomUUID();
    const tags = { ...OWN_TAGS, "eniway.io/node": NODE };
    // Same parameters as the executor sends, so the token matches.
    const made = await outsider.createNetworkInterface({
      vSwitchId: VSW,
      securityGroupIds: [SG],
      tags,
      secondaryIpCount: 2,
      clientToken,
      description: "created by eniway",
    });
    await node0.store.update((d) => {
      d.intents["create-crashed"] = {
        id: "create-crashed",
        kind: "create",
        clientToken,
        vSwitchId: VSW,
        ipCount: 3,
        at: Date.now(),
      };
    });
    const node = await h.node(sim, { stateDir: node0.stateDir, targets: { minIdle: 0 }, leakGraceMs: 0 });
    expect(node.startup!.resumedIntents).toBe(1);
    expect(node.startup!.leakedEnisDeleted).toEqual([]);
    expect(ourEnis(sim).map((e) => e.id)).toEqual([made.eniId]);
    expect(sim.state.enis.get(made.eniId)).toMatchObject({ status: "InUse", instanceId: NODE });
    expect(node.store.data.enis[made.eniId]?.phase).toBe("ready");
    expect(Object.keys(node.store.data.ips).sort()).toEqual([...made.privateIps].sort());
    expect(node.store.data.intents).toEqual({});
  });

  it("a periodic resync leaves alone what the pool is working on", async () => {
    const sim = await h.sim({ latencyMs: { AssignPrivateIpAddresses: 500, AttachNetworkInterface: 100 } });
    const node = await h.node(sim, { targets: { minIdle: 2, maxIdle: 2 }, staleIntentMs: 0 });
    await waitFor("a warm pool", settled(node, 2));
    node.targets.minIdle = 4;
    node.targets.maxIdle = 4;
    node.pool.kick();
    await waitFor("an assign in flight", () => node.pool.summary().intents === 1);
    const r = await node.resync();
    // The running assign is the pool's own: not resumed twice, not adopted behind its back.
    expect(r.resumedIntents).toBe(0);
    expect(r.adoptedIps).toEqual([]);
    await waitFor("the assign to land", settled(node, 4));
    expect(calls(await simStats(sim), "AssignPrivateIpAddresses")).toBe(1);
    const eniId = Object.keys(node.store.data.enis)[0]!;
    expect(Object.keys(node.store.data.ips).sort()).toEqual([...sim.state.enis.get(eniId)!.ips].sort());
  });
});
