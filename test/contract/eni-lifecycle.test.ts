// ENI lifecycle through the real pop-core client: Create → Available,
// Attach → Attaching → InUse, Detach → Detaching → Available, Delete only
// when Available; primary ENIs are protected; instance-type quotas hold.

import { describe, expect, it } from "vitest";
import { expectErrorShape, ipsOf, OTHER_ZONE, simHarness, ZONE } from "../helpers/sim.js";

const h = simHarness();

describe("CreateNetworkInterface", () => {
  it("returns the documented flat shape and an Available ENI", async () => {
    const c = await h.start();
    const r = await c.create({
      "SecurityGroupIds.1": "sg-1",
      "SecurityGroupIds.2": "sg-2",
      SecondaryPrivateIpAddressCount: 2,
      "Tag.1.Key": "team",
      "Tag.1.Value": "net",
      Description: "made by a test",
    });
    expect(r.RequestId).toMatch(/\S{8,}/);
    expect(r.NetworkInterfaceId).toMatch(/^eni-[a-z0-9]+$/);
    expect(r.Status).toBe("Available");
    expect(r.Type).toBe("Secondary");
    expect(r.VSwitchId).toBe("vsw-a");
    expect(r.VpcId).toBe("vpc-contract");
    expect(r.ZoneId).toBe(ZONE);
    expect(r.MacAddress).toMatch(/^00:16:3e(:[0-9a-f]{2}){3}$/);
    expect(r.SecurityGroupIds).toEqual({ SecurityGroupId: ["sg-1", "sg-2"] });
    expect(r.Tags).toEqual({ Tag: [{ TagKey: "team", TagValue: "net" }] });
    const set = r.PrivateIpSets.PrivateIpSet;
    expect(set).toHaveLength(3);
    expect(set.map((s) => Object.keys(s).sort())).toEqual(
      Array(3).fill(["Primary", "PrivateIpAddress"]) as string[][],
    );
    expect(set.map((s) => s.Primary)).toEqual([true, false, false]);
    expect(set[0]!.PrivateIpAddress).toBe(r.PrivateIpAddress);
    for (const ip of ipsOf(r)) expect(ip).toMatch(/^10\.0\.1\.\d+$/);

    // Describe shows the same ENI, unattached.
    const d = await c.mustEni(r.NetworkInterfaceId);
    expect(d.Status).toBe("Available");
    expect(d.InstanceId).toBe("");
    expect(d.MacAddress).toBe(r.MacAddress);
    expect(ipsOf(d)).toEqual(ipsOf(r));
    expect(d.CreationTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it("accepts SecurityGroupId alone but not together with SecurityGroupIds.N", async () => {
    const c = await h.start();
    const r = await c.create({ "SecurityGroupIds.1": undefined, SecurityGroupId: "sg-2" });
    expect(r.SecurityGroupIds.SecurityGroupId).toEqual(["sg-2"]);
    const e = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      SecurityGroupId: "sg-1",
      "SecurityGroupIds.1": "sg-2",
    });
    expect(e.code).toBe("InvalidParameter.Conflict");
    expect(e.status).toBe(400);
  });

  it("rejects unknown vSwitches, security groups and regions with the documented codes", async () => {
    const c = await h.start();
    const vsw = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-nope",
      "SecurityGroupIds.1": "sg-1",
    });
    expect([vsw.code, vsw.status]).toEqual(["InvalidVSwitchId.NotFound", 404]);
    expectErrorShape(vsw);
    const sg = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-nope",
    });
    expect([sg.code, sg.status]).toEqual(["InvalidSecurityGroupId.NotFound", 404]);
    const region = await c.callError("CreateNetworkInterface", {
      RegionId: "cn-nowhere",
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
    });
    expect([region.code, region.status]).toEqual(["InvalidRegionId.NotFound", 404]);
    // Nothing was created by the failed calls.
    expect(await c.describeAll({ Type: "Secondary" })).toEqual([]);
  });
});

