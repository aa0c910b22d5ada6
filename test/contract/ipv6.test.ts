// IPv6 on ENIs through the real pop-core client and Alibaba Cloud's V3 SDK:
// AssignIpv6Addresses / UnassignIpv6Addresses (Ipv6AddressCount or
// Ipv6Address.N; Ipv6PrefixCount or Ipv6Prefix.N for /80s from an IPv6
// reservation), Ipv6Sets and Ipv6PrefixSets in Describe, the documented
// errors (InvalidVSwitch.Ipv6NotTurnOn, InvalidOperation.Ipv6NotSupport,
// InvalidOperation.Ipv6CountExceeded, InvalidIp.*), EniIpv6AddressQuantity,
// the metadata's IPv6 items, and a vSwitch's ipv6Cidr in the world file.

import * as $Ecs from "@alicloud/ecs20140526";
import { describe, expect, it } from "vitest";
import { parseWorld } from "../../cloud/simulator/world.js";
import { EcsClient, sdkConfig } from "../helpers/sdk.js";
import {
  type Cloud,
  type DescribeInstanceTypesResponse,
  expectErrorShape,
  REGION,
  simHarness,
  worldJson,
} from "../helpers/sim.js";
import {
  assign6,
  dualWorld,
  GW6,
  ipv6PrefixesOf,
  ipv6sOf,
  prefixesOf,
  reserve,
  VPC6,
  VSW6,
} from "./dual-stack.js";

const h = simHarness();

/** The eight groups of an IPv6 address, as numbers. */
function groups6(ip: string): number[] {
  const [l = "", r] = ip.split("::");
  const left = l ? l.split(":") : [];
  const right = r ? r.split(":") : [];
  const fill = r === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...fill, ...right].map((g) => Number.parseInt(g, 16));
}

/** Whether an address lies in VSW6 (2408:4005:300:ff01::/64). */
const inVsw6 = (ip: string): boolean =>
  groups6(ip).slice(0, 4).join(",") === [0x2408, 0x4005, 0x300, 0xff01].join(",");

