// IPv4 prefixes (/28) through the real pop-core client: assigned and
// unassigned with AssignPrivateIpAddresses / UnassignPrivateIpAddresses
// (Ipv4PrefixCount or Ipv4Prefix.N) and CreateNetworkInterface
// (Ipv4PrefixCount), only from a vSwitch's Assigned CIDR reservations, one
// prefix counting as one address toward the ENI's quota, never mixed with
// single IPs in one call; Ipv4PrefixSets in Describe and in the metadata.

import { describe, expect, it } from "vitest";
import {
  type AssignResponse,
  type CreateResponse,
  type DescribeVSwitchesResponse,
  expectErrorShape,
  ipsOf,
  ipToInt,
  simHarness,
} from "../helpers/sim.js";
import { assignPrefixes, dualWorld, prefixesOf, reservation, reserve } from "./dual-stack.js";

const h = simHarness();

const inside = (ip: string, cidr: string): boolean => {
  const [base, len] = cidr.split("/");
  const size = 2 ** (32 - Number(len));
  const b = ipToInt(base!);
  return ipToInt(ip) >= b && ipToInt(ip) < b + size;
};

describe("AssignPrivateIpAddresses with prefixes", () => {
  it("Ipv4PrefixCount gives /28s from the reservation: the documented response, Describe and the reservation's counts follow", async () => {
    const c = await h.start(dualWorld());
    const vcr = await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/26" });
    const { NetworkInterfaceId: id, PrivateIpAddress: primary } = await c.create();
    await c.attach(id, "i-b");
    const r = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      Ipv4PrefixCount: 2,
    });
    expect(Object.keys(r).sort()).toEqual(["AssignedPrivateIpAddressesSet", "RequestId"]);
    expect(r.AssignedPrivateIpAddressesSet).toEqual({
      NetworkInterfaceId: id,
      PrivateIpSet: { PrivateIpAddress: [] },
      Ipv4PrefixSet: { Ipv4Prefixes: ["10.0.1.64/28", "10.0.1.80/28"] },
    });
    const e = await c.mustEni(id);
    expect(e.Ipv4PrefixSets).toEqual({
      Ipv4PrefixSet: [{ Ipv4Prefix: "10.0.1.64/28" }, { Ipv4Prefix: "10.0.1.80/28" }],
    });
    expect(ipsOf(e)).toEqual([primary]);
    expect(await reservation(c, vcr)).toMatchObject({ AssignedCidrCount: 2, AvailableCidrCount: 2 });

    // Named prefixes: one that is free, then the documented refusals.
    expect(await assignPrefixes(c, id, { "Ipv4Prefix.1": "10.0.1.112/28" })).toEqual(["10.0.1.112/28"]);
    const taken = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "Ipv4Prefix.1": "10.0.1.64/28",
    });
    expect([taken.code, taken.status]).toEqual(["InvalidIp.IpAssigned", 403]);
    expectErrorShape(taken);
    const outside = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "Ipv4Prefix.1": "10.0.1.16/28", // in the vSwitch, not in a reservation
    });
    expect([outside.code, outside.status]).toEqual(["InvalidIp.Address", 403]);
    const repeated = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "Ipv4Prefix.1": "10.0.1.96/28",
      "Ipv4Prefix.2": "10.0.1.96/28",
    });
    expect([repeated.code, repeated.status]).toEqual(["InvalidIp.IpRepeated", 403]);
    for (const bad of ["10.0.1.64/27", "10.0.1.65/28", "10.0.1.64", "fd00::/80"]) {
      const e2 = await c.callError("AssignPrivateIpAddresses", {
        NetworkInterfaceId: id,
        "Ipv4Prefix.1": bad,
      });
      expect([e2.code, e2.status], bad).toEqual(["InvalidParameter", 400]);
    }
    expect(prefixesOf(await c.mustEni(id))).toEqual(["10.0.1.64/28", "10.0.1.80/28", "10.0.1.112/28"]);
  });

  it("Ipv4PrefixCount is 1–10; a call never mixes single IPs and prefixes (InvalidParameter.Conflict)", async () => {
    const c = await h.start(dualWorld());
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/26" });
    const { NetworkInterfaceId: id } = await c.create();
    for (const n of [0, 11, -1]) {
      const e = await c.callError("AssignPrivateIpAddresses", { NetworkInterfaceId: id, Ipv4PrefixCount: n });
      expect([e.code, e.status], String(n)).toEqual(["InvalidParameter", 400]);
    }
    const eleven = Object.fromEntries(
      Array.from({ length: 11 }, (_, i) => [`Ipv4Prefix.${i + 1}`, "10.0.1.64/28"]),
    );
    expect((await c.callError("AssignPrivateIpAddresses", { NetworkInterfaceId: id, ...eleven })).code).toBe(
      "InvalidParameter",
    );
    const mixes = [
      { SecondaryPrivateIpAddressCount: 1, Ipv4PrefixCount: 1 },
      { "PrivateIpAddress.1": "10.0.1.20", "Ipv4Prefix.1": "10.0.1.64/28" },
      { SecondaryPrivateIpAddressCount: 1, "Ipv4Prefix.1": "10.0.1.64/28" },
      { Ipv4PrefixCount: 1, "Ipv4Prefix.1": "10.0.1.64/28" },
    ];
    for (const mix of mixes) {
      const e = await c.callError("AssignPrivateIpAddresses", { NetworkInterfaceId: id, ...mix });
      expect([e.code, e.status], JSON.stringify(mix)).toEqual(["InvalidParameter.Conflict", 400]);
      expectErrorShape(e);
    }
    const e = await c.mustEni(id);
    expect(prefixesOf(e)).toEqual([]);
    expect(ipsOf(e)).toHaveLength(1);
  });

  it("without an Assigned reservation, or when it is used up: InvalidVSwitchId.IpNotEnough, nothing assigned", async () => {
    const c = await h.start(dualWorld({ latencyMs: { CreateVSwitchCidrReservation: 300 } }));
    const { NetworkInterfaceId: id } = await c.create();
    const none = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      Ipv4PrefixCount: 1,
    });
    expect([none.code, none.status]).toEqual(["InvalidVSwitchId.IpNotEnough", 403]);
    // A reservation that is still being created gives nothing yet.
    await c.call(
      "CreateVSwitchCidrReservation",
      { VSwitchId: "vsw-a", VSwitchCidrReservationMask: 28 },
      { api: "vpc" },
    );
    const assigning = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      Ipv4PrefixCount: 1,
    });
    expect(assigning.code).toBe("InvalidVSwitchId.IpNotEnough");
    await c.admin("settle", "POST");
    // A /28 reservation holds one prefix: two at once fail whole, one works, the next fails.
    expect(
      (await c.callError("AssignPrivateIpAddresses", { NetworkInterfaceId: id, Ipv4PrefixCount: 2 })).code,
    ).toBe("InvalidVSwitchId.IpNotEnough");
    expect(prefixesOf(await c.mustEni(id))).toEqual([]);
    expect(await assignPrefixes(c, id, { Ipv4PrefixCount: 1 })).toHaveLength(1);
    expect(
      (await c.callError("AssignPrivateIpAddresses", { NetworkInterfaceId: id, Ipv4PrefixCount: 1 })).code,
    ).toBe("InvalidVSwitchId.IpNotEnough");
    // Another ENI of the vSwitch cannot take it either.
    const other = await c.create();
    const e = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: other.NetworkInterfaceId,
      "Ipv4Prefix.1": prefixesOf(await c.mustEni(id))[0]!,
    });
    expect(e.code).toBe("InvalidIp.IpAssigned");
  });

  it("a prefix counts as one address toward the ENI's quota (Ipv4CountExceeded, on Assign and on Attach)", async () => {
    const c = await h.start(dualWorld()); // i-a: 4 IPv4 per ENI, the primary included
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/26" });
    const { NetworkInterfaceId: id } = await c.create({ SecondaryPrivateIpAddressCount: 1 });
    await c.attach(id, "i-a");
    expect(await assignPrefixes(c, id, { Ipv4PrefixCount: 2 })).toHaveLength(2); // 2 IPs + 2 prefixes = 4
    const p = await c.callError("AssignPrivateIpAddresses", { NetworkInterfaceId: id, Ipv4PrefixCount: 1 });
    expect([p.code, p.status]).toEqual(["InvalidOperation.Ipv4CountExceeded", 403]);
    const ip = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect(ip.code).toBe("InvalidOperation.Ipv4CountExceeded");
    // Unattached: the primary, 2 prefixes and 2 secondary IPs are 5, over i-a's 4 but within i-b's 10.
    const big = await c.create({ Ipv4PrefixCount: 2 });
    await c.call("AssignPrivateIpAddresses", {
      NetworkInterfaceId: big.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 2,
    });
    const attach = await c.callError("AttachNetworkInterface", {
      NetworkInterfaceId: big.NetworkInterfaceId,
      InstanceId: "i-a",
    });
    expect([attach.code, attach.status]).toEqual(["InvalidOperation.Ipv4CountExceeded", 403]);
    expect((await c.mustEni(big.NetworkInterfaceId)).Status).toBe("Available");
    await c.attach(big.NetworkInterfaceId, "i-b");
  });
});