describe("Attach and Detach are asynchronous", () => {
  it("Attach goes Available → Attaching → InUse after the configured latency", async () => {
    const c = await h.start({ latencyMs: { AttachNetworkInterface: 150 } });
    const { NetworkInterfaceId: id } = await c.create();
    const started = Date.now();
    const r = await c.call("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    expect(r.RequestId).toBeTypeOf("string");
    const first = await c.mustEni(id);
    expect(first.Status).toBe("Attaching");
    expect(first.InstanceId).toBe("i-a");
    const seen = await c.waitStatus(id, "InUse");
    expect(seen[0]).toBe("Attaching");
    expect(seen[seen.length - 1]).toBe("InUse");
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    const inUse = await c.mustEni(id);
    expect(inUse.InstanceId).toBe("i-a");
    // Filters see the attachment.
    const onA = await c.describeAll({ InstanceId: "i-a" });
    expect(onA.map((e) => e.NetworkInterfaceId)).toContain(id);
  });

  it("Detach goes InUse → Detaching → Available and clears InstanceId", async () => {
    const c = await h.start({ latencyMs: { DetachNetworkInterface: 150 } });
    const { NetworkInterfaceId: id } = await c.create();
    await c.attach(id);
    await c.call("DetachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    expect((await c.mustEni(id)).Status).toBe("Detaching");
    const seen = await c.waitStatus(id, "Available");
    expect(seen).toEqual(["Detaching", "Available"]);
    expect((await c.mustEni(id)).InstanceId).toBe("");
  });

  it("rejects Attach of an ENI that is not Available and Detach of one that is not InUse", async () => {
    const c = await h.start({ latencyMs: { AttachNetworkInterface: 150 } });
    const { NetworkInterfaceId: id } = await c.create();
    const early = await c.callError("DetachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    expect([early.code, early.status]).toEqual(["InvalidOperation.InvalidEniState", 400]);
    await c.call("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    const again = await c.callError("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-b" });
    expect([again.code, again.status]).toEqual(["InvalidOperation.InvalidEniState", 400]);
    await c.waitStatus(id, "InUse");
    const wrong = await c.callError("DetachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-b" });
    expect(wrong.code).toMatch(/^InvalidOperation\./);
    expect((await c.mustEni(id)).InstanceId).toBe("i-a");
  });

  it("rejects Attach across zones", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id, ZoneId } = await c.create({ VSwitchId: "vsw-j" });
    expect(ZoneId).toBe(OTHER_ZONE);
    const e = await c.callError("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    expect([e.code, e.status]).toEqual(["InvalidOperation.AvailabilityZoneMismatch", 403]);
    expect((await c.mustEni(id)).Status).toBe("Available");
  });

  it("names unknown ENIs and instances with 404s", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id } = await c.create();
    const eni = await c.callError("AttachNetworkInterface", {
      NetworkInterfaceId: "eni-doesnotexist",
      InstanceId: "i-a",
    });
    expect([eni.code, eni.status]).toEqual(["InvalidEniId.NotFound", 404]);
    expectErrorShape(eni);
    const ecs = await c.callError("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-nope" });
    expect([ecs.code, ecs.status]).toEqual(["InvalidEcsId.NotFound", 404]);
    const det = await c.callError("DetachNetworkInterface", {
      NetworkInterfaceId: "eni-gone",
      InstanceId: "i-a",
    });
    expect([det.code, det.status]).toEqual(["InvalidEniId.NotFound", 404]);
    const detEcs = await c.callError("DetachNetworkInterface", {
      NetworkInterfaceId: id,
      InstanceId: "i-nope",
    });
    expect([detEcs.code, detEcs.status]).toEqual(["InvalidEcsId.NotFound", 404]);
    const del = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: "eni-gone" });
    expect([del.code, del.status]).toEqual(["InvalidEniId.NotFound", 404]);
    const malformed = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: "not-an-eni" });
    expect(malformed.status).toBeLessThan(500);
    expect(malformed.status).toBeGreaterThanOrEqual(400);
  });
});

