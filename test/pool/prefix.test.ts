// The pool in prefix mode against the real simulator, through the real
// pop-core client: IPv4 prefixes (/28) from the vSwitch's reserved CIDR
// blocks, pods packed into them, whole prefixes given back, resync with the
// cloud's Ipv4PrefixSets, a vSwitch without a reservation, and a node that
// switches modes while its pods keep their IPs.

import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cidrContains, ipToInt, ipv4PrefixAddresses, parseCidr } from "../../lib/net.js";
import type { Allocation } from "../../pool/pool.js";
import { TryAgainError } from "../../pool/pool.js";
import { maxPods } from "../../src/kubernetes/decide.js";
import {
  calls,
  cloudPrefixes,
  ENI_QUANTITY,
  errorTotal,
  harness,
  IPS_PER_ENI,
  NODE,
  OWN_TAGS,
  ourEnis,
  req,
  reservePrefixes,
  SG,
  type Simulator,
  simStats,
  sleep,
  storeOnDisk,
  type TestNode,
  VSW,
  waitFor,
  worldJson,
  ZONE,
} from "./helpers.js";

const h = harness();

/** Two /26 blocks of vsw-a: eight prefixes. */
const RESERVED = ["10.0.1.64/26", "10.0.1.128/26"];

const inPrefix = (ip: string, prefix: string): boolean => cidrContains(parseCidr(prefix), ipToInt(ip));

/** The prefix of the allocation's ENI (in the cloud) that holds its IP, or "" for a single IP. */
const prefixOf = (sim: Simulator, a: Allocation): string =>
  sim.state.enis.get(a.eniId)?.ipv4Prefixes.find((p) => inPrefix(a.ip, p)) ?? "";

const settled = (n: TestNode) => () =>
  n.pool.summary().pending === 0 && n.pool.summary().intents === 0 && n.pool.summary().waiting === 0;

/** The prefixes the store holds (in memory), each once. */
const storePrefixes = (n: TestNode): string[] =>
  [...new Set(Object.values(n.store.data.ips).flatMap((r) => (r.prefix ? [r.prefix] : [])))].sort();

const mutations = ["CreateNetworkInterface", "AttachNetworkInterface", "AssignPrivateIpAddresses"] as const;