function errorOf(raw: unknown): string {
  try {
    parseWorld(raw);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("parseWorld accepted a bad world");
}

describe("AssignIpv6Addresses / UnassignIpv6Addresses", () => {
  it("Ipv6AddressCount gives random addresses of the vSwitch's /64: the documented response; Describe follows", async () => {
    const c = await h.start(dualWorld());
    const { NetworkInterfaceId: id } = await c.create();
    await c.attach(id, "i-c");
    const r = await assign6(c, id, { Ipv6AddressCount: 2 });
    expect(Object.keys(r).sort()).toEqual(["Ipv6PrefixSets", "Ipv6Sets", "NetworkInterfaceId", "RequestId"]);
    expect(r.NetworkInterfaceId).toBe(id);
    expect(r.Ipv6PrefixSets).toEqual({ Ipv6Prefix: [] });
    const got = r.Ipv6Sets.Ipv6Address;
    expect(got).toHaveLength(2);
    for (const ip of got) {
      expect(ip).toMatch(/^[0-9a-f:]+$/);
      expect(inVsw6(ip), ip).toBe(true);
      expect(ip).not.toBe(GW6);
    }
    const e = await c.mustEni(id);
    expect(e.Ipv6Sets).toEqual({ Ipv6Set: got.map((ip) => ({ Ipv6Address: ip })) });
    expect(e.Ipv6PrefixSets).toEqual({ Ipv6PrefixSet: [] });
    const byV6 = await c.describe({ "Ipv6Address.1": got[1]! });
    expect(byV6.NetworkInterfaceSets.NetworkInterfaceSet.map((x) => x.NetworkInterfaceId)).toEqual([id]);

    const u = await c.call("UnassignIpv6Addresses", { NetworkInterfaceId: id, "Ipv6Address.1": got[0]! });
    expect(Object.keys(u)).toEqual(["RequestId"]);
    expect(ipv6sOf(await c.mustEni(id))).toEqual([got[1]]);
    const again = await c.callError("UnassignIpv6Addresses", {
      NetworkInterfaceId: id,
      "Ipv6Address.1": got[0]!,
    });
    expect([again.code, again.status]).toEqual(["InvalidIp.IpUnassigned", 403]);
    expectErrorShape(again);
  });

  it("Ipv6Address.N: canonical text back; taken, repeated, outside or reserved addresses get the documented codes", async () => {
    const c = await h.start(dualWorld());
    const a = await c.create();
    const b = await c.create();
    const r = await assign6(c, a.NetworkInterfaceId, {
      "Ipv6Address.1": "2408:4005:0300:FF01:0000:0000:0000:0A01",
    });
    expect(r.Ipv6Sets.Ipv6Address).toEqual(["2408:4005:300:ff01::a01"]);
    const cases: [Record<string, string>, string, number][] = [
      [{ "Ipv6Address.1": "2408:4005:300:ff01::a01" }, "InvalidIp.IpAssigned", 403],
      [
        { "Ipv6Address.1": "2408:4005:300:ff01::b", "Ipv6Address.2": "2408:4005:300:ff01::B" },
        "InvalidIp.IpRepeated",
        403,
      ],
      [{ "Ipv6Address.1": "2408:4005:300:ff02::1" }, "InvalidIp.Address", 403], // outside the /64
      [{ "Ipv6Address.1": "2408:4005:300:ff01::" }, "InvalidIp.Address", 403], // the first address
      [{ "Ipv6Address.1": GW6 }, "InvalidIp.Address", 403], // the gateway (one of the last nine)
      [{ "Ipv6Address.1": "2408:4005:300:ff01:ffff:ffff:ffff:ffff" }, "InvalidIp.Address", 403],
      [{ "Ipv6Address.1": "10.0.1.9" }, "InvalidParameter", 400],
      [{ "Ipv6Address.1": "2408::1::2" }, "InvalidParameter", 400],
    ];
    for (const [params, code, status] of cases) {
      const e = await c.callError("AssignIpv6Addresses", {
        NetworkInterfaceId: b.NetworkInterfaceId,
        ...params,
      });
      expect([e.code, e.status], JSON.stringify(params)).toEqual([code, status]);
    }
    expect(ipv6sOf(await c.mustEni(b.NetworkInterfaceId))).toEqual([]);
  });

  it("counts are 1–10; addresses and prefixes never in one call; nothing asked is MissingParameter", async () => {
    const c = await h.start(dualWorld());
    const { NetworkInterfaceId: id } = await c.create();
    for (const params of [{ Ipv6AddressCount: 0 }, { Ipv6AddressCount: 11 }, { Ipv6PrefixCount: 11 }]) {
      const e = await c.callError("AssignIpv6Addresses", { NetworkInterfaceId: id, ...params });
      expect([e.code, e.status], JSON.stringify(params)).toEqual(["InvalidParameter", 400]);
    }
    for (const mix of [
      { Ipv6AddressCount: 1, "Ipv6Address.1": "2408:4005:300:ff01::5" },
      { Ipv6AddressCount: 1, Ipv6PrefixCount: 1 },
      { Ipv6PrefixCount: 1, "Ipv6Prefix.1": "2408:4005:300:ff01:1::/80" },
    ]) {
      const e = await c.callError("AssignIpv6Addresses", { NetworkInterfaceId: id, ...mix });
      expect([e.code, e.status], JSON.stringify(mix)).toEqual(["InvalidParameter.Conflict", 400]);
    }
    const none = await c.callError("AssignIpv6Addresses", { NetworkInterfaceId: id });
    expect([none.code, none.status]).toEqual(["MissingParameter", 400]);
    const unassignNone = await c.callError("UnassignIpv6Addresses", { NetworkInterfaceId: id });
    expect(unassignNone.code).toBe("MissingParameter");
    const region = await c.callError("AssignIpv6Addresses", {
      RegionId: "cn-nowhere",
      NetworkInterfaceId: id,
      Ipv6AddressCount: 1,
    });
    expect([region.code, region.status]).toEqual(["InvalidRegionId.NotFound", 404]);
    const eni = await c.callError("AssignIpv6Addresses", {
      NetworkInterfaceId: "eni-nope",
      Ipv6AddressCount: 1,
    });
    expect([eni.code, eni.status]).toEqual(["InvalidEniId.NotFound", 404]);
  });

  it("a vSwitch without IPv6: InvalidVSwitch.Ipv6NotTurnOn; an instance type without IPv6: InvalidOperation.Ipv6NotSupport", async () => {
    const c = await h.start(dualWorld());
    const j = await c.create({ VSwitchId: "vsw-j" });
    const off = await c.callError("AssignIpv6Addresses", {
      NetworkInterfaceId: j.NetworkInterfaceId,
      Ipv6AddressCount: 1,
    });
    expect([off.code, off.status]).toEqual(["InvalidVSwitch.Ipv6NotTurnOn", 403]);
    expectErrorShape(off);
    const created = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-j",
      "SecurityGroupIds.1": "sg-1",
      Ipv6AddressCount: 1,
    });
    expect(created.code).toBe("InvalidVSwitch.Ipv6NotTurnOn");
    expect(await c.describeAll({ VSwitchId: "vsw-j" })).toHaveLength(1);

    const onB = await c.create();
    await c.attach(onB.NetworkInterfaceId, "i-b"); // ecs.t.big: EniIpv6AddressQuantity 0
    const unsupported = await c.callError("AssignIpv6Addresses", {
      NetworkInterfaceId: onB.NetworkInterfaceId,
      Ipv6AddressCount: 1,
    });
    expect([unsupported.code, unsupported.status]).toEqual(["InvalidOperation.Ipv6NotSupport", 403]);
    const withV6 = await c.create({ Ipv6AddressCount: 1 });
    const attach = await c.callError("AttachNetworkInterface", {
      NetworkInterfaceId: withV6.NetworkInterfaceId,
      InstanceId: "i-b",
    });
    expect(attach.code).toBe("InvalidOperation.Ipv6NotSupport");
  });

  it("quotas: EniIpv6AddressQuantity when attached, 10 when not (InvalidOperation.Ipv6CountExceeded), on Assign and Attach", async () => {
    const c = await h.start(dualWorld());
    const small = await c.create();
    await c.attach(small.NetworkInterfaceId, "i-a"); // 1 IPv6 per ENI
    await assign6(c, small.NetworkInterfaceId, { Ipv6AddressCount: 1 });
    const over = await c.callError("AssignIpv6Addresses", {
      NetworkInterfaceId: small.NetworkInterfaceId,
      Ipv6AddressCount: 1,
    });
    expect([over.code, over.status]).toEqual(["InvalidOperation.Ipv6CountExceeded", 403]);
    expectErrorShape(over);
    const free = await c.create();
    expect(
      (await assign6(c, free.NetworkInterfaceId, { Ipv6AddressCount: 10 })).Ipv6Sets.Ipv6Address,
    ).toHaveLength(10);
    expect(
      (
        await c.callError("AssignIpv6Addresses", {
          NetworkInterfaceId: free.NetworkInterfaceId,
          Ipv6AddressCount: 1,
        })
      ).code,
    ).toBe("InvalidOperation.Ipv6CountExceeded");
    const two = await c.create({ Ipv6AddressCount: 2 });
    const attach = await c.callError("AttachNetworkInterface", {
      NetworkInterfaceId: two.NetworkInterfaceId,
      InstanceId: "i-a",
    });
    expect([attach.code, attach.status]).toEqual(["InvalidOperation.Ipv6CountExceeded", 403]);
    await c.attach(two.NetworkInterfaceId, "i-c");
    expect(ipv6sOf(await c.mustEni(two.NetworkInterfaceId))).toHaveLength(2);
  });

  it("IPv6 prefixes (/80) come from an IPv6 reservation and count toward the IPv6 quota", async () => {
    const c = await h.start(dualWorld());
    const { NetworkInterfaceId: id } = await c.create();
    await c.attach(id, "i-c"); // 6 IPv6 per ENI
    const none = await c.callError("AssignIpv6Addresses", { NetworkInterfaceId: id, Ipv6PrefixCount: 1 });
    expect(none.code).toBe("InvalidVSwitchId.IpNotEnough");
    await reserve(c, { IpVersion: "IPv6", VSwitchCidrReservationCidr: "2408:4005:300:ff01:10::/78" });
    const r = await assign6(c, id, { Ipv6PrefixCount: 2 });
    expect(r.Ipv6Sets).toEqual({ Ipv6Address: [] });
    expect(r.Ipv6PrefixSets.Ipv6Prefix).toEqual(["2408:4005:300:ff01:10::/80", "2408:4005:300:ff01:11::/80"]);
    expect(ipv6PrefixesOf(await c.mustEni(id))).toEqual(r.Ipv6PrefixSets.Ipv6Prefix);
    await assign6(c, id, { Ipv6AddressCount: 4 }); // 2 prefixes + 4 addresses = 6
    const full = await c.callError("AssignIpv6Addresses", {
      NetworkInterfaceId: id,
      "Ipv6Prefix.1": "2408:4005:300:ff01:12::/80",
    });
    expect(full.code).toBe("InvalidOperation.Ipv6CountExceeded");
    for (const bad of ["2408:4005:300:ff01:12::/64", "2408:4005:300:ff01:12::1/80", "10.0.1.64/28"]) {
      const e = await c.callError("AssignIpv6Addresses", { NetworkInterfaceId: id, "Ipv6Prefix.1": bad });
      expect(e.code, bad).toBe("InvalidParameter");
    }
    // An IPv6 address never comes from a reserved block (ff01:10::/78: a fifth group of 0x10–0x13).
    for (const ip of ipv6sOf(await c.mustEni(id))) expect(groups6(ip)[4]! >> 2, ip).not.toBe(0x10 >> 2);
    const mix = await c.callError("UnassignIpv6Addresses", {
      NetworkInterfaceId: id,
      "Ipv6Address.1": ipv6sOf(await c.mustEni(id))[0]!,
      "Ipv6Prefix.1": r.Ipv6PrefixSets.Ipv6Prefix[0]!,
    });
    expect(mix.code).toBe("InvalidParameter.Conflict");
    await c.call("UnassignIpv6Addresses", {
      NetworkInterfaceId: id,
      "Ipv6Prefix.1": r.Ipv6PrefixSets.Ipv6Prefix[0]!,
    });
    expect(ipv6PrefixesOf(await c.mustEni(id))).toEqual([r.Ipv6PrefixSets.Ipv6Prefix[1]]);
    const gone = await c.callError("UnassignIpv6Addresses", {
      NetworkInterfaceId: id,
      "Ipv6Prefix.1": r.Ipv6PrefixSets.Ipv6Prefix[0]!,
    });
    expect([gone.code, gone.status]).toEqual(["InvalidIp.IpUnassigned", 403]);
    expect(prefixesOf(await c.mustEni(id))).toEqual([]);
  });

  it("CreateNetworkInterface with Ipv6AddressCount; ClientToken on AssignIpv6Addresses", async () => {
    const c = await h.start(dualWorld());
    const r = await c.create({ Ipv6AddressCount: 3 });
    expect(ipv6sOf(r)).toHaveLength(3);
    expect(ipv6sOf(await c.mustEni(r.NetworkInterfaceId))).toEqual(ipv6sOf(r));
    const args = { NetworkInterfaceId: r.NetworkInterfaceId, Ipv6AddressCount: 2, ClientToken: "v6-token-1" };
    const first = await assign6(c, r.NetworkInterfaceId, args);
    const second = await assign6(c, r.NetworkInterfaceId, args);
    expect(second.Ipv6Sets).toEqual(first.Ipv6Sets);
    expect(ipv6sOf(await c.mustEni(r.NetworkInterfaceId))).toHaveLength(5);
    const mismatch = await c.callError("AssignIpv6Addresses", { ...args, Ipv6AddressCount: 1 });
    expect(mismatch.code).toBe("IdempotentParameterMismatch");
    // Deleting the ENI frees its addresses: they can be named again.
    await c.call("DeleteNetworkInterface", { NetworkInterfaceId: r.NetworkInterfaceId });
    const again = await c.create({ "Ipv6Address.1": ipv6sOf(r)[0]! });
    expect(ipv6sOf(again)).toEqual([ipv6sOf(r)[0]]);
  });
});

