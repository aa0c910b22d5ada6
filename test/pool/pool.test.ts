// The pool at run time against the real simulator: fill to minIdle,
// allocate/release, cooling, waiters, exhaustion, reclaim, quotas.

import { describe, expect, it } from "vitest";
import { type Allocation, TryAgainError } from "../../pool/pool.js";
import {
  calls,
  ENI_QUANTITY,
  enisOn,
  errors,
  harness,
  IPS_PER_ENI,
  NODE,
  ourEnis,
  req,
  simStats,
  sleep,
  storeOnDisk,
  type TestNode,
  VSW,
  waitFor,
} from "./helpers.js";

const h = harness();

const idleCount = (n: TestNode): number => n.pool.summary().idle;
const filled = (n: TestNode, idle: number) => () =>
  n.pool.summary().idle >= idle && n.pool.summary().pending === 0 && n.pool.summary().intents === 0;

describe("pool against the simulator", () => {
  it("a cold pool fills past minIdle with one new ENI created with its first IPs (headroom up to maxIdle)", async () => {
    const sim = await h.sim();
    // minIdle 3 is needed now; a new ENI brings maxIdle − minIdle = 2 more as headroom.
    const node = await h.node(sim, { targets: { minIdle: 3, maxIdle: 5 } });
    await waitFor("the pool to hold minIdle idle IPs", filled(node, 3));
    await sleep(150); // nothing more happens once the pool is filled
    expect(idleCount(node)).toBe(5);

    const enis = ourEnis(sim);
    expect(enis).toHaveLength(1);
    const eni = enis[0]!;
    expect(eni.status).toBe("InUse");
    expect(eni.instanceId).toBe(NODE);
    expect(eni.ips).toHaveLength(5);
    expect(Object.fromEntries(eni.tags)).toMatchObject({
      creator: "eniway",
      "eniway.io/cluster": "test-cluster",
      "eniway.io/node": NODE,
    });
    const stats = await simStats(sim);
    expect(calls(stats, "CreateNetworkInterface")).toBe(1);
    // The ENI came with its IPs: no separate Assign call was needed.
    expect(calls(stats, "AssignPrivateIpAddresses")).toBe(0);

    // The store (in memory and on disk) agrees with the cloud.
    await node.store.flush();
    const disk = await storeOnDisk(node.stateDir);
    for (const doc of [node.store.data, disk]) {
      expect(Object.keys(doc.enis)).toEqual([eni.id]);
      expect(doc.enis[eni.id]).toMatchObject({
        phase: "ready",
        mac: eni.mac,
        vSwitchId: VSW,
        primaryIp: eni.ips[0],
        gateway: "10.0.1.253",
        cidr: "10.0.1.0/24",
      });
      expect(Object.keys(doc.ips).sort()).toEqual([...eni.ips].sort());
      expect(Object.values(doc.ips).every((r) => r.phase === "idle" && r.eniId === eni.id)).toBe(true);
      expect(doc.intents).toEqual({});
    }
  });

  it("allocate is idempotent per containerId+ifname, and two keys never share an IP", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { minIdle: 2 } });
    await waitFor("a warm pool", filled(node, 2));

    // Concurrent requests for the same key get one IP; different keys get different IPs.
    const [a1, a2, b, c] = await Promise.all([
      node.pool.allocate(req(1)),
      node.pool.allocate(req(1)),
      node.pool.allocate(req(2)),
      node.pool.allocate(req(1, "net1")),
    ]);
    expect(a2.ip).toBe(a1.ip);
    expect(new Set([a1.ip, b.ip, c.ip]).size).toBe(3);
    // Asking again later answers the same, without taking another IP.
    const before = node.pool.summary().assigned;
    const a3 = await node.pool.allocate(req(1));
    expect(a3).toEqual(a1);
    expect(node.pool.summary().assigned).toBe(before);

    // The allocation describes the ENI that really carries the IP.
    const eni = sim.state.enis.get(a1.eniId)!;
    expect(eni.ips).toContain(a1.ip);
    expect(a1).toMatchObject({ mac: eni.mac, vSwitchId: VSW, gateway: "10.0.1.253", cidr: "10.0.1.0/24" });
    expect(a1.pod).toEqual({ namespace: "default", name: "p1", uid: "uid-p1" });

    // Many concurrent allocations: all distinct, all on our ENIs, all recorded on disk.
    const many = await Promise.all(Array.from({ length: 7 }, (_, i) => node.pool.allocate(req(100 + i))));
    const all = [a1, b, c, ...many];
    expect(new Set(all.map((a) => a.ip)).size).toBe(all.length);
    for (const a of all) expect(sim.state.enis.get(a.eniId)?.ips).toContain(a.ip);
    const disk = await storeOnDisk(node.stateDir);
    for (const a of all) {
      expect(disk.ips[a.ip]?.phase).toBe("assigned");
      expect(disk.ips[a.ip]?.owner).toMatchObject({ containerId: a.containerId, ifname: a.ifname });
    }
    expect(
      node.pool
        .allocations()
        .map((a) => a.ip)
        .sort(),
    ).toEqual(all.map((a) => a.ip).sort());
  });

  it("release cools the IP with a persisted deadline; unknown keys release as null; the IP returns after the cooldown", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { minIdle: 2, cooldownMs: 400 } });
    await waitFor("a warm pool", filled(node, 2));
    const a = await node.pool.allocate(req(1));

    const t0 = Date.now();
    const released = await node.pool.release("c1", "eth0");
    expect(released).toMatchObject({ containerId: "c1", ifname: "eth0", ip: a.ip, eniId: a.eniId });
    const rec = node.store.data.ips[a.ip]!;
    const coolUntil = rec.coolUntil!;
    expect(rec.phase).toBe("cooling");
    expect(rec.owner).toBeUndefined();
    expect(rec.coolUntil).toBeGreaterThanOrEqual(t0 + 400);
    expect(rec.coolUntil).toBeLessThanOrEqual(Date.now() + 400);
    // Durable when release answered.
    const disk = await storeOnDisk(node.stateDir);
    expect(disk.ips[a.ip]).toMatchObject({ phase: "cooling", coolUntil });
    expect(disk.ips[a.ip]?.owner).toBeUndefined();

    // A second release, and a release of a key never allocated, succeed with null.
    expect(await node.pool.release("c1", "eth0")).toBeNull();
    expect(await node.pool.release("never-seen", "eth0")).toBeNull();
    expect(node.pool.allocations()).toEqual([]);

    // While it cools, the IP is not handed out again, not even to the same key.
    const others: Allocation[] = [];
    for (let i = 2; i < 4; i++) others.push(await node.pool.allocate(req(i)));
    const again = await node.pool.allocate(req(1));
    expect([...others, again].map((x) => x.ip)).not.toContain(a.ip);
    expect(node.store.data.ips[a.ip]?.phase).toBe("cooling");

    // After the cooldown it is idle again (and on disk).
    await waitFor("the IP to finish cooling", () => node.store.data.ips[a.ip]?.phase === "idle", 3000);
    expect(Date.now()).toBeGreaterThanOrEqual(coolUntil);
    expect(node.store.data.ips[a.ip]?.coolUntil).toBeUndefined();
    await node.store.flush();
    expect((await storeOnDisk(node.stateDir)).ips[a.ip]?.phase).toBe("idle");
  });

  it("an allocation on a cold pool waits for the refill it triggers and succeeds", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { minIdle: 0, allocateTimeoutMs: 8000 } });
    await sleep(100);
    expect(node.pool.summary()).toMatchObject({ idle: 0, enis: [] });
    expect(ourEnis(sim)).toHaveLength(0);

    const started = Date.now();
    const [a, b] = await Promise.all([node.pool.allocate(req(1)), node.pool.allocate(req(2))]);
    // It had to wait at least for an attach (100-200 ms in this world).
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(a.ip).not.toBe(b.ip);
    expect(a.mac).toMatch(/^00:16:3e:/);
    expect(sim.state.enis.get(a.eniId)?.status).toBe("InUse");
    expect(node.pool.summary().waiting).toBe(0);
  });

  it("an exhausted node (every ENI full) makes allocate fail with TryAgainError within allocateTimeoutMs; a release serves the next waiter", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { minIdle: 2, allocateTimeoutMs: 1500, cooldownMs: 200 } });
    // Watch the cloud for the whole test: never more ENIs than the instance type allows.
    let maxOnNode = 0;
    let maxOurs = 0;
    const watch = setInterval(() => {
      maxOnNode = Math.max(maxOnNode, enisOn(sim).length);
      maxOurs = Math.max(maxOurs, ourEnis(sim).length);
    }, 5);
    try {
      const capacity = (ENI_QUANTITY - 1) * IPS_PER_ENI;
      const got = await Promise.all(Array.from({ length: capacity }, (_, i) => node.pool.allocate(req(i))));
      expect(new Set(got.map((a) => a.ip)).size).toBe(capacity);
      expect(ourEnis(sim)).toHaveLength(ENI_QUANTITY - 1);
      for (const e of ourEnis(sim)) expect(e.ips).toHaveLength(IPS_PER_ENI);

      const started = Date.now();
      const err = await node.pool.allocate(req("over")).catch((e: unknown) => e);
      const took = Date.now() - started;
      expect(err).toBeInstanceOf(TryAgainError);
      expect((err as TryAgainError).code).toBe("TryAgainLater");
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(1500 + 1000);
      expect(node.pool.summary().waiting).toBe(0);
      expect(node.pool.allocations()).toHaveLength(capacity);

      // A waiter is served once a released IP has cooled down.
      const waiting = node.pool.allocate(req("next"));
      await sleep(50);
      expect(node.pool.summary().waiting).toBe(1);
      const freed = await node.pool.release("c0", "eth0");
      const next = await waiting;
      expect(next.ip).toBe(freed!.ip);
      expect(next.containerId).toBe("cnext");

      const stats = await simStats(sim);
      expect(errors(stats, "AttachNetworkInterface", "EniPerInstanceLimitExceeded")).toBe(0);
      expect(errors(stats, "AssignPrivateIpAddresses", "InvalidOperation.Ipv4CountExceeded")).toBe(0);
    } finally {
      clearInterval(watch);
    }
    expect(maxOnNode).toBeLessThanOrEqual(ENI_QUANTITY);
    expect(maxOurs).toBeLessThanOrEqual(ENI_QUANTITY - 1);
    expect(maxOurs).toBe(ENI_QUANTITY - 1);
  });

  it("reclaims above maxIdle: unassigns IPs and deletes whole ENIs in the cloud", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, {
      targets: { minIdle: 2, maxIdle: 2, idleReclaimMs: 0, cooldownMs: 200 },
    });
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => node.pool.allocate(req(i))));
    expect(ourEnis(sim)).toHaveLength(2);
    const ipsInCloud = (): number => ourEnis(sim).reduce((n, e) => n + e.ips.length, 0);
    expect(ipsInCloud()).toBe(12);

    for (const a of got) expect(await node.pool.release(a.containerId, a.ifname)).not.toBeNull();
    // Nothing is reclaimed while the IPs cool.
    expect(ipsInCloud()).toBe(12);

    await waitFor(
      "the pool to shrink to maxIdle in the cloud",
      () => ipsInCloud() === 2 && node.pool.summary().intents === 0 && node.pool.summary().releasing === 0,
      8000,
    );
    // One ENI deleted outright (not left detached), the other drained to 2 IPs.
    const left = ourEnis(sim);
    expect(left).toHaveLength(1);
    expect(left[0]!.status).toBe("InUse");
    expect(left[0]!.ips).toHaveLength(2);
    const gone = [...new Set(got.map((a) => a.eniId))].filter((id) => id !== left[0]!.id);
    expect(gone).toHaveLength(1);
    expect(sim.state.enis.has(gone[0]!)).toBe(false);

    // The store agrees.
    expect(Object.keys(node.store.data.enis)).toEqual([left[0]!.id]);
    expect(Object.keys(node.store.data.ips).sort()).toEqual([...left[0]!.ips].sort());
    expect(node.pool.summary()).toMatchObject({ idle: 2, assigned: 0, cooling: 0 });
    const stats = await simStats(sim);
    expect(calls(stats, "DeleteNetworkInterface")).toBe(1);
    expect(calls(stats, "UnassignPrivateIpAddresses")).toBeGreaterThanOrEqual(1);

    // It stays there: no churn.
    await sleep(300);
    expect(ipsInCloud()).toBe(2);
  });

  it("reclaim takes idle IPs only: held and cooling IPs stay, and so does their ENI", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, {
      targets: { minIdle: 0, maxIdle: 0, idleReclaimMs: 0, cooldownMs: 60_000 },
    });
    const got = await Promise.all(Array.from({ length: 4 }, (_, i) => node.pool.allocate(req(i))));
    expect(ourEnis(sim)).toHaveLength(1);
    const eni = ourEnis(sim)[0]!;
    const secondary = got.filter((a) => a.ip !== eni.ips[0]);
    const [cooling, freed] = [secondary[0]!, secondary[1]!];
    await node.pool.release(cooling.containerId, cooling.ifname); // cools for a minute
    node.targets.cooldownMs = 0;
    await node.pool.release(freed.containerId, freed.ifname); // idle at once: above maxIdle 0
    await waitFor("the idle IP to go back to the cloud", () => !eni.ips.includes(freed.ip));
    await waitFor("the pool to settle", () => node.pool.summary().intents === 0);
    await sleep(200);
    expect(sim.state.enis.get(eni.id)?.status).toBe("InUse");
    const held = got.filter((a) => a !== cooling && a !== freed).map((a) => a.ip);
    expect([...eni.ips].sort()).toEqual([...held, cooling.ip].sort());
    expect(node.store.data.ips[cooling.ip]?.phase).toBe("cooling");
    expect(node.store.data.ips[freed.ip]).toBeUndefined();
    expect(
      node.pool
        .allocations()
        .map((a) => a.ip)
        .sort(),
    ).toEqual([...held].sort());
  });

  it("a release that races a pending allocation of the same key waits for it, then undoes it", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { minIdle: 0, allocateTimeoutMs: 8000 } });
    const allocating = node.pool.allocate(req(1));
    await sleep(20);
    expect(node.pool.summary().waiting).toBe(1);
    const released = await node.pool.release("c1", "eth0");
    const a = await allocating;
    expect(released).not.toBeNull();
    expect(released!.ip).toBe(a.ip);
    expect(node.pool.allocations()).toEqual([]);
    expect(node.store.data.ips[a.ip]?.phase).toBe("cooling");
  });

  it("stop() rejects waiters at once and refuses new work", async () => {
    const sim = await h.sim({ latencyMs: { CreateNetworkInterface: 600, AttachNetworkInterface: 100 } });
    const node = await h.node(sim, { targets: { minIdle: 0, allocateTimeoutMs: 10_000 } });
    const waiting = node.pool.allocate(req(1)).catch((e: unknown) => e);
    await sleep(100);
    expect(node.pool.summary().waiting).toBe(1);
    const started = Date.now();
    const stopping = node.stop();
    const err = await waiting;
    expect(Date.now() - started).toBeLessThan(300);
    expect(err).toBeInstanceOf(TryAgainError);
    expect((err as Error).message).toMatch(/shutting down/);
    await expect(node.pool.allocate(req(2))).rejects.toBeInstanceOf(TryAgainError);
    await stopping;
    // The create that was in flight finished and was recorded: nothing leaks.
    expect(node.store.data.intents).toEqual({});
    for (const e of ourEnis(sim)) expect(node.store.data.enis[e.id]).toBeDefined();
  });
});