describe("prefix mode against the simulator", () => {
  it("a cold burst of 60 pods on a node of 2 secondary ENIs × 6 IPs: served from prefixes with a handful of calls, packed; released, every prefix goes back", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    expect(maxPods({ maxSecondaryEnis: ENI_QUANTITY - 1, ipsPerEni: IPS_PER_ENI }, "ip")).toBe(12);
    expect(maxPods({ maxSecondaryEnis: ENI_QUANTITY - 1, ipsPerEni: IPS_PER_ENI }, "prefix")).toBe(110);
    const node = await h.node(sim, {
      targets: { mode: "prefix", minIdle: 2, maxIdle: 8, cooldownMs: 0, allocateTimeoutMs: 10_000 },
    });
    await waitFor("the warm pool", () => settled(node)() && node.pool.summary().idle >= 2);
    const warm = await simStats(sim);

    const started = performance.now();
    const all = await Promise.all(Array.from({ length: 60 }, (_, i) => node.pool.allocate(req(i))));
    const ms = performance.now() - started;
    await waitFor("the pool to settle", settled(node));

    expect(new Set(all.map((a) => a.ip)).size).toBe(60);
    // From prefixes, or an ENI's primary IP (served last: it goes only with its ENI).
    const primaries = new Set(ourEnis(sim).map((e) => e.ips[0]));
    for (const a of all)
      if (prefixOf(sim, a) === "") expect(primaries.has(a.ip), `${a.ip}: a prefix's or a primary`).toBe(true);
    // Packed: whole prefixes filled one after the other, at most one partly.
    const perPrefix = new Map<string, Allocation[]>();
    for (const a of all)
      if (prefixOf(sim, a) !== "")
        perPrefix.set(prefixOf(sim, a), [...(perPrefix.get(prefixOf(sim, a)) ?? []), a]);
    const counts = [...perPrefix.values()].map((l) => l.length);
    expect(counts.filter((n) => n < 16).length).toBeLessThanOrEqual(1);
    expect(counts.filter((n) => n === 16).length).toBeGreaterThanOrEqual(3);

    const stats = await simStats(sim);
    const used = Object.fromEntries(mutations.map((m) => [m, calls(stats, m) - calls(warm, m)]));
    const total = Object.values(used).reduce((x, y) => x + y, 0);
    const fromCold = Object.fromEntries(mutations.map((m) => [m, calls(stats, m)]));
    console.log(
      `prefix mode: 60 pods in ${ms.toFixed(0)} ms; cloud calls after the warm pool ${JSON.stringify(used)}, from a cold node ${JSON.stringify(fromCold)}`,
    );
    expect(total).toBeLessThanOrEqual(4);
    expect(calls(stats, "CreateNetworkInterface")).toBeLessThanOrEqual(2);
    expect(errorTotal(stats)).toBe(0);

    // The store holds what the cloud holds: every prefix, with its 16 addresses, on disk too.
    expect(storePrefixes(node)).toEqual(cloudPrefixes(sim));
    const disk = await storeOnDisk(node.stateDir);
    expect(disk.format).toBe(3);
    for (const p of cloudPrefixes(sim))
      for (const ip of ipv4PrefixAddresses(p)) expect(disk.ips[ip]?.prefix, ip).toBe(p);

    // Packing: free 8 addresses of one full prefix and 2 of another; new pods go to the fullest.
    const [x, y] = [...perPrefix].filter(([, l]) => l.length === 16).map(([p]) => p);
    const xPods = perPrefix.get(x!)!.slice(0, 8);
    const yPods = perPrefix.get(y!)!.slice(0, 2);
    for (const a of [...xPods, ...yPods]) await node.pool.release(a.containerId, a.ifname);
    await waitFor("cooled", () => node.pool.summary().cooling === 0);
    const next = await Promise.all(Array.from({ length: 6 }, (_, i) => node.pool.allocate(req(100 + i))));
    expect(next.filter((a) => prefixOf(sim, a) === x)).toEqual([]);
    expect(next.filter((a) => prefixOf(sim, a) === y)).toHaveLength(2);

    // Every pod released: with minIdle 0 and the reclaim delay 0 every prefix goes back (here, with its ENI).
    const live = [...all.filter((a) => !xPods.includes(a) && !yPods.includes(a)), ...next];
    Object.assign(node.targets, { minIdle: 0, maxIdle: 2, idleReclaimMs: 0 });
    for (const a of live) await node.pool.release(a.containerId, a.ifname);
    node.pool.kick();
    await waitFor(
      "every prefix back in the cloud",
      () => cloudPrefixes(sim).length === 0 && settled(node)(),
      10_000,
    );
    await sleep(100);
    expect(node.pool.allocations()).toEqual([]);
    expect(storePrefixes(node)).toEqual([]);
    expect(ourEnis(sim)).toEqual([]);
    await node.store.flush();
    expect((await storeOnDisk(node.stateDir)).format).toBe(2);
  });

  it("gives back a whole prefix whose addresses are all free and cooled, never one with a pod or a cooling address", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const node = await h.node(sim, {
      targets: { mode: "prefix", minIdle: 0, maxIdle: 0, cooldownMs: 400, idleReclaimMs: 0 },
    });
    const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => node.pool.allocate(req(i))));
    await waitFor("the pool to settle", settled(node));
    const byPrefix = new Map<string, Allocation[]>();
    for (const a of pods) byPrefix.set(prefixOf(sim, a), [...(byPrefix.get(prefixOf(sim, a)) ?? []), a]);
    const [full, part] = [...byPrefix].sort(([, a], [, b]) => b.length - a.length);
    expect(full![1]).toHaveLength(16);
    expect(part![1]).toHaveLength(4);
    // The partly used prefix loses its pods: cooling, it stays; cooled, it goes back; the full one stays.
    for (const a of part![1]) await node.pool.release(a.containerId, a.ifname);
    node.pool.kick();
    await sleep(150);
    expect(cloudPrefixes(sim)).toContain(part![0]);
    await waitFor("the cooled prefix to go back", () => !cloudPrefixes(sim).includes(part![0]), 5000);
    expect(cloudPrefixes(sim)).toEqual([full![0]]);
    const stats = await simStats(sim);
    expect(calls(stats, "UnassignPrivateIpAddresses")).toBe(1);
    expect(node.pool.allocations()).toHaveLength(16);
  });

  it("chooses the vSwitch whose reserved blocks have free prefixes over a larger one without any", async () => {
    const BIG = "vsw-big";
    const sim = await h.sim({
      vSwitches: [
        ...(worldJson().vSwitches as object[]),
        { vSwitchId: BIG, zoneId: ZONE, cidr: "10.0.16.0/20" },
      ],
    });
    await reservePrefixes(sim, RESERVED);
    const node = await h.node(sim, {
      vSwitchIds: [BIG, VSW],
      targets: { mode: "prefix", minIdle: 2, maxIdle: 8 },
    });
    await waitFor("the warm pool", () => settled(node)() && node.pool.summary().idle >= 2);
    const stats = await simStats(sim);
    // Without the listing the larger vSwitch went first and answered InvalidVSwitchId.IpNotEnough.
    expect(errorTotal(stats)).toBe(0);
    expect(calls(stats, "ListVSwitchCidrReservations")).toBeGreaterThanOrEqual(2);
    expect(ourEnis(sim).map((e) => e.vSwitchId)).toEqual([VSW]);
    // The other one is blocked (its blocks have no free prefix), as a refused call would have blocked it.
    expect(Object.keys(node.pool.summary().blockedVSwitches)).toEqual([BIG]);
  });

  it("a vSwitch without a prefix reservation: not tried at all, a clear error naming it, blocked until its blocks have free prefixes", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { mode: "prefix", minIdle: 2, allocateTimeoutMs: 1500 } });
    const err = await node.pool.allocate(req(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TryAgainError);
    expect((err as Error).message).toMatch(new RegExp(`vSwitch ${VSW} has no free IPv4 prefixes`));
    const told = node.logs.find((l) => l.msg.includes("has no free IPv4 prefix"));
    expect(told).toMatchObject({ level: "warn", vSwitchId: VSW });
    expect(told?.msg).toContain("VSwitchCidrReservation");
    expect(node.pool.summary().blockedVSwitches[VSW]).toBeGreaterThan(Date.now());
    // ListVSwitchCidrReservations said it: no Create was sent to fail.
    expect(calls(await simStats(sim), "CreateNetworkInterface")).toBe(0);
    expect(ourEnis(sim)).toEqual([]);
    expect(node.pool.summary().intents).toBe(0);
    // Free single addresses say nothing of prefixes: a resync keeps the block...
    await node.resync();
    expect(node.pool.summary().blockedVSwitches[VSW]).toBeGreaterThan(Date.now());
    // ...until the operator reserves blocks: the next resync sees free prefixes and the pool serves.
    await reservePrefixes(sim, RESERVED);
    await node.resync();
    expect(node.pool.summary().blockedVSwitches[VSW] ?? 0).toBeLessThanOrEqual(Date.now());
    const a = await node.pool.allocate(req(2));
    expect(
      ourEnis(sim)
        .flatMap((e) => e.ipv4Prefixes)
        .some((p) => inPrefix(a.ip, p)),
    ).toBe(true);
  });

  it("without ListVSwitchCidrReservations (a RAM policy that lacks it): the first refusal blocks the vSwitch, with the cloud's code", async () => {
    const sim = await h.sim({
      faults: { actions: { ListVSwitchCidrReservations: { code: "Forbidden.RAM", rate: 1 } } },
    });
    const node = await h.node(sim, { targets: { mode: "prefix", minIdle: 2, allocateTimeoutMs: 1500 } });
    const err = await node.pool.allocate(req(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TryAgainError);
    expect((err as Error).message).toMatch(new RegExp(`vSwitch ${VSW} has no free IPv4 prefixes`));
    expect(
      node.logs.find((l) => l.msg.includes("cannot list the vSwitches' reserved CIDR blocks")),
    ).toBeDefined();
    const told = node.logs.find((l) => l.msg.includes("has no free IPv4 prefix"));
    expect(told).toMatchObject({ level: "warn", code: "InvalidVSwitchId.IpNotEnough" });
    expect(calls(await simStats(sim), "CreateNetworkInterface")).toBe(1); // blocked after the first refusal
    expect(ourEnis(sim)).toEqual([]);
    expect(node.pool.summary().intents).toBe(0);
  });

  it("resync: a prefix the cloud has and the store lacks is adopted idle; one the cloud lost is dropped with its pods reported", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const node = await h.node(sim, { targets: { mode: "prefix", minIdle: 2, maxIdle: 40 } });
    await waitFor("the warm pool", () => settled(node)() && node.pool.summary().idle >= 2);
    const [eni] = ourEnis(sim);
    const a = await node.pool.allocate(req(1));
    const held = prefixOf(sim, a);
    // Behind the pool's back: a prefix more on its ENI, and the one holding the pod taken away.
    const cloud = h.client(sim);
    const [extra] = await cloud.assignIpv4Prefixes({ eniId: eni!.id, count: 1 });
    await cloud.unassignIpv4Prefixes(eni!.id, [held]);
    const report = await node.resync();
    expect(report.adoptedPrefixes).toEqual([extra]);
    expect(report.adoptedIps.sort()).toEqual(ipv4PrefixAddresses(extra!).sort());
    expect(report.droppedPrefixes).toEqual([held]);
    expect(report.droppedIps.sort()).toEqual(ipv4PrefixAddresses(held).sort());
    expect(report.brokenAllocations).toEqual([
      { ip: a.ip, containerId: "c1", ifname: "eth0", pod: "default/p1" },
    ]);
    expect(storePrefixes(node)).toEqual(cloudPrefixes(sim));
    expect(node.store.data.ips[ipv4PrefixAddresses(extra!)[0]!]).toMatchObject({
      phase: "idle",
      prefix: extra,
    });
  });

  it("switching a node's mode keeps its pods' IPs: ip → prefix serves new pods from prefixes, the old single IPs go back first", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const ipNode = await h.node(sim, { targets: { mode: "ip", minIdle: 2, maxIdle: 4, cooldownMs: 0 } });
    const old = await Promise.all(Array.from({ length: 5 }, (_, i) => ipNode.pool.allocate(req(i))));
    await waitFor("the pool to settle", settled(ipNode));
    expect(old.every((a) => prefixOf(sim, a) === "")).toBe(true);
    await ipNode.stop();

    const node = await h.node(sim, {
      stateDir: ipNode.stateDir,
      targets: { mode: "prefix", minIdle: 2, maxIdle: 4, cooldownMs: 0 },
    });
    expect(node.startup.brokenAllocations).toEqual([]);
    expect(node.pool.allocations().map((a) => [a.containerId, a.ip])).toEqual(
      expect.arrayContaining(old.map((a) => [a.containerId, a.ip])),
    );
    const singles = (): string[] => ourEnis(sim).flatMap((e) => e.ips);
    const singlesBefore = singles();
    const idleSingles = node.pool.summary().idle;
    const fresh = await Promise.all(Array.from({ length: 10 }, (_, i) => node.pool.allocate(req(50 + i))));
    await waitFor("the pool to settle", settled(node));
    // The idle single IPs serve first, then prefixes: no single IP is asked for any more.
    expect(fresh.filter((a) => prefixOf(sim, a) === "").length).toBeLessThanOrEqual(idleSingles);
    expect(fresh.filter((a) => prefixOf(sim, a) !== "").length).toBeGreaterThanOrEqual(10 - idleSingles);
    expect(singles().sort()).toEqual(singlesBefore.sort());
    for (const a of old) expect((await node.pool.allocate(req(a.containerId.slice(1)))).ip).toBe(a.ip);

    // The old pods leave: the single IPs no pod holds go back (with their ENI when it empties);
    // the prefixes with pods stay.
    Object.assign(node.targets, { minIdle: 0, maxIdle: 0, idleReclaimMs: 0 });
    for (const a of old) await node.pool.release(a.containerId, a.ifname);
    node.pool.kick();
    const held = new Set(fresh.map((a) => a.ip));
    await waitFor("the free single IPs to go back", () => {
      const primaries = new Set(ourEnis(sim).map((e) => e.ips[0]));
      return settled(node)() && singles().every((ip) => held.has(ip) || primaries.has(ip));
    });
    expect(new Set(node.pool.allocations().map((a) => a.ip))).toEqual(held);
    for (const a of fresh)
      if (prefixOf(sim, a) !== "") expect(cloudPrefixes(sim)).toContain(prefixOf(sim, a));
  });

  it("switching back, prefix → ip: the prefix pods keep their IPs and their prefixes serve until they drain", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const pNode = await h.node(sim, { targets: { mode: "prefix", minIdle: 2, maxIdle: 8 } });
    const pods = await Promise.all(Array.from({ length: 3 }, (_, i) => pNode.pool.allocate(req(i))));
    await waitFor("the pool to settle", settled(pNode));
    await pNode.stop();
    const node = await h.node(sim, {
      stateDir: pNode.stateDir,
      targets: { mode: "ip", minIdle: 2, maxIdle: 8 },
    });
    expect(node.startup.droppedIps).toEqual([]);
    // The ENI's primary (ip mode's own unit) serves first, then the prefix's idle addresses:
    // no single IP is asked for while they last.
    const next = await Promise.all([node.pool.allocate(req(10)), node.pool.allocate(req(11))]);
    expect(next.map((a) => prefixOf(sim, a)).sort()).toEqual(["", prefixOf(sim, pods[0]!)]);
    await waitFor("the pool to settle", settled(node));
    expect(calls(await simStats(sim), "AssignPrivateIpAddresses")).toBe(0);
    for (const a of pods) expect((await node.pool.allocate(req(a.containerId.slice(1)))).ip).toBe(a.ip);
  });
});

