// The three Describe actions: DescribeNetworkInterfaces paging (NextToken +
// MaxResults, PageNumber + PageSize) and filters, DescribeInstanceTypes, and
// VPC DescribeVSwitches.

import { describe, expect, it } from "vitest";
import {
  type Cloud,
  type DescribeInstanceTypesResponse,
  type DescribeVSwitchesResponse,
  expectErrorShape,
  OTHER_ZONE,
  simHarness,
  ZONE,
} from "../helpers/sim.js";

const h = simHarness();

/** 2 primaries + n secondary ENIs. */
async function withEnis(n: number, over: Record<string, unknown> = {}): Promise<{ c: Cloud; ids: string[] }> {
  const c = await h.start(over);
  for (let i = 0; i < n; i++) await c.create({ VSwitchId: i % 2 ? "vsw-j" : "vsw-a" });
  const ids = (await c.describeAll()).map((e) => e.NetworkInterfaceId);
  return { c, ids };
}

describe("DescribeNetworkInterfaces", () => {
  it("has the documented nesting for every ENI", async () => {
    const c = await h.start();
    await c.create({ SecondaryPrivateIpAddressCount: 1, "Tag.1.Key": "a", "Tag.1.Value": "b" });
    const r = await c.describe();
    expect(r.RequestId).toBeTypeOf("string");
    expect(Array.isArray(r.NetworkInterfaceSets.NetworkInterfaceSet)).toBe(true);
    expect(r.NetworkInterfaceSets.NetworkInterfaceSet).toHaveLength(3);
    for (const e of r.NetworkInterfaceSets.NetworkInterfaceSet) {
      expect(e).toMatchObject({
        NetworkInterfaceId: expect.stringMatching(/^eni-/),
        Status: expect.stringMatching(/^(Available|InUse)$/),
        Type: expect.stringMatching(/^(Primary|Secondary)$/),
        VpcId: "vpc-contract",
        ZoneId: expect.any(String),
        MacAddress: expect.stringMatching(/^00:16:3e:/),
        PrivateIpAddress: expect.stringMatching(/^10\.0\.\d+\.\d+$/),
        SecurityGroupIds: { SecurityGroupId: expect.any(Array) },
        PrivateIpSets: { PrivateIpSet: expect.any(Array) },
        Tags: { Tag: expect.any(Array) },
      });
      expect(e.PrivateIpSets.PrivateIpSet[0]).toEqual({
        PrivateIpAddress: e.PrivateIpAddress,
        Primary: true,
      });
    }
    const primary = r.NetworkInterfaceSets.NetworkInterfaceSet.find((e) => e.InstanceId === "i-a")!;
    expect(primary.SecurityGroupIds.SecurityGroupId).toEqual(["sg-1"]);
    expect(primary.Type).toBe("Primary");
  });

  it("NextToken + MaxResults across several pages gives every ENI exactly once", async () => {
    const { c, ids } = await withEnis(9); // 11 ENIs
    expect(ids).toHaveLength(11);
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    for (;;) {
      const r = await c.describe({ MaxResults: 3, NextToken: token || undefined });
      pages++;
      expect(r.NetworkInterfaceSets.NetworkInterfaceSet.length).toBeLessThanOrEqual(3);
      seen.push(...r.NetworkInterfaceSets.NetworkInterfaceSet.map((e) => e.NetworkInterfaceId));
      if (!r.NextToken) break;
      expect(r.NextToken).not.toBe(token);
      token = r.NextToken;
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBe(4);
    expect(seen.sort()).toEqual([...ids].sort());
    // Paging through a page size that divides the total still ends.
    const even = await c.describeAll({}, 11);
    expect(even.map((e) => e.NetworkInterfaceId).sort()).toEqual([...ids].sort());
  });

  it("ENIs created between pages do not make the cursor repeat or skip older ENIs", async () => {
    const { c, ids } = await withEnis(4); // 6 ENIs
    const first = await c.describe({ MaxResults: 3 });
    const added = await c.create();
    const seen = first.NetworkInterfaceSets.NetworkInterfaceSet.map((e) => e.NetworkInterfaceId);
    let token = first.NextToken;
    while (token) {
      const r = await c.describe({ MaxResults: 3, NextToken: token });
      seen.push(...r.NetworkInterfaceSets.NetworkInterfaceSet.map((e) => e.NetworkInterfaceId));
      token = r.NextToken;
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) expect(seen).toContain(id);
    expect(seen).toContain(added.NetworkInterfaceId);
  });

  it("PageNumber + PageSize returns TotalCount, PageNumber and PageSize", async () => {
    const { c, ids } = await withEnis(5); // 7 ENIs
    const seen: string[] = [];
    for (let page = 1; page <= 3; page++) {
      const r = await c.describe({ PageNumber: page, PageSize: 3 });
      expect(r.TotalCount).toBe(7);
      expect(r.PageNumber).toBe(page);
      expect(r.PageSize).toBe(3);
      expect(r.NetworkInterfaceSets.NetworkInterfaceSet).toHaveLength(page < 3 ? 3 : 1);
      seen.push(...r.NetworkInterfaceSets.NetworkInterfaceSet.map((e) => e.NetworkInterfaceId));
    }
    expect(seen.sort()).toEqual([...ids].sort());
    const beyond = await c.describe({ PageNumber: 4, PageSize: 3 });
    expect(beyond.NetworkInterfaceSets.NetworkInterfaceSet).toEqual([]);
    expect(beyond.TotalCount).toBe(7);
    const dflt = await c.describe();
    expect(dflt.PageSize).toBe(10);
    expect(dflt.PageNumber).toBe(1);
  });

  it("rejects a NextToken from a different query", async () => {
    const { c } = await withEnis(5);
    const r = await c.describe({ MaxResults: 2, Type: "Secondary" });
    expect(r.NextToken).not.toBe("");
    const e = await c.callError("DescribeNetworkInterfaces", {
      MaxResults: 2,
      Type: "Primary",
      NextToken: r.NextToken,
    });
    expect([e.code, e.status]).toEqual(["InvalidParameter", 400]);
    expectErrorShape(e);
    // The same query continues fine.
    const ok = await c.describe({ MaxResults: 2, Type: "Secondary", NextToken: r.NextToken });
    expect(ok.NetworkInterfaceSets.NetworkInterfaceSet).toHaveLength(2);
  });

  it("NetworkInterfaceId.N selects ENIs; a non-existent id gives an empty list", async () => {
    const { c, ids } = await withEnis(3);
    const none = await c.describe({ "NetworkInterfaceId.1": "eni-doesnotexist0" });
    expect(none.NetworkInterfaceSets.NetworkInterfaceSet).toEqual([]);
    expect(none.RequestId).toBeTypeOf("string");
    const two = await c.describe({ "NetworkInterfaceId.1": ids[1]!, "NetworkInterfaceId.2": ids[3]! });
    expect(two.NetworkInterfaceSets.NetworkInterfaceSet.map((e) => e.NetworkInterfaceId).sort()).toEqual(
      [ids[1], ids[3]].sort(),
    );
    const mixed = await c.describe({ "NetworkInterfaceId.1": ids[0]!, "NetworkInterfaceId.2": "eni-gone" });
    expect(mixed.NetworkInterfaceSets.NetworkInterfaceSet.map((e) => e.NetworkInterfaceId)).toEqual([ids[0]]);
  });

  it("filters by InstanceId, VSwitchId, Status and Type", async () => {
    const c = await h.start();
    const attaching = await c.create();
    const inUse = await c.create();
    const onJ = await c.create({ VSwitchId: "vsw-j" });
    const idle = await c.create();
    const [primaryA] = await c.describeAll({ InstanceId: "i-a", Type: "Primary" });
    const [primaryB] = await c.describeAll({ InstanceId: "i-b", Type: "Primary" });
    await c.attach(inUse.NetworkInterfaceId, "i-a");
    await c.knob("latency", { AttachNetworkInterface: 1000 });
    await c.call("AttachNetworkInterface", {
      NetworkInterfaceId: attaching.NetworkInterfaceId,
      InstanceId: "i-b",
    });
    const ids = async (p: Record<string, string>): Promise<string[]> =>
      (await c.describeAll(p)).map((e) => e.NetworkInterfaceId).sort();

    expect(await ids({ Status: "Attaching" })).toEqual([attaching.NetworkInterfaceId]);
    expect(await ids({ InstanceId: "i-b", Status: "Attaching" })).toEqual([attaching.NetworkInterfaceId]);
    expect(await ids({ InstanceId: "i-a" })).toEqual(
      [primaryA!.NetworkInterfaceId, inUse.NetworkInterfaceId].sort(),
    );
    expect(await ids({ InstanceId: "i-b" })).toEqual(
      [primaryB!.NetworkInterfaceId, attaching.NetworkInterfaceId].sort(),
    );
    expect(await ids({ VSwitchId: "vsw-j" })).toEqual([onJ.NetworkInterfaceId]);
    expect(await ids({ Status: "Available" })).toEqual(
      [onJ.NetworkInterfaceId, idle.NetworkInterfaceId].sort(),
    );
    expect(await ids({ Status: "InUse", Type: "Secondary" })).toEqual([inUse.NetworkInterfaceId]);
    expect(await ids({ Type: "Primary" })).toEqual(
      [primaryA!.NetworkInterfaceId, primaryB!.NetworkInterfaceId].sort(),
    );
    expect(await ids({ VpcId: "vpc-contract", VSwitchId: "vsw-a", Status: "Available" })).toEqual([
      idle.NetworkInterfaceId,
    ]);
    expect(await ids({ VpcId: "vpc-other" })).toEqual([]);
    expect(await ids({ InstanceId: "i-nope" })).toEqual([]);
    expect(await ids({ "PrivateIpAddress.1": onJ.PrivateIpAddress })).toEqual([onJ.NetworkInterfaceId]);
  });
});

describe("DescribeInstanceTypes", () => {
  it("returns InstanceTypes.InstanceType[] with the ENI quotas", async () => {
    const c = await h.start();
    const r = await c.call<DescribeInstanceTypesResponse>("DescribeInstanceTypes", { RegionId: undefined });
    expect(r.RequestId).toBeTypeOf("string");
    expect(r.NextToken).toBe("");
    const small = r.InstanceTypes.InstanceType.find((t) => t.InstanceTypeId === "ecs.t.small");
    expect(small).toMatchObject({
      InstanceTypeId: "ecs.t.small",
      EniQuantity: 3,
      EniPrivateIpAddressQuantity: 4,
      EniIpv6AddressQuantity: 1,
    });
    expect(r.InstanceTypes.InstanceType.map((t) => t.InstanceTypeId).sort()).toEqual([
      "ecs.t.big",
      "ecs.t.small",
    ]);
  });

  it("filters with InstanceTypes.N", async () => {
    const c = await h.start();
    const r = await c.call<DescribeInstanceTypesResponse>("DescribeInstanceTypes", {
      "InstanceTypes.1": "ecs.t.big",
    });
    expect(r.InstanceTypes.InstanceType).toHaveLength(1);
    expect(r.InstanceTypes.InstanceType[0]).toMatchObject({
      EniQuantity: 4,
      EniPrivateIpAddressQuantity: 10,
    });
    const none = await c.call<DescribeInstanceTypesResponse>("DescribeInstanceTypes", {
      "InstanceTypes.1": "ecs.nope",
    });
    expect(none.InstanceTypes.InstanceType).toEqual([]);
    expect(none.NextToken).toBe("");
  });

  it("pages with NextToken + MaxResults; NextToken is empty on the last page", async () => {
    const types = Array.from({ length: 5 }, (_, i) => ({
      instanceTypeId: `ecs.p.t${i}`,
      eniQuantity: 2 + i,
      eniPrivateIpAddressQuantity: 2,
    }));
    const c = await h.start({ instanceTypes: types, instances: [] });
    const seen: string[] = [];
    let token = "";
    const pages: number[] = [];
    do {
      const r = await c.call<DescribeInstanceTypesResponse>("DescribeInstanceTypes", {
        MaxResults: 2,
        NextToken: token || undefined,
      });
      pages.push(r.InstanceTypes.InstanceType.length);
      seen.push(...r.InstanceTypes.InstanceType.map((t) => t.InstanceTypeId));
      token = r.NextToken;
      expect(pages.length).toBeLessThan(10);
    } while (token);
    expect(pages).toEqual([2, 2, 1]);
    expect(seen.sort()).toEqual(types.map((t) => t.instanceTypeId).sort());
    // Exactly divisible: the last full page already has an empty NextToken.
    const four = await c.call<DescribeInstanceTypesResponse>("DescribeInstanceTypes", {
      "InstanceTypes.1": "ecs.p.t0",
      "InstanceTypes.2": "ecs.p.t1",
      MaxResults: 2,
    });
    expect(four.InstanceTypes.InstanceType).toHaveLength(2);
    expect(four.NextToken).toBe("");
  });
});

describe("DescribeVSwitches (VPC 2016-04-28)", () => {
  it("returns VSwitches.VSwitch[] with AvailableIpAddressCount, paging fields and filters", async () => {
    const c = await h.start();
    const r = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", {});
    expect(r.RequestId).toBeTypeOf("string");
    expect(r.TotalCount).toBe(3);
    expect(r.PageNumber).toBe(1);
    expect(r.PageSize).toBe(10);
    const a = r.VSwitches.VSwitch.find((v) => v.VSwitchId === "vsw-a");
    expect(a).toMatchObject({
      VSwitchId: "vsw-a",
      VpcId: "vpc-contract",
      ZoneId: ZONE,
      CidrBlock: "10.0.1.0/24",
      Status: "Available",
      AvailableIpAddressCount: 250, // 252 usable, two primary ENIs
    });
    expect(r.VSwitches.VSwitch.find((v) => v.VSwitchId === "vsw-tiny")?.AvailableIpAddressCount).toBe(4);

    const byZone = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", { ZoneId: OTHER_ZONE });
    expect(byZone.VSwitches.VSwitch.map((v) => v.VSwitchId)).toEqual(["vsw-j"]);
    const byVpc = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", { VpcId: "vpc-contract" });
    expect(byVpc.TotalCount).toBe(3);
    const otherVpc = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", { VpcId: "vpc-other" });
    expect(otherVpc.VSwitches.VSwitch).toEqual([]);
    const paged = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", {
      PageSize: 2,
      PageNumber: 2,
    });
    expect(paged.TotalCount).toBe(3);
    expect(paged.VSwitches.VSwitch).toHaveLength(1);
    const unknown = await c.call<DescribeVSwitchesResponse>("DescribeVSwitches", { VSwitchId: "vsw-nope" });
    expect(unknown.VSwitches.VSwitch).toEqual([]);
    expect(unknown.TotalCount).toBe(0);

    await c.create({ VSwitchId: "vsw-a", SecondaryPrivateIpAddressCount: 9 });
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(240);
  });

  it("also answers GET requests", async () => {
    const c = await h.start();
    const r = await c.call<DescribeVSwitchesResponse>(
      "DescribeVSwitches",
      { VSwitchId: "vsw-tiny" },
      { method: "GET" },
    );
    expect(r.VSwitches.VSwitch.map((v) => v.CidrBlock)).toEqual(["10.0.9.0/29"]);
  });
});
