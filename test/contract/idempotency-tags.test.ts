// ClientToken idempotency for CreateNetworkInterface and
// AssignPrivateIpAddresses, and ENI tags: set on Create, filtered on
// Describe, validated as ECS documents them.

import { describe, expect, it } from "vitest";
import { type AssignResponse, expectErrorShape, ipsOf, simHarness } from "../helpers/sim.js";

const h = simHarness();

describe("ClientToken", () => {
  it("Create: same token and parameters → the same ENI, nothing new allocated", async () => {
    const c = await h.start();
    const params = { SecondaryPrivateIpAddressCount: 2, ClientToken: "create-token-1", Description: "idem" };
    const first = await c.create(params);
    const free = (await c.vswitch("vsw-a")).AvailableIpAddressCount;
    const second = await c.create(params);
    expect(second.NetworkInterfaceId).toBe(first.NetworkInterfaceId);
    expect(ipsOf(second)).toEqual(ipsOf(first));
    expect(second.MacAddress).toBe(first.MacAddress);
    expect(second.RequestId).not.toBe(first.RequestId);
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(free);
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
    // A GET with the same token and parameters is the same request too.
    const viaGet = await c.call<{ NetworkInterfaceId: string }>(
      "CreateNetworkInterface",
      { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1", ...params },
      { method: "GET" },
    );
    expect(viaGet.NetworkInterfaceId).toBe(first.NetworkInterfaceId);
  });

  it("Create: same token with different parameters → IdempotentParameterMismatch (400)", async () => {
    const c = await h.start();
    await c.create({ ClientToken: "create-token-2", SecondaryPrivateIpAddressCount: 1 });
    const e = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
      SecondaryPrivateIpAddressCount: 2,
      ClientToken: "create-token-2",
    });
    expect([e.code, e.status]).toEqual(["IdempotentParameterMismatch", 400]);
    expectErrorShape(e);
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
    // A different token is a different request.
    const other = await c.create({ ClientToken: "create-token-3", SecondaryPrivateIpAddressCount: 1 });
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(2);
    expect(other.NetworkInterfaceId).toBeTypeOf("string");
  });

  it("Assign: same token and parameters → the same IPs, nothing new allocated", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: id } = await c.create();
    const params = { NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: 2, ClientToken: "assign-1" };
    const first = await c.call<AssignResponse>("AssignPrivateIpAddresses", params);
    const free = (await c.vswitch("vsw-a")).AvailableIpAddressCount;
    const second = await c.call<AssignResponse>("AssignPrivateIpAddresses", params);
    expect(second.AssignedPrivateIpAddressesSet).toEqual(first.AssignedPrivateIpAddressesSet);
    expect(ipsOf(await c.mustEni(id))).toHaveLength(3);
    expect((await c.vswitch("vsw-a")).AvailableIpAddressCount).toBe(free);

    const e = await c.callError("AssignPrivateIpAddresses", { ...params, SecondaryPrivateIpAddressCount: 1 });
    expect([e.code, e.status]).toEqual(["IdempotentParameterMismatch", 400]);
    const other = await c.create();
    const e2 = await c.callError("AssignPrivateIpAddresses", {
      ...params,
      NetworkInterfaceId: other.NetworkInterfaceId,
    });
    expect(e2.code).toBe("IdempotentParameterMismatch");
    expect(ipsOf(await c.mustEni(other.NetworkInterfaceId))).toHaveLength(1);
    expect(ipsOf(await c.mustEni(id))).toHaveLength(3);
  });

  it("Create: concurrent retries with one token make one ENI", async () => {
    const c = await h.start({ latencyMs: { CreateNetworkInterface: 100 } });
    const params = { ClientToken: "concurrent", SecondaryPrivateIpAddressCount: 1 };
    const results = await Promise.all([c.create(params), c.create(params), c.create(params)]);
    expect(new Set(results.map((r) => r.NetworkInterfaceId)).size).toBe(1);
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
  });

  it("a token is per action: the same string on Create and Assign does not collide", async () => {
    const c = await h.start();
    const r = await c.create({ ClientToken: "shared" });
    const a = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: r.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 1,
      ClientToken: "shared",
    });
    expect(a.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress).toHaveLength(1);
  });
});