describe("UnassignPrivateIpAddresses with prefixes", () => {
  it("frees a prefix for reuse; a prefix not on the ENI is InvalidIp.IpUnassigned; no mixing with IPs", async () => {
    const c = await h.start(dualWorld());
    const vcr = await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/28" });
    const { NetworkInterfaceId: id, PrivateIpAddress: primary } = await c.create({
      SecondaryPrivateIpAddressCount: 1,
    });
    const [p] = await assignPrefixes(c, id, { Ipv4PrefixCount: 1 });
    expect(p).toBe("10.0.1.64/28");
    const other = await c.create();
    const notMine = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: other.NetworkInterfaceId,
      "Ipv4Prefix.1": p!,
    });
    expect([notMine.code, notMine.status]).toEqual(["InvalidIp.IpUnassigned", 403]);
    expectErrorShape(notMine);
    const mix = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": ipsOf(await c.mustEni(id))[1]!,
      "Ipv4Prefix.1": p!,
    });
    expect([mix.code, mix.status]).toEqual(["InvalidParameter.Conflict", 400]);
    const malformed = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "Ipv4Prefix.1": "10.0.1.64/29",
    });
    expect(malformed.code).toBe("InvalidParameter");
    expect(prefixesOf(await c.mustEni(id))).toEqual([p]);

    const u = await c.call("UnassignPrivateIpAddresses", { NetworkInterfaceId: id, "Ipv4Prefix.1": p! });
    expect(Object.keys(u)).toEqual(["RequestId"]);
    const e = await c.mustEni(id);
    expect(prefixesOf(e)).toEqual([]);
    expect(ipsOf(e)[0]).toBe(primary);
    expect(await reservation(c, vcr)).toMatchObject({ AssignedCidrCount: 0, AvailableCidrCount: 1 });
    const again = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "Ipv4Prefix.1": p!,
    });
    expect(again.code).toBe("InvalidIp.IpUnassigned");
    expect(await assignPrefixes(c, other.NetworkInterfaceId, { "Ipv4Prefix.1": p! })).toEqual([p]);
  });

  it("DeleteNetworkInterface gives its prefixes back", async () => {
    const c = await h.start(dualWorld());
    const vcr = await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/28" });
    const { NetworkInterfaceId: id } = await c.create({ Ipv4PrefixCount: 1 });
    expect(await reservation(c, vcr)).toMatchObject({ AssignedCidrCount: 1, AvailableCidrCount: 0 });
    await c.call("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect(await reservation(c, vcr)).toMatchObject({ AssignedCidrCount: 0, AvailableCidrCount: 1 });
  });
});