describe("DescribeInstanceTypes and DescribeVSwitches", () => {
  it("EniIpv6AddressQuantity per type (equal IPv4 and IPv6 counts for dual-stack multi-IP); a vSwitch's Ipv6CidrBlock", async () => {
    const c = await h.start(dualWorld());
    const t = await c.call<DescribeInstanceTypesResponse>("DescribeInstanceTypes", {});
    const byId = Object.fromEntries(t.InstanceTypes.InstanceType.map((x) => [x.InstanceTypeId, x]));
    expect(byId["ecs.t.dual"]).toMatchObject({ EniPrivateIpAddressQuantity: 6, EniIpv6AddressQuantity: 6 });
    expect(byId["ecs.t.big"]).toMatchObject({ EniIpv6AddressQuantity: 0 });
    expect(await c.vswitch("vsw-a")).toMatchObject({ EnabledIpv6: true, Ipv6CidrBlock: VSW6 });
    const j = await c.vswitch("vsw-j");
    expect(j.EnabledIpv6).toBe(false);
    expect(j.Ipv6CidrBlock).toBeUndefined();
  });
});

describe("metadata", () => {
  it("ipv6s ([a,b]; 404 without any), ipv6-prefixes, ipv6-gateway, vswitch-ipv6-cidr-block, vpc-ipv6-cidr-blocks", async () => {
    const c = await h.start(dualWorld());
    const eni = await c.create();
    await c.attach(eni.NetworkInterfaceId, "i-c");
    const item = (name: string): string => `meta-data/network/interfaces/macs/${eni.MacAddress}/${name}`;
    expect((await c.meta("i-c", item("ipv6s"))).status).toBe(404);
    expect(await c.metaOk("i-c", item("ipv6-gateway"))).toBe(GW6);
    expect(await c.metaOk("i-c", item("vswitch-ipv6-cidr-block"))).toBe(VSW6);
    expect(await c.metaOk("i-c", item("vpc-ipv6-cidr-blocks"))).toBe(`[${VPC6}]`);
    const got = (await assign6(c, eni.NetworkInterfaceId, { Ipv6AddressCount: 2 })).Ipv6Sets.Ipv6Address;
    expect(await c.metaOk("i-c", item("ipv6s"))).toBe(`[${got.join(",")}]`);
    await reserve(c, { IpVersion: "IPv6", VSwitchCidrReservationMask: 80 });
    const p = (await assign6(c, eni.NetworkInterfaceId, { Ipv6PrefixCount: 1 })).Ipv6PrefixSets.Ipv6Prefix;
    expect(await c.metaOk("i-c", item("ipv6-prefixes"))).toBe(p[0]);
    const listing = (await c.metaOk("i-c", item(""))).split("\n");
    for (const name of [
      "ipv6s",
      "ipv6-prefixes",
      "ipv6-gateway",
      "vswitch-ipv6-cidr-block",
      "vpc-ipv6-cidr-blocks",
    ])
      expect(listing).toContain(name);
    // An ENI in a vSwitch without IPv6 has no IPv6 gateway or vSwitch IPv6 block (the VPC's is still there).
    const tiny = await c.create({ VSwitchId: "vsw-tiny" });
    await c.attach(tiny.NetworkInterfaceId, "i-c");
    const tinyItem = (name: string): string => `meta-data/network/interfaces/macs/${tiny.MacAddress}/${name}`;
    expect((await c.meta("i-c", tinyItem("ipv6-gateway"))).status).toBe(404);
    expect((await c.meta("i-c", tinyItem("vswitch-ipv6-cidr-block"))).status).toBe(404);
    expect(await c.metaOk("i-c", tinyItem("vpc-ipv6-cidr-blocks"))).toBe(`[${VPC6}]`);
    expect((await c.metaOk("i-c", tinyItem(""))).split("\n")).not.toContain("ipv6-gateway");
  });
});