describe("tags", () => {
  it("tags set on Create are returned and filter Describe (Tag.N.Key / Tag.N.Value)", async () => {
    const c = await h.start();
    const net = await c.create({
      "Tag.1.Key": "team",
      "Tag.1.Value": "net",
      "Tag.2.Key": "creator",
      "Tag.2.Value": "eniway",
    });
    const web = await c.create({ "Tag.1.Key": "team", "Tag.1.Value": "web" });
    const bare = await c.create();
    expect(net.Tags.Tag).toEqual([
      { TagKey: "team", TagValue: "net" },
      { TagKey: "creator", TagValue: "eniway" },
    ]);
    expect(bare.Tags).toEqual({ Tag: [] });
    const described = await c.mustEni(net.NetworkInterfaceId);
    expect(described.Tags.Tag).toEqual(net.Tags.Tag);

    const ids = async (p: Record<string, string>): Promise<string[]> =>
      (await c.describeAll(p)).map((e) => e.NetworkInterfaceId).sort();
    expect(await ids({ "Tag.1.Key": "team", "Tag.1.Value": "net" })).toEqual([net.NetworkInterfaceId]);
    expect(await ids({ "Tag.1.Key": "team" })).toEqual(
      [net.NetworkInterfaceId, web.NetworkInterfaceId].sort(),
    );
    expect(
      await ids({
        "Tag.1.Key": "team",
        "Tag.1.Value": "net",
        "Tag.2.Key": "creator",
        "Tag.2.Value": "eniway",
      }),
    ).toEqual([net.NetworkInterfaceId]);
    expect(
      await ids({ "Tag.1.Key": "team", "Tag.1.Value": "net", "Tag.2.Key": "creator", "Tag.2.Value": "x" }),
    ).toEqual([]);
    expect(await ids({ "Tag.1.Key": "nobody" })).toEqual([]);
    expect(bare.NetworkInterfaceId).toBeTypeOf("string");
  });

  it("a tag value may be empty", async () => {
    const c = await h.start();
    const r = await c.create({ "Tag.1.Key": "flag" });
    expect(r.Tags.Tag).toEqual([{ TagKey: "flag", TagValue: "" }]);
  });

  it("rejects duplicate keys, reserved prefixes and more than 20 tags, creating nothing", async () => {
    const c = await h.start();
    const base = { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" };
    const dup = await c.callError("CreateNetworkInterface", {
      ...base,
      "Tag.1.Key": "k",
      "Tag.1.Value": "a",
      "Tag.2.Key": "k",
      "Tag.2.Value": "b",
    });
    expect([dup.code, dup.status]).toEqual(["Duplicate.TagKey", 400]);
    expectErrorShape(dup);
    for (const key of ["aliyun", "aliyun-owned", "acs:thing", "http://x"]) {
      const e = await c.callError("CreateNetworkInterface", {
        ...base,
        "Tag.1.Key": key,
        "Tag.1.Value": "v",
      });
      expect([e.code, e.status], key).toEqual(["InvalidTagKey.Malformed", 400]);
    }
    const longKey = await c.callError("CreateNetworkInterface", { ...base, "Tag.1.Key": "k".repeat(129) });
    expect(longKey.code).toBe("InvalidTagKey.Malformed");
    const badValue = await c.callError("CreateNetworkInterface", {
      ...base,
      "Tag.1.Key": "k",
      "Tag.1.Value": "acs:v",
    });
    expect([badValue.code, badValue.status]).toEqual(["InvalidTagValue.Malformed", 400]);
    const many: Record<string, string> = {};
    for (let i = 1; i <= 21; i++) {
      many[`Tag.${i}.Key`] = `k${i}`;
      many[`Tag.${i}.Value`] = `v${i}`;
    }
    const quota = await c.callError("CreateNetworkInterface", { ...base, ...many });
    expect([quota.code, quota.status]).toEqual(["QuotaExceed.Tags", 403]);
    expect(await c.describeAll({ Type: "Secondary" })).toEqual([]);
    // Exactly 20 is fine.
    delete many["Tag.21.Key"];
    delete many["Tag.21.Value"];
    const twenty = await c.create(many);
    expect(twenty.Tags.Tag).toHaveLength(20);
  });
});