describe("CreateNetworkInterface with Ipv4PrefixCount", () => {
  it("creates the ENI with its primary IP and the prefixes; with secondary IPs too → Conflict; out of prefixes → nothing created", async () => {
    const c = await h.start(dualWorld());
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/27" });
    const r = await c.create({ Ipv4PrefixCount: 2 });
    expect(r.Ipv4PrefixSets).toEqual({
      Ipv4PrefixSet: [{ Ipv4Prefix: "10.0.1.64/28" }, { Ipv4Prefix: "10.0.1.80/28" }],
    });
    expect(ipsOf(r)).toHaveLength(1);
    expect(inside(r.PrivateIpAddress, "10.0.1.64/27")).toBe(false);
    expect(prefixesOf(await c.mustEni(r.NetworkInterfaceId))).toEqual(["10.0.1.64/28", "10.0.1.80/28"]);
    const conflict = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
      SecondaryPrivateIpAddressCount: 1,
      Ipv4PrefixCount: 1,
    });
    expect([conflict.code, conflict.status]).toEqual(["InvalidParameter.Conflict", 400]);
    const before = (await c.vswitch("vsw-a")).AvailableIpAddressCount;
    const out = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
      Ipv4PrefixCount: 1,
    });
    expect(out.code).toBe("InvalidVSwitchId.IpNotEnough");
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(before);
    const range = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
      Ipv4PrefixCount: 11,
    });
    expect(range.code).toBe("InvalidParameter");
  });
});

