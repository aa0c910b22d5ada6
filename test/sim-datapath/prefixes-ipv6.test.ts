// The datapath mode with IPv4 prefixes and IPv6: the router routes an
// assigned /28, an IPv6 address and an IPv6 /80 to the ENI that holds them,
// forgets them on Unassign, follows them when they move to an ENI of another
// node, and its source check drops a packet that leaves an ENI with a source
// that is not that ENI's (address, prefix or IPv6).

import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Simulator } from "../../cloud/simulator/server.js";
import { type AssignResponse, Cloud, worldJson } from "../helpers/sim.js";
import {
  dpHarness,
  dpWorld,
  exec,
  GW,
  ipBatchIn,
  ipJson,
  NS_A,
  NS_B,
  ping,
  rpFilterDrops,
  VPC_NS,
} from "./helpers.js";

const h = dpHarness(afterEach, afterAll);

const VSW6 = "fd00:10:0:1::/64";
const GW6 = "fd00:10:0:1:ffff:ffff:ffff:fff7";

/** The datapath world with IPv6: the VPC's /56, vsw-a's /64; both nodes take 6 IPv4 and 6 IPv6 per ENI. */
function dualWorld() {
  const base = worldJson();
  return dpWorld({
    vpc: { vpcId: "vpc-contract", cidr: "10.0.0.0/16", ipv6Cidr: "fd00:10::/56" },
    vSwitches: (base.vSwitches as Record<string, unknown>[]).map((v) =>
      v.vSwitchId === "vsw-a" ? { ...v, ipv6Cidr: VSW6 } : v,
    ),
    instanceTypes: [
      {
        instanceTypeId: "ecs.t.small",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 6,
        eniIpv6AddressQuantity: 6,
      },
      {
        instanceTypeId: "ecs.t.big",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 6,
        eniIpv6AddressQuantity: 6,
      },
    ],
  });
}

interface Route {
  dst: string;
  dev: string;
  gateway?: string;
}

const routerRoute = async (dst: string, family: "-4" | "-6" = "-4"): Promise<Route | undefined> =>
  (await ipJson<Route>(VPC_NS, family, "route", "show", "exact", dst))[0];

/** IPv6 packets the router received but neither forwarded nor took for itself: its source check's drops. */
async function v6Drops(): Promise<number> {
  const r = await exec("ip", ["netns", "exec", VPC_NS, "cat", "/proc/net/snmp6"]);
  expect(r.code, r.stderr).toBe(0);
  const v = (k: string): number => Number(new RegExp(`^${k}\\s+(\\d+)$`, "m").exec(r.stdout)?.[1] ?? 0);
  return v("Ip6InReceives") - v("Ip6OutForwDatagrams") - v("Ip6InDelivers");
}

const primaryOf = (sim: Simulator, instanceId: string): string => {
  const inst = sim.state.instances.get(instanceId)!;
  return sim.state.enis.get(inst.primaryEniId)!.ips[0]!;
};

/** A new ENI attached to a node, its device brought up as eniway's datapath would: eth1, table 100. */
async function eniOn(c: Cloud, instanceId: string, ns: string): Promise<{ id: string; primary: string }> {
  const e = await c.create();
  await c.attach(e.NetworkInterfaceId, instanceId);
  await ipBatchIn(ns, [
    "link set eth1 up",
    `route add ${GW} dev eth1 scope link table 100`,
    `route add default via ${GW} dev eth1 table 100`,
  ]);
  return { id: e.NetworkInterfaceId, primary: e.PrivateIpAddress };
}

/** IPv6 on a node's eth1: the gateway in table 100, and the given sources sent there. */
async function ipv6On(ns: string, sources: string[]): Promise<void> {
  const r = await exec(
    "ip",
    ["-n", ns, "-6", "-batch", "-"],
    `${[
      `route add ${GW6} dev eth1 table 100`,
      `route add default via ${GW6} dev eth1 table 100`,
      ...sources.map((s) => `rule add from ${s} lookup 100 priority 2048`),
    ].join("\n")}\n`,
  );
  expect(r.code, r.stderr).toBe(0);
}