describe("Alibaba Cloud's V3 SDK (@alicloud/ecs20140526)", () => {
  it("assigns IPv6 addresses and IPv4 prefixes and reads Describe's Ipv6Sets and Ipv4PrefixSets into its models", async () => {
    const c: Cloud = await h.start(dualWorld());
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/28" });
    const sdk = new EcsClient(sdkConfig(c));
    const { NetworkInterfaceId: id } = await c.create();
    const v6 = await sdk.assignIpv6Addresses(
      new $Ecs.AssignIpv6AddressesRequest({ regionId: REGION, networkInterfaceId: id, ipv6AddressCount: 1 }),
    );
    const [ip] = v6.body?.ipv6Sets?.ipv6Address ?? [];
    expect(ip).toMatch(/^2408:4005:300:ff01:/);
    const v4 = await sdk.assignPrivateIpAddresses(
      new $Ecs.AssignPrivateIpAddressesRequest({
        regionId: REGION,
        networkInterfaceId: id,
        ipv4PrefixCount: 1,
      }),
    );
    expect(v4.body?.assignedPrivateIpAddressesSet?.ipv4PrefixSet?.ipv4Prefixes).toEqual(["10.0.1.64/28"]);
    const d = await sdk.describeNetworkInterfaces(
      new $Ecs.DescribeNetworkInterfacesRequest({ regionId: REGION, networkInterfaceId: [id] }),
    );
    const e = d.body?.networkInterfaceSets?.networkInterfaceSet?.[0];
    expect(e?.ipv6Sets?.ipv6Set?.map((x) => x.ipv6Address)).toEqual([ip]);
    expect(e?.ipv4PrefixSets?.ipv4PrefixSet?.map((x) => x.ipv4Prefix)).toEqual(["10.0.1.64/28"]);
    await sdk.unassignPrivateIpAddresses(
      new $Ecs.UnassignPrivateIpAddressesRequest({
        regionId: REGION,
        networkInterfaceId: id,
        ipv4Prefix: ["10.0.1.64/28"],
      }),
    );
    await sdk.unassignIpv6Addresses(
      new $Ecs.UnassignIpv6AddressesRequest({ regionId: REGION, networkInterfaceId: id, ipv6Address: [ip!] }),
    );
    const after = await c.mustEni(id);
    expect([prefixesOf(after), ipv6sOf(after)]).toEqual([[], []]);
  });
});