describe("single IPs and reserved CIDR blocks", () => {
  it("single IPs never come from a reserved block, which DescribeVSwitches no longer counts as available", async () => {
    const c = await h.start(dualWorld());
    const before = (await c.vswitch("vsw-a")).AvailableIpAddressCount;
    await reserve(c, { VSwitchCidrReservationMask: 26 });
    const [res] = (
      await c.call<{ VSwitchCidrReservations: { VSwitchCidrReservationCidr: string }[] }>(
        "ListVSwitchCidrReservations",
        { VSwitchId: "vsw-a" },
        { api: "vpc" },
      )
    ).VSwitchCidrReservations;
    const block = res!.VSwitchCidrReservationCidr;
    expect(block).toBe("10.0.1.64/26"); // the first /26 holds the vSwitch's first address
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(before - 64);
    const many: CreateResponse[] = [];
    for (let i = 0; i < 3; i++) many.push(await c.create({ SecondaryPrivateIpAddressCount: 40 }));
    const ips = many.flatMap(ipsOf);
    expect(ips.filter((ip) => inside(ip, block))).toEqual([]);
    const e = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: many[0]!.NetworkInterfaceId,
      "PrivateIpAddress.1": "10.0.1.70",
    });
    expect([e.code, e.status]).toEqual(["InvalidIp.Address", 403]);
    const v = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", { VSwitchId: "vsw-a" });
    expect(v.VSwitches.VSwitch[0]?.AvailableIpAddressCount).toBe(before - 64 - 123);
  });
});

describe("metadata", () => {
  it("network/interfaces/macs/MAC/ipv4-prefixes lists the prefixes, one a line; 404 without any", async () => {
    const c = await h.start(dualWorld());
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/27" });
    const eni = await c.create();
    await c.attach(eni.NetworkInterfaceId, "i-b");
    const path = `meta-data/network/interfaces/macs/${eni.MacAddress}/ipv4-prefixes`;
    expect((await c.meta("i-b", path)).status).toBe(404);
    expect(await c.metaOk("i-b", `meta-data/network/interfaces/macs/${eni.MacAddress}/`)).not.toContain(
      "ipv4-prefixes",
    );
    await assignPrefixes(c, eni.NetworkInterfaceId, { Ipv4PrefixCount: 2 });
    expect(await c.metaOk("i-b", path)).toBe("10.0.1.64/28\n10.0.1.80/28");
    expect(await c.metaOk("i-b", `meta-data/network/interfaces/macs/${eni.MacAddress}/`)).toContain(
      "ipv4-prefixes",
    );
  });
});

describe("ClientToken", () => {
  it("the same token and parameters give the first prefixes again; other parameters are a mismatch", async () => {
    const c = await h.start(dualWorld());
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/26" });
    const { NetworkInterfaceId: id } = await c.create();
    const args = { NetworkInterfaceId: id, Ipv4PrefixCount: 2, ClientToken: "prefix-token-1" };
    const first = await assignPrefixes(c, id, args);
    const second = await assignPrefixes(c, id, args);
    expect(second).toEqual(first);
    expect(prefixesOf(await c.mustEni(id))).toEqual(first);
    const e = await c.callError("AssignPrivateIpAddresses", { ...args, Ipv4PrefixCount: 1 });
    expect([e.code, e.status]).toEqual(["IdempotentParameterMismatch", 400]);
  });
});