/** Sends an IPv6 source (address or prefix) of a node out through eth1 (table 100). */
async function rule6(ns: string, from: string): Promise<void> {
  const r = await exec("ip", [
    "-n",
    ns,
    "-6",
    "rule",
    "add",
    "from",
    from,
    "lookup",
    "100",
    "priority",
    "2048",
  ]);
  expect(r.code, r.stderr).toBe(0);
}

async function reserve(c: Cloud, params: Record<string, string | number>): Promise<void> {
  await c.call("CreateVSwitchCidrReservation", { VSwitchId: "vsw-a", ...params }, { api: "vpc" });
  await c.admin("settle", "POST");
}

describe("datapath: IPv4 prefixes", () => {
  it("routes an assigned /28 to its ENI, checks its sources, and follows it to another node", async () => {
    const sim = await h.start(dualWorld());
    const c = new Cloud(sim);
    const a = primaryOf(sim, "i-a");
    const b = primaryOf(sim, "i-b");
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/28" });
    const ea = await eniOn(c, "i-a", NS_A);
    const r = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: ea.id,
      Ipv4PrefixCount: 1,
    });
    const prefix = r.AssignedPrivateIpAddressesSet.Ipv4PrefixSet?.Ipv4Prefixes[0];
    expect(prefix).toBe("10.0.1.64/28");
    const devA = sim.datapath!.routerDevice(ea.id)!;
    expect(await routerRoute(prefix!)).toEqual(expect.objectContaining({ dev: devA, gateway: ea.primary }));

    // Two pods' addresses from the prefix on node A, sent out through eth1.
    await ipBatchIn(NS_A, [
      "addr add 10.0.1.70/32 dev lo",
      "addr add 10.0.1.75/32 dev lo",
      `rule add from ${prefix} lookup 100 priority 2048`,
    ]);
    const out = await ping(NS_A, b, "10.0.1.70");
    expect(out.ok, out.out).toBe(true);
    expect(out.ttl).toBe(63);
    const into = await ping(NS_B, "10.0.1.75"); // B reaches any address of the prefix on A
    expect(into.ok, into.out).toBe(true);

    // The source check: the prefix leaving through eth0, and an unassigned source on eth1, are dropped.
    // (A first resolves B on eth0 from its primary: the VPC answers no ARP whose sender fails the check.)
    expect((await ping(NS_A, b)).ok).toBe(true);
    await ipBatchIn(NS_A, [`rule del from ${prefix} lookup 100 priority 2048`]);
    let before = await rpFilterDrops();
    expect((await ping(NS_A, b, "10.0.1.70")).ok).toBe(false);
    expect(await rpFilterDrops()).toBeGreaterThan(before);
    await ipBatchIn(NS_A, [
      `rule add from ${prefix} lookup 100 priority 2048`,
      "addr add 10.0.1.90/32 dev lo",
      "rule add from 10.0.1.90 lookup 100 priority 2048",
    ]);
    before = await rpFilterDrops();
    expect((await ping(NS_A, b, "10.0.1.90")).ok, "10.0.1.90 is in no prefix of the ENI").toBe(false);
    expect(await rpFilterDrops()).toBeGreaterThan(before);
    expect((await ping(NS_A, b, "10.0.1.70")).ok).toBe(true);

    // Unassign: the router forgets the /28 and its rule.
    await c.call("UnassignPrivateIpAddresses", { NetworkInterfaceId: ea.id, "Ipv4Prefix.1": prefix! });
    expect(await routerRoute(prefix!)).toBeUndefined();
    expect((await ping(NS_B, "10.0.1.75")).ok).toBe(false);
    expect((await ping(NS_A, b, "10.0.1.70")).ok).toBe(false);

    // The same /28 on an ENI of node B: the VPC routes it there now (A gives up its copies).
    await ipBatchIn(NS_A, ["addr del 10.0.1.70/32 dev lo", "addr del 10.0.1.75/32 dev lo"]);
    const eb = await eniOn(c, "i-b", NS_B);
    await c.call("AssignPrivateIpAddresses", { NetworkInterfaceId: eb.id, "Ipv4Prefix.1": prefix! });
    const devB = sim.datapath!.routerDevice(eb.id)!;
    expect(await routerRoute(prefix!)).toEqual(expect.objectContaining({ dev: devB, gateway: eb.primary }));
    await ipBatchIn(NS_B, [
      "addr add 10.0.1.75/32 dev lo",
      `rule add from ${prefix} lookup 100 priority 2048`,
    ]);
    const moved = await ping(NS_A, "10.0.1.75");
    expect(moved.ok, moved.out).toBe(true);
    const fromB = await ping(NS_B, a, "10.0.1.75");
    expect(fromB.ok, fromB.out).toBe(true);
    // Node A still sending from the prefix through its ENI: that ENI no longer holds it.
    await ipBatchIn(NS_A, ["addr add 10.0.1.70/32 dev lo"]);
    before = await rpFilterDrops();
    expect((await ping(NS_A, b, "10.0.1.70")).ok).toBe(false);
    expect(await rpFilterDrops()).toBeGreaterThan(before);

    // Detach: the device and every rule that named it are gone.
    await c.call("DetachNetworkInterface", { NetworkInterfaceId: eb.id, InstanceId: "i-b" });
    await c.waitStatus(eb.id, "Available");
    expect(await routerRoute(prefix!)).toBeUndefined();
    const rules = await ipJson<{ iif?: string }>(VPC_NS, "-4", "rule", "show");
    expect(rules.filter((x) => x.iif === devB)).toEqual([]);
  });
});