describe("the world file's ipv6Cidr", () => {
  const world = (vpc6: string, vsw6: string, extra: Record<string, unknown>[] = []) =>
    structuredClone(
      worldJson({
        vpc: { vpcId: "vpc-w", cidr: "10.0.0.0/16", ...(vpc6 ? { ipv6Cidr: vpc6 } : {}) },
        vSwitches: [
          {
            vSwitchId: "vsw-a",
            zoneId: "cn-hangzhou-k",
            cidr: "10.0.1.0/24",
            ...(vsw6 ? { ipv6Cidr: vsw6 } : {}),
          },
          { vSwitchId: "vsw-b", zoneId: "cn-hangzhou-k", cidr: "10.0.2.0/24" },
          ...extra,
        ],
        instances: [],
      }),
    );

  it("a vSwitch's /64 inside the VPC's /56, written back in canonical form", () => {
    const w = parseWorld(world("2408:4005:0300:FF00::/56", "2408:4005:300:FF01:0:0:0:0/64"));
    expect(w.vpc.ipv6Cidr).toBe(VPC6);
    expect(w.vSwitches[0]?.ipv6Cidr).toBe(VSW6);
    expect(w.vSwitches[1]?.ipv6Cidr).toBe("");
  });

  it("names the key of a bad ipv6Cidr", () => {
    expect(errorOf(world("", VSW6))).toMatch(/vSwitches\[0\]\.ipv6Cidr.*vpc\.ipv6Cidr/);
    expect(errorOf(world(VPC6, "2408:4005:300:ff00::/60"))).toMatch(/vSwitches\[0\]\.ipv6Cidr.*\/64/);
    expect(errorOf(world(VPC6, "2408:4005:300:ee01::/64"))).toMatch(/vSwitches\[0\]\.ipv6Cidr.*not inside/);
    expect(errorOf(world(VPC6, "2408:4005:300:ff01::1/64"))).toMatch(/vSwitches\[0\]\.ipv6Cidr.*host bits/);
    expect(errorOf(world("2408:4005:300::/48", ""))).toMatch(/vpc\.ipv6Cidr.*\/56/);
    expect(errorOf(world(VPC6, "10.0.1.0/24"))).toMatch(/vSwitches\[0\]\.ipv6Cidr/);
    expect(
      errorOf(
        world(VPC6, VSW6, [
          { vSwitchId: "vsw-c", zoneId: "cn-hangzhou-k", cidr: "10.0.3.0/24", ipv6Cidr: VSW6 },
        ]),
      ),
    ).toMatch(/vSwitches\[2\]\.ipv6Cidr.*overlaps vSwitch vsw-a/);
  });
});
