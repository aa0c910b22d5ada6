// The pool with `ipStack: dual` against the real simulator, through the real
// pop-core client: every allocation carries an IPv6 address of its IPv4's
// ENI, IPv6 goes back with its IPv4, a resync pairs or gives back IPv6
// addresses the store does not know and unpairs what the cloud lost, and a
// node switched to dual stack keeps its pods' IPv4 as it is.

import { describe, expect, it } from "vitest";
import type { Allocation } from "../../pool/pool.js";
import {
  calls,
  harness,
  ourEnis,
  req,
  reservePrefixes,
  type Simulator,
  simStats,
  sleep,
  storeOnDisk,
  type TestNode,
  VSW,
  waitFor,
  worldJson,
} from "./helpers.js";

const h = harness();

/** The pool's world with IPv6: the VPC's /56 and vsw-a's /64. */
const IPV6_WORLD = {
  vpc: { vpcId: "vpc-pool", cidr: "10.0.0.0/16", ipv6Cidr: "fd00:20::/56" },
  vSwitches: (worldJson().vSwitches as Record<string, unknown>[]).map((v) =>
    v.vSwitchId === VSW ? { ...v, ipv6Cidr: "fd00:20:0:1::/64" } : v,
  ),
};

const settled = (n: TestNode) => () =>
  n.pool.summary().pending === 0 && n.pool.summary().intents === 0 && n.pool.summary().waiting === 0;

/** The cloud's IPv6 addresses of an ENI. */
const cloudIpv6 = (sim: Simulator, eniId: string): string[] => sim.state.enis.get(eniId)?.ipv6s ?? [];

/** Every IPv6 on our ENIs belongs to the IPv4 record of the same ENI that the store pairs it with, and none twice. */
function expectPairedAsCloud(sim: Simulator, n: TestNode): void {
  const paired = Object.values(n.store.data.ips).flatMap((r) => (r.ipv6 ? [[r.ipv6, r.eniId] as const] : []));
  expect(new Set(paired.map(([v6]) => v6)).size).toBe(paired.length);
  const cloud = ourEnis(sim).flatMap((e) => e.ipv6s.map((v6) => [v6, e.id] as const));
  expect(paired.sort()).toEqual(cloud.sort());
}

describe("the cloud client's IPv6 and reservation calls against the simulator", () => {
  it("assigns IPv6 addresses with a ClientToken (the same answer again), describes and unassigns them; an address already gone counts as done", async () => {
    const sim = await h.sim(IPV6_WORLD);
    const cloud = h.client(sim);
    const eni = await cloud.createNetworkInterface({
      vSwitchId: VSW,
      securityGroupIds: ["sg-sim"],
      tags: {},
      secondaryIpCount: 2,
    });
    const got = await cloud.assignIpv6Addresses({ eniId: eni.eniId, count: 3, clientToken: "tok-v6" });
    expect(got).toHaveLength(3);
    for (const v6 of got) expect(v6).toMatch(/^fd00:20:0:1:[0-9a-f:]+$/);
    expect(await cloud.assignIpv6Addresses({ eniId: eni.eniId, count: 3, clientToken: "tok-v6" })).toEqual(
      got,
    );
    const [described] = await cloud.describeNetworkInterfaces({ eniIds: [eni.eniId] });
    expect(described?.ipv6s.sort()).toEqual([...got].sort());
    await cloud.unassignIpv6Addresses(eni.eniId, [got[0]!]);
    await cloud.unassignIpv6Addresses(eni.eniId, [got[0]!, got[1]!]); // got[0] is gone already
    expect(sim.state.enis.get(eni.eniId)?.ipv6s).toEqual([got[2]]);
    await expect(cloud.unassignIpv6Addresses(eni.eniId, ["FD00::1"])).rejects.toThrow(/IPv6 address/);
    await expect(cloud.assignIpv6Addresses({ eniId: eni.eniId, count: 11 })).rejects.toThrow(/count/);
    await cloud.deleteNetworkInterface(eni.eniId).catch(() => {});
  });

  it("lists a vSwitch's reserved blocks with the prefixes each can still give", async () => {
    const sim = await h.sim(IPV6_WORLD);
    const cloud = h.client(sim);
    expect(await cloud.listVSwitchCidrReservations(VSW, "IPv4")).toEqual([]);
    await reservePrefixes(sim, ["10.0.1.64/26"]);
    const [block] = await cloud.listVSwitchCidrReservations(VSW, "IPv4");
    expect(block).toMatchObject({
      vSwitchId: VSW,
      cidr: "10.0.1.64/26",
      ipVersion: "IPv4",
      status: "Assigned",
      assignedCidrCount: 0,
      availableCidrCount: 4,
    });
    expect(await cloud.listVSwitchCidrReservations(VSW, "IPv6")).toEqual([]);
  });
});