describe("prefix intents resumed after a crash", () => {
  it("an Assign of prefixes the cloud answered, the store holding only its intent: resumed with its ClientToken, the same prefixes, none twice", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const first = await h.node(sim, { targets: { mode: "prefix", minIdle: 2, maxIdle: 40 } });
    await waitFor("the warm pool", () => settled(first)() && first.pool.summary().idle >= 2);
    first.targets.minIdle = 0;
    const [eni] = ourEnis(sim);
    const clientToken = randomUUID();
    const assigned = await h.client(sim).assignIpv4Prefixes({ eniId: eni!.id, count: 2, clientToken });
    await first.store.update((d) => {
      d.intents["assign-crashed"] = {
        id: "assign-crashed",
        kind: "assign",
        clientToken,
        eniId: eni!.id,
        count: 2,
        unit: "prefixes",
        at: Date.now(),
      };
    });
    await first.stop();
    const before = [...sim.state.enis.get(eni!.id)!.ipv4Prefixes];
    const second = await h.node(sim, { stateDir: first.stateDir, targets: { mode: "prefix", minIdle: 0 } });
    expect(second.startup.resumedIntents).toBe(1);
    expect(sim.state.enis.get(eni!.id)!.ipv4Prefixes).toEqual(before);
    expect(second.startup.adoptedPrefixes).toEqual([]);
    for (const p of assigned)
      for (const ip of ipv4PrefixAddresses(p))
        expect(second.store.data.ips[ip]).toMatchObject({ phase: "idle", prefix: p, eniId: eni!.id });
    expect(storePrefixes(second)).toEqual(cloudPrefixes(sim));
    expect(second.store.data.intents).toEqual({});
  });

  it("a Create with prefixes the cloud made: the same ENI is attached with its prefixes, no second one", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const node0 = await h.node(sim, { targets: { mode: "prefix", minIdle: 0 } });
    await node0.stop();
    const clientToken = randomUUID();
    const made = await h.client(sim).createNetworkInterface({
      vSwitchId: VSW,
      securityGroupIds: [SG],
      tags: { ...OWN_TAGS, "eniway.io/node": NODE },
      secondaryIpCount: 0,
      ipv4PrefixCount: 2,
      clientToken,
      description: "created by eniway",
    });
    await node0.store.update((d) => {
      d.intents["create-crashed"] = {
        id: "create-crashed",
        kind: "create",
        clientToken,
        vSwitchId: VSW,
        ipCount: 1,
        prefixCount: 2,
        at: Date.now(),
      };
    });
    const node = await h.node(sim, {
      stateDir: node0.stateDir,
      targets: { mode: "prefix", minIdle: 0 },
      leakGraceMs: 0,
    });
    expect(node.startup.resumedIntents).toBe(1);
    expect(ourEnis(sim).map((e) => e.id)).toEqual([made.eniId]);
    expect(node.store.data.enis[made.eniId]?.phase).toBe("ready");
    expect(storePrefixes(node)).toEqual([...made.ipv4Prefixes].sort());
    expect(Object.keys(node.store.data.ips)).toHaveLength(1 + 32);
  });

  it("an Unassign of a prefix the cloud carried out: resumed, the prefix's addresses are forgotten, nothing leaks", async () => {
    const sim = await h.sim();
    await reservePrefixes(sim, RESERVED);
    const first = await h.node(sim, { targets: { mode: "prefix", minIdle: 2, maxIdle: 40 } });
    await waitFor("the warm pool", () => settled(first)() && first.pool.summary().idle >= 2);
    first.targets.minIdle = 0;
    const [eni] = ourEnis(sim);
    const [prefix] = eni!.ipv4Prefixes;
    // The intent took the prefix's idle addresses, the call went out, then the daemon died.
    await first.store.update((d) => {
      for (const ip of ipv4PrefixAddresses(prefix!)) d.ips[ip] = { ...d.ips[ip]!, phase: "releasing" };
      d.intents["unassign-crashed"] = {
        id: "unassign-crashed",
        kind: "unassign",
        eniId: eni!.id,
        ips: ipv4PrefixAddresses(prefix!),
        prefixes: [prefix!],
        at: Date.now(),
      };
    });
    await first.stop();
    await h.client(sim).unassignIpv4Prefixes(eni!.id, [prefix!]);
    const second = await h.node(sim, { stateDir: first.stateDir, targets: { mode: "prefix", minIdle: 0 } });
    expect(second.startup.resumedIntents).toBe(1);
    expect(cloudPrefixes(sim)).not.toContain(prefix);
    expect(storePrefixes(second)).toEqual(cloudPrefixes(sim));
    for (const ip of ipv4PrefixAddresses(prefix!)) expect(second.store.data.ips[ip]).toBeUndefined();
    expect(second.startup.droppedIps).toEqual([]);
    expect(second.store.data.intents).toEqual({});
  });
});