describe("DeleteNetworkInterface", () => {
  it("deletes only Available ENIs and gives the addresses back", async () => {
    const c = await h.start({ latencyMs: { AttachNetworkInterface: 100, DetachNetworkInterface: 100 } });
    const before = (await c.vswitch("vsw-a")).AvailableIpAddressCount;
    const { NetworkInterfaceId: id } = await c.create({ SecondaryPrivateIpAddressCount: 2 });
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(before - 3);

    await c.call("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    const attaching = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect([attaching.code, attaching.status]).toEqual(["InvalidOperation.InvalidEniState", 400]);
    await c.waitStatus(id, "InUse");
    const inUse = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect([inUse.code, inUse.status]).toEqual(["InvalidOperation.InvalidEniState", 400]);
    await c.call("DetachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    const detaching = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect(detaching.code).toBe("InvalidOperation.InvalidEniState");
    await c.waitStatus(id, "Available");

    const r = await c.call("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect(r.RequestId).toBeTypeOf("string");
    expect(await c.eni(id)).toBeUndefined();
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(before);
    const twice = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect(twice.code).toBe("InvalidEniId.NotFound");
  });

  it("protects the primary ENI from Delete and Detach", async () => {
    const c = await h.start();
    const [primary] = await c.describeAll({ InstanceId: "i-a", Type: "Primary" });
    expect(primary?.Status).toBe("InUse");
    const id = primary!.NetworkInterfaceId;
    const del = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect([del.code, del.status]).toEqual(["InvalidOperation.InvalidEniType", 403]);
    const det = await c.callError("DetachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    expect([det.code, det.status]).toEqual(["InvalidOperation.DetachPrimaryEniNotAllowed", 400]);
    const still = await c.mustEni(id);
    expect([still.Status, still.InstanceId, still.Type]).toEqual(["InUse", "i-a", "Primary"]);
  });
});

describe("instance-type quotas", () => {
  it("EniPerInstanceLimitExceeded once eniQuantity ENIs (the primary included) are attached", async () => {
    const c = await h.start(); // i-a: eniQuantity 3
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await c.create()).NetworkInterfaceId);
    await c.attach(ids[0]!);
    await c.attach(ids[1]!);
    const e = await c.callError("AttachNetworkInterface", { NetworkInterfaceId: ids[2]!, InstanceId: "i-a" });
    expect([e.code, e.status]).toEqual(["EniPerInstanceLimitExceeded", 403]);
    expectErrorShape(e);
    expect((await c.mustEni(ids[2]!)).Status).toBe("Available");
    expect(await c.describeAll({ InstanceId: "i-a" })).toHaveLength(3);
    // A detaching ENI still holds its slot; it frees once the ENI is Available.
    await c.knob("latency", { DetachNetworkInterface: 150 });
    await c.call("DetachNetworkInterface", { NetworkInterfaceId: ids[0]!, InstanceId: "i-a" });
    const busy = await c.callError("AttachNetworkInterface", {
      NetworkInterfaceId: ids[2]!,
      InstanceId: "i-a",
    });
    expect(busy.code).toBe("EniPerInstanceLimitExceeded");
    await c.waitStatus(ids[0]!, "Available");
    await c.attach(ids[2]!);
    expect(await c.describeAll({ InstanceId: "i-a" })).toHaveLength(3);
  });

  it("Ipv4CountExceeded on Attach of an ENI carrying more IPs than the type allows", async () => {
    const c = await h.start(); // i-a: 4 IPs per ENI
    const big = await c.create({ SecondaryPrivateIpAddressCount: 4 }); // 5 IPs
    const e = await c.callError("AttachNetworkInterface", {
      NetworkInterfaceId: big.NetworkInterfaceId,
      InstanceId: "i-a",
    });
    expect([e.code, e.status]).toEqual(["InvalidOperation.Ipv4CountExceeded", 403]);
    expect((await c.mustEni(big.NetworkInterfaceId)).Status).toBe("Available");
    // The bigger type takes it.
    await c.attach(big.NetworkInterfaceId, "i-b");
    const fits = await c.create({ SecondaryPrivateIpAddressCount: 3 }); // exactly 4
    await c.attach(fits.NetworkInterfaceId, "i-a");
  });
});
