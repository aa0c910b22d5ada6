// Secondary private IPs: Assign / Unassign on attached and unattached ENIs,
// per-ENI quotas, vSwitch exhaustion with its reserved addresses, uniqueness
// across the VPC, and Operation.Conflict for concurrent changes.

import { describe, expect, it } from "vitest";
import {
  type AssignResponse,
  cidrAddresses,
  expectErrorShape,
  ipsOf,
  ipToInt,
  simHarness,
} from "../helpers/sim.js";

const h = simHarness();

describe("AssignPrivateIpAddresses / UnassignPrivateIpAddresses", () => {
  it("returns AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress[] and Describe follows", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id, PrivateIpAddress: primary } = await c.create();
    await c.attach(id);
    const r = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 2,
    });
    expect(r.RequestId).toBeTypeOf("string");
    expect(Object.keys(r).sort()).toEqual(["AssignedPrivateIpAddressesSet", "RequestId"]);
    expect(r.AssignedPrivateIpAddressesSet.NetworkInterfaceId).toBe(id);
    const got = r.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress;
    expect(Array.isArray(got)).toBe(true);
    expect(got).toHaveLength(2);
    expect(got).not.toContain(primary);
    const after = await c.mustEni(id);
    expect(ipsOf(after)).toEqual([primary, ...got]);
    expect(after.PrivateIpSets.PrivateIpSet.filter((s) => s.Primary).map((s) => s.PrivateIpAddress)).toEqual([
      primary,
    ]);

    const u = await c.call("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": got[0]!,
    });
    expect(u.RequestId).toBeTypeOf("string");
    expect(ipsOf(await c.mustEni(id))).toEqual([primary, got[1]]);
  });

  it("assigns explicit PrivateIpAddress.N and rejects a duplicate", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id } = await c.create();
    const r = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": "10.0.1.200",
    });
    expect(r.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress).toEqual(["10.0.1.200"]);
    const other = await c.create();
    const dup = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: other.NetworkInterfaceId,
      "PrivateIpAddress.1": "10.0.1.200",
    });
    expect(dup.code).toMatch(/^(InvalidPrivateIpAddress\.Duplicated|InvalidIp\.IpRepeated)$/);
    expect(dup.status).toBeLessThan(500);
    const outside = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: other.NetworkInterfaceId,
      "PrivateIpAddress.1": "10.0.1.255", // a reserved address
    });
    expect(outside.status).toBeGreaterThanOrEqual(400);
    expect(outside.status).toBeLessThan(500);
    expect(ipsOf(await c.mustEni(other.NetworkInterfaceId))).toHaveLength(1);
  });

  it("works on an Available (unattached) ENI, limited to 49 secondary IPs", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id } = await c.create();
    const r = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 5,
    });
    expect(r.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress).toHaveLength(5);
    const e = await c.mustEni(id);
    expect(e.Status).toBe("Available");
    expect(ipsOf(e)).toHaveLength(6);
    await c.call("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": ipsOf(e)[1]!,
      "PrivateIpAddress.2": ipsOf(e)[2]!,
    });
    expect(ipsOf(await c.mustEni(id))).toEqual([ipsOf(e)[0], ...ipsOf(e).slice(3)]);
    const over = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 47, // 3 secondaries + 47 > 49
    });
    expect([over.code, over.status]).toEqual(["InvalidOperation.Ipv4CountExceeded", 403]);
    expect(ipsOf(await c.mustEni(id))).toHaveLength(4);
  });

  it("Ipv4CountExceeded (403) on Assign beyond the instance type's per-ENI quota", async () => {
    const c = await h.start(); // i-a: 4 IPs per ENI, the primary included
    const { NetworkInterfaceId: id } = await c.create({ SecondaryPrivateIpAddressCount: 2 });
    await c.attach(id);
    await c.call("AssignPrivateIpAddresses", { NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: 1 });
    const free = (await c.vswitch("vsw-a")).AvailableIpAddressCount;
    const e = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect([e.code, e.status]).toEqual(["InvalidOperation.Ipv4CountExceeded", 403]);
    expectErrorShape(e);
    expect(ipsOf(await c.mustEni(id))).toHaveLength(4);
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(free);
    // The primary ENI has the same quota.
    const [primary] = await c.describeAll({ InstanceId: "i-a", Type: "Primary" });
    await c.call("AssignPrivateIpAddresses", {
      NetworkInterfaceId: primary!.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 3,
    });
    const p = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: primary!.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect(p.code).toBe("InvalidOperation.Ipv4CountExceeded");
  });

  it("rejects Assign/Unassign while the ENI is Attaching", async () => {
    const c = await h.start({ latencyMs: { AttachNetworkInterface: 200 } });
    const { NetworkInterfaceId: id, PrivateIpAddress: primary } = await c.create({
      SecondaryPrivateIpAddressCount: 1,
    });
    await c.call("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    const a = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect([a.code, a.status]).toEqual(["InvalidOperation.InvalidEniState", 400]);
    const secondary = ipsOf(await c.mustEni(id))[1]!;
    const u = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": secondary,
    });
    expect(u.code).toBe("InvalidOperation.InvalidEniState");
    await c.waitStatus(id, "InUse");
    expect(ipsOf(await c.mustEni(id))).toEqual([primary, secondary]);
  });

  it("Unassign of a free IP → InvalidIp.IpUnassigned (403); the primary IP cannot be unassigned", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id, PrivateIpAddress: primary } = await c.create({
      SecondaryPrivateIpAddressCount: 1,
    });
    const other = await c.create({ SecondaryPrivateIpAddressCount: 1 });
    const free = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": "10.0.1.222",
    });
    expect([free.code, free.status]).toEqual(["InvalidIp.IpUnassigned", 403]);
    expectErrorShape(free);
    // An IP that belongs to another ENI is not this ENI's to give back.
    const foreign = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": ipsOf(other)[1]!,
    });
    expect(foreign.code).toBe("InvalidIp.IpUnassigned");
    expect(ipsOf(await c.mustEni(other.NetworkInterfaceId))).toEqual(ipsOf(other));
    const prim = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      "PrivateIpAddress.1": primary,
    });
    expect(prim.code).toBe("InvalidIp.IpUnassigned");
    expect(prim.status).toBe(403);
    expect(ipsOf(await c.mustEni(id))[0]).toBe(primary);
    expect(ipsOf(await c.mustEni(id))).toHaveLength(2);
    const gone = await c.callError("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: "eni-nothere",
      "PrivateIpAddress.1": primary,
    });
    expect([gone.code, gone.status]).toEqual(["InvalidEniId.NotFound", 404]);
  });

  it("a concurrent Assign on the same ENI while one is in flight → Operation.Conflict", async () => {
    const c = await h.start({ latencyMs: { AssignPrivateIpAddresses: 200 } });
    const { NetworkInterfaceId: id } = await c.create();
    const results = await Promise.allSettled([
      c.call<AssignResponse>("AssignPrivateIpAddresses", {
        NetworkInterfaceId: id,
        SecondaryPrivateIpAddressCount: 1,
      }),
      c.call<AssignResponse>("AssignPrivateIpAddresses", {
        NetworkInterfaceId: id,
        SecondaryPrivateIpAddressCount: 1,
      }),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    const err = failed[0]!.reason as { code: string; entry: { response: { statusCode: number } } };
    expect([err.code, err.entry.response.statusCode]).toEqual(["Operation.Conflict", 403]);
    expect(ipsOf(await c.mustEni(id))).toHaveLength(2);
    // Once the first finished, the ENI takes changes again.
    await c.call("AssignPrivateIpAddresses", { NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: 1 });
    expect(ipsOf(await c.mustEni(id))).toHaveLength(3);
    // Other ENIs are not blocked by an in-flight Assign.
    const other = await c.create();
    const [a, b] = await Promise.all([
      c.call<AssignResponse>("AssignPrivateIpAddresses", {
        NetworkInterfaceId: id,
        SecondaryPrivateIpAddressCount: 1,
      }),
      c.call<AssignResponse>("AssignPrivateIpAddresses", {
        NetworkInterfaceId: other.NetworkInterfaceId,
        SecondaryPrivateIpAddressCount: 1,
      }),
    ]);
    expect(a.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress).toHaveLength(1);
    expect(b.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress).toHaveLength(1);
  });
});