describe("dual stack against the simulator", () => {
  it("every allocation gets an IPv6 of its IPv4's ENI; released and shrunk, each IPv6 goes back with its IPv4", async () => {
    const sim = await h.sim(IPV6_WORLD);
    const node = await h.node(sim, {
      targets: { ipStack: "dual", minIdle: 2, maxIdle: 4, cooldownMs: 0, idleReclaimMs: 0 },
    });
    await waitFor("the warm pool", () => settled(node)() && node.pool.summary().idle >= 2);
    const all: Allocation[] = await Promise.all(
      Array.from({ length: 10 }, (_, i) => node.pool.allocate(req(i))),
    );
    await waitFor("the pool to settle", settled(node));
    for (const a of all) {
      expect(a.ipv6, a.ip).toMatch(/^fd00:20:0:1:/);
      expect(cloudIpv6(sim, a.eniId)).toContain(a.ipv6);
      expect(a.gateway6).toMatch(/^fd00:20:0:1:/);
    }
    expect(new Set(all.map((a) => a.ipv6)).size).toBe(10);
    expectPairedAsCloud(sim, node);
    // The same in the store on disk, owners included.
    const doc = await storeOnDisk(node.stateDir);
    for (const a of all) expect(doc.ips[a.ip]).toMatchObject({ ipv6: a.ipv6, owner: { ipv6: a.ipv6 } });

    for (const a of all) await node.pool.release(a.containerId, a.ifname);
    node.pool.kick();
    await waitFor(
      "the pool to shrink to maxIdle",
      () => settled(node)() && node.pool.summary().idle <= 4,
      10_000,
    );
    await sleep(100);
    expectPairedAsCloud(sim, node);
    const stats = await simStats(sim);
    expect(calls(stats, "UnassignIpv6Addresses")).toBeGreaterThan(0);
    expect(calls(stats, "AssignIpv6Addresses")).toBeGreaterThan(0);
  });

  it("resync: an IPv6 the store does not know is paired or given back; one the cloud lost leaves its IPv4, and its pod is reported", async () => {
    const sim = await h.sim(IPV6_WORLD);
    const node = await h.node(sim, { targets: { ipStack: "dual", minIdle: 2, maxIdle: 8 } });
    await waitFor("the warm pool", () => settled(node)() && node.pool.summary().idle >= 2);
    const a = await node.pool.allocate(req(1));
    const cloud = h.client(sim);
    // Behind the pool's back: the pod's IPv6 and an idle IPv4's taken away, two others put on the
    // ENI. The idle IPv4 takes one of them; the pod's IPv4 (assigned) takes none, so one is given back.
    const idle = Object.values(node.store.data.ips).find(
      (r) => r.eniId === a.eniId && r.phase === "idle" && r.ipv6,
    );
    await cloud.unassignIpv6Addresses(a.eniId, [a.ipv6!, idle!.ipv6!]);
    const extra = await cloud.assignIpv6Addresses({ eniId: a.eniId, count: 2 });
    const report = await node.resync();
    expect(report.droppedIpv6s.sort()).toEqual([a.ipv6, idle!.ipv6].sort());
    expect(report.brokenAllocations).toEqual([
      { ip: a.ipv6, containerId: "c1", ifname: "eth0", pod: "default/p1" },
    ]);
    expect(report.adoptedIpv6s).toHaveLength(1);
    expect(report.releasedIpv6s).toHaveLength(1);
    expect([...report.adoptedIpv6s, ...report.releasedIpv6s].sort()).toEqual([...extra].sort());
    expect(cloudIpv6(sim, a.eniId)).not.toContain(report.releasedIpv6s[0]);
    expect(node.store.data.ips[idle!.ip]?.ipv6).toBe(report.adoptedIpv6s[0]);
    // The pod keeps its IPv4 and no longer claims the lost IPv6.
    const now = node.pool.allocations().find((x) => x.containerId === "c1");
    expect(now?.ip).toBe(a.ip);
    expect(now?.ipv6).toBeUndefined();
    await waitFor("the pool to settle", settled(node));
    expectPairedAsCloud(sim, node);
  });

  it("a node switched from ipv4 to dual keeps its pods' IPv4 alone; new pods get both", async () => {
    const sim = await h.sim(IPV6_WORLD);
    const first = await h.node(sim, { targets: { minIdle: 2, maxIdle: 8 } });
    await waitFor("the warm pool", () => settled(first)() && first.pool.summary().idle >= 2);
    const old = await first.pool.allocate(req(1));
    expect(old.ipv6).toBeUndefined();
    await first.stop();
    const node = await h.node(sim, {
      stateDir: first.stateDir,
      targets: { ipStack: "dual", minIdle: 2, maxIdle: 8 },
    });
    await waitFor("the pool to settle", () => settled(node)() && node.pool.summary().idle >= 2);
    const kept = node.pool.allocations().find((x) => x.containerId === "c1");
    expect(kept).toMatchObject({ ip: old.ip, eniId: old.eniId });
    expect(kept?.ipv6).toBeUndefined();
    const fresh = await node.pool.allocate(req(2));
    expect(fresh.ipv6).toMatch(/^fd00:20:0:1:/);
    expect(cloudIpv6(sim, fresh.eniId)).toContain(fresh.ipv6);
    expectPairedAsCloud(sim, node);
  });
});