describe("datapath: IPv6", () => {
  it("routes IPv6 addresses and a /80 to their ENIs, checks their sources, and follows an address to another node", async () => {
    const sim = await h.start(dualWorld());
    const c = new Cloud(sim);
    const ea = await eniOn(c, "i-a", NS_A);
    const eb = await eniOn(c, "i-b", NS_B);
    const v6 = async (eni: string, params: Record<string, string | number>) =>
      c.call<{ Ipv6Sets: { Ipv6Address: string[] }; Ipv6PrefixSets: { Ipv6Prefix: string[] } }>(
        "AssignIpv6Addresses",
        { NetworkInterfaceId: eni, ...params },
      );
    const [w, x] = (await v6(ea.id, { Ipv6AddressCount: 2 })).Ipv6Sets.Ipv6Address;
    const [y] = (await v6(eb.id, { Ipv6AddressCount: 1 })).Ipv6Sets.Ipv6Address;
    const devA = sim.datapath!.routerDevice(ea.id)!;
    const devB = sim.datapath!.routerDevice(eb.id)!;
    expect(await routerRoute(`${w}/128`, "-6")).toEqual(expect.objectContaining({ dev: devA }));
    expect(await routerRoute(`${y}/128`, "-6")).toEqual(expect.objectContaining({ dev: devB }));
    const gw = await ipJson<{ addr_info: { local: string }[] }>(
      VPC_NS,
      "-6",
      "addr",
      "show",
      "dev",
      devA,
      "scope",
      "global",
    );
    expect(gw[0]?.addr_info.map((i) => i.local).filter((l) => l !== undefined)).toEqual([GW6]);

    await ipBatchIn(NS_A, [`addr add ${w}/128 dev eth1 nodad`, `addr add ${x}/128 dev eth1 nodad`]);
    await ipBatchIn(NS_B, [`addr add ${y}/128 dev eth1 nodad`]);
    await ipv6On(NS_A, [w!, x!]);
    await ipv6On(NS_B, [y!]);
    const ab = await ping(NS_A, y!, w);
    expect(ab.ok, ab.out).toBe(true);
    expect(ab.ttl, "one routed hop").toBe(63);
    expect((await ping(NS_B, x!, y)).ok).toBe(true);

    // The source check: an unassigned address of the /64 leaving A's ENI is dropped.
    const z = "fd00:10:0:1::dead";
    await ipBatchIn(NS_A, [`addr add ${z}/128 dev eth1 nodad`]);
    await rule6(NS_A, z);
    let before = await v6Drops();
    expect((await ping(NS_A, y!, z)).ok, "an address on no ENI").toBe(false);
    expect(await v6Drops()).toBeGreaterThan(before);

    // An IPv6 /80 on B's ENI: routed via the ENI (fe80::1 → its MAC), its sources allowed from B only.
    await c.call(
      "CreateVSwitchCidrReservation",
      { VSwitchId: "vsw-a", IpVersion: "IPv6", VSwitchCidrReservationMask: 80 },
      { api: "vpc" },
    );
    await c.admin("settle", "POST");
    const [p6] = (await v6(eb.id, { Ipv6PrefixCount: 1 })).Ipv6PrefixSets.Ipv6Prefix;
    expect(p6).toMatch(/\/80$/);
    expect(await routerRoute(p6!, "-6")).toEqual(expect.objectContaining({ dev: devB, gateway: "fe80::1" }));
    const pod = `${p6!.split("/")[0]!.replace(/::$/, "")}::5`;
    await ipBatchIn(NS_B, [`addr add ${pod}/128 dev lo`]);
    await rule6(NS_B, p6!);
    const toPod = await ping(NS_A, pod, w);
    expect(toPod.ok, toPod.out).toBe(true);
    const fromPod = await ping(NS_B, w!, pod);
    expect(fromPod.ok, fromPod.out).toBe(true);
    // Another ENI's address (y, B's) leaving A's ENI is dropped.
    await ipBatchIn(NS_A, [`addr add ${y}/128 dev lo`]);
    await rule6(NS_A, y!);
    before = await v6Drops();
    expect((await ping(NS_A, pod, y)).ok, "another ENI's address").toBe(false);
    expect(await v6Drops()).toBeGreaterThan(before);
    await ipBatchIn(NS_A, [`addr del ${y}/128 dev lo`]);

    // Move x from A's ENI to B's: the router follows; A's copy is no longer a source A may use.
    await c.call("UnassignIpv6Addresses", { NetworkInterfaceId: ea.id, "Ipv6Address.1": x! });
    expect(await routerRoute(`${x}/128`, "-6")).toBeUndefined();
    expect((await ping(NS_B, x!, y)).ok).toBe(false);
    await v6(eb.id, { "Ipv6Address.1": x! });
    expect(await routerRoute(`${x}/128`, "-6")).toEqual(expect.objectContaining({ dev: devB }));
    await ipBatchIn(NS_A, [`addr del ${x}/128 dev eth1`]);
    await ipBatchIn(NS_B, [`addr add ${x}/128 dev eth1 nodad`]);
    await rule6(NS_B, x!);
    const moved = await ping(NS_A, x!, w);
    expect(moved.ok, moved.out).toBe(true);

    // Unassign the /80: gone from the router.
    await c.call("UnassignIpv6Addresses", { NetworkInterfaceId: eb.id, "Ipv6Prefix.1": p6! });
    expect(await routerRoute(p6!, "-6")).toBeUndefined();
    expect((await ping(NS_A, pod, w)).ok).toBe(false);
  });

  it("a world without IPv6 keeps IPv6 off in the router", async () => {
    const sim = await h.start(dpWorld());
    const r = await exec("ip", ["netns", "exec", VPC_NS, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]);
    expect(r.stdout.trim()).toBe("1");
    expect(sim.world.vSwitches.every((v) => v.ipv6Cidr === "")).toBe(true);
  });
});