describe("vSwitch addressing", () => {
  it("a /29 hands out exactly its 4 usable addresses, then InvalidVSwitchId.IpNotEnough (403)", async () => {
    const c = await h.start();
    const tiny = await c.vswitch("vsw-tiny");
    expect(tiny.CidrBlock).toBe("10.0.9.0/29");
    expect(tiny.AvailableIpAddressCount).toBe(4);

    const one = await c.create({ VSwitchId: "vsw-tiny" });
    expect((await c.vswitch("vsw-tiny")).AvailableIpAddressCount).toBe(3);
    const two = await c.create({ VSwitchId: "vsw-tiny", SecondaryPrivateIpAddressCount: 1 });
    expect((await c.vswitch("vsw-tiny")).AvailableIpAddressCount).toBe(1);

    // Asking for more than what is left fails without taking anything.
    const big = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-tiny",
      "SecurityGroupIds.1": "sg-1",
      SecondaryPrivateIpAddressCount: 1,
    });
    expect([big.code, big.status]).toEqual(["InvalidVSwitchId.IpNotEnough", 403]);
    expectErrorShape(big);
    const assignBig = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: one.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 2,
    });
    expect([assignBig.code, assignBig.status]).toEqual(["InvalidVSwitchId.IpNotEnough", 403]);
    expect((await c.vswitch("vsw-tiny")).AvailableIpAddressCount).toBe(1);

    await c.call("AssignPrivateIpAddresses", {
      NetworkInterfaceId: one.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect((await c.vswitch("vsw-tiny")).AvailableIpAddressCount).toBe(0);
    const full = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: two.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect([full.code, full.status]).toEqual(["InvalidVSwitchId.IpNotEnough", 403]);
    const create = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-tiny",
      "SecurityGroupIds.1": "sg-1",
    });
    expect(create.code).toBe("InvalidVSwitchId.IpNotEnough");

    const used = (await c.describeAll({ VSwitchId: "vsw-tiny" })).flatMap(ipsOf).sort();
    expect(used).toEqual(["10.0.9.1", "10.0.9.2", "10.0.9.3", "10.0.9.4"]);
    // Network address, gateway (.5) and the last two are reserved.
    for (const reserved of ["10.0.9.0", "10.0.9.5", "10.0.9.6", "10.0.9.7"])
      expect(used).not.toContain(reserved);

    // Freeing one address makes it available again, and only that one.
    const gave = ipsOf(await c.mustEni(one.NetworkInterfaceId))[1]!;
    await c.call("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: one.NetworkInterfaceId,
      "PrivateIpAddress.1": gave,
    });
    expect((await c.vswitch("vsw-tiny")).AvailableIpAddressCount).toBe(1);
    const again = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: two.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 1,
    });
    expect(again.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress).toEqual([gave]);
  });

  it("AvailableIpAddressCount of a /24 is 252 minus what is used; reserved addresses are never handed out", async () => {
    const c = await h.start({ instances: [] });
    expect((await c.vswitch("vsw-j")).AvailableIpAddressCount).toBe(252);
    const ids: string[] = [];
    let total = 0;
    for (let i = 0; i < 6; i++) {
      const r = await c.create({ VSwitchId: "vsw-j", SecondaryPrivateIpAddressCount: 41 });
      ids.push(r.NetworkInterfaceId);
      total += 42;
      expect((await c.vswitch("vsw-j")).AvailableIpAddressCount).toBe(252 - total);
    }
    expect(total).toBe(252);
    const e = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-j",
      "SecurityGroupIds.1": "sg-1",
    });
    expect(e.code).toBe("InvalidVSwitchId.IpNotEnough");
    const used = new Set((await c.describeAll({ VSwitchId: "vsw-j" })).flatMap(ipsOf));
    expect(used.size).toBe(252);
    const all = cidrAddresses("10.0.2.0/24");
    const unused = all.filter((ip) => !used.has(ip));
    expect(unused).toEqual(["10.0.2.0", "10.0.2.253", "10.0.2.254", "10.0.2.255"]);
  });

  it("IPs are unique across the VPC and MACs are unique", async () => {
    const c = await h.start();
    for (const vsw of ["vsw-a", "vsw-j", "vsw-tiny", "vsw-a", "vsw-j"])
      await c.create({ VSwitchId: vsw, SecondaryPrivateIpAddressCount: vsw === "vsw-tiny" ? 2 : 5 });
    const enis = await c.describeAll();
    expect(enis).toHaveLength(7);
    const ips = enis.flatMap(ipsOf);
    expect(new Set(ips).size).toBe(ips.length);
    const macs = enis.map((e) => e.MacAddress);
    expect(new Set(macs).size).toBe(macs.length);
    for (const m of macs) expect(m).toMatch(/^00:16:3e(:[0-9a-f]{2}){3}$/);
    for (const e of enis) {
      const cidr = { "vsw-a": "10.0.1.0/24", "vsw-j": "10.0.2.0/24", "vsw-tiny": "10.0.9.0/29" }[
        e.VSwitchId
      ]!;
      const base = ipToInt(cidr.split("/")[0]!);
      for (const ip of ipsOf(e)) {
        const n = ipToInt(ip) - base;
        expect(n, `${ip} in ${cidr}`).toBeGreaterThanOrEqual(1);
        expect(n, `${ip} in ${cidr}`).toBeLessThanOrEqual(2 ** (32 - Number(cidr.split("/")[1])) - 4);
      }
    }
  });
});
