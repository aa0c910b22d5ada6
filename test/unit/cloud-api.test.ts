import { inspect } from "node:util";
import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CloudApi } from "../../cloud/api.js";
import { ramRoleCredentialsProvider } from "../../cloud/credentials.js";
import { CloudError } from "../../cloud/errors.js";
import { createMetadataClient } from "../../cloud/metadata.js";
import { InvalidArgumentError } from "../../cloud/validate.js";
import {
  AK,
  apiError,
  ECS,
  expectCalls,
  type Handler,
  memoryLogger,
  ok,
  recorder,
  SK,
  STS,
  testApi,
  VPC,
  wireEni,
} from "./cloud-helpers.js";

/** mswjs only treats Error instances as network errors. */
function netError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

let api: CloudApi | undefined;
const use = (a: CloudApi): CloudApi => {
  api = a;
  return a;
};

beforeAll(() => nock.disableNetConnect());
afterEach(async () => {
  await api?.close();
  api = undefined;
  nock.cleanAll();
});
afterAll(() => nock.enableNetConnect());

const createdEni: Handler = (p) => [
  200,
  {
    RequestId: "req-create",
    ...wireEni("eni-new1", { VSwitchId: p.get("VSwitchId") }),
  },
];

describe("wire parameters", () => {
  it("CreateNetworkInterface sends POST form params with repeated lists and tags, never in the URL", async () => {
    const rec = recorder();
    let path = "";
    const scope = nock(ECS)
      .post((uri) => {
        path = uri;
        return true;
      })
      .reply((_uri, body) => {
        rec.requests.push(new URLSearchParams(String(body)));
        return [200, JSON.stringify(createdEni(new URLSearchParams(String(body)))[1])];
      });
    const a = use(testApi());
    const eni = await a.createNetworkInterface({
      vSwitchId: "vsw-a",
      securityGroupIds: ["sg-1", "sg-2"],
      tags: { team: "net", creator: "eniway" },
      secondaryIpCount: 3,
      description: "made by eniway",
      name: "eniway-eni",
      clientToken: "tok-1",
    });
    scope.done();
    expect(path).toBe("/");
    const p = rec.requests[0]!;
    expect(p.get("Action")).toBe("CreateNetworkInterface");
    expect(p.get("Version")).toBe("2014-05-26");
    expect(p.get("RegionId")).toBe("cn-hangzhou");
    expect(p.get("VSwitchId")).toBe("vsw-a");
    expect(p.get("SecurityGroupIds.1")).toBe("sg-1");
    expect(p.get("SecurityGroupIds.2")).toBe("sg-2");
    expect(p.has("SecurityGroupId")).toBe(false);
    expect(p.get("Tag.1.Key")).toBe("creator");
    expect(p.get("Tag.1.Value")).toBe("eniway");
    expect(p.get("Tag.2.Key")).toBe("team");
    expect(p.get("Tag.2.Value")).toBe("net");
    expect(p.get("SecondaryPrivateIpAddressCount")).toBe("3");
    expect(p.get("Description")).toBe("made by eniway");
    expect(p.get("NetworkInterfaceName")).toBe("eniway-eni");
    expect(p.get("ClientToken")).toBe("tok-1");
    expect(p.get("AccessKeyId")).toBe(AK);
    expect(p.get("SecurityToken")).toBe(STS);
    expect(p.get("SignatureMethod")).toBe("HMAC-SHA1");
    expect(p.get("Signature")).toBeTruthy();
    expect(eni).toMatchObject({
      eniId: "eni-new1",
      status: "Available",
      type: "Secondary",
      instanceId: "",
      vSwitchId: "vsw-a",
      macAddress: "00:16:3e:00:00:01",
      primaryIp: "10.0.1.10",
      privateIps: ["10.0.1.10", "10.0.1.11"],
      securityGroupIds: ["sg-sim"],
      tags: { creator: "eniway" },
    });
  });

  it("CreateNetworkInterface omits SecondaryPrivateIpAddressCount when 0", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [createdEni]);
    await use(testApi()).createNetworkInterface({
      vSwitchId: "vsw-a",
      securityGroupIds: ["sg-1"],
      tags: {},
      secondaryIpCount: 0,
    });
    expect(rec.requests[0]!.has("SecondaryPrivateIpAddressCount")).toBe(false);
    expect(rec.requests[0]!.has("Tag.1.Key")).toBe(false);
  });

  it("Attach, Detach, Delete, Assign, Unassign and DescribeInstanceTypes send their documented params", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      ok(),
      ok(),
      ok(),
      ok({
        AssignedPrivateIpAddressesSet: {
          NetworkInterfaceId: "eni-a1",
          PrivateIpSet: { PrivateIpAddress: ["10.0.1.20", "10.0.1.21"] },
        },
      }),
      ok(),
      ok({
        NextToken: "",
        InstanceTypes: {
          InstanceType: [
            {
              InstanceTypeId: "ecs.g7.large",
              EniQuantity: 3,
              EniPrivateIpAddressQuantity: 6,
              EniIpv6AddressQuantity: 6,
            },
          ],
        },
      }),
    ]);
    const a = use(testApi());
    await a.attachNetworkInterface("eni-a1", "i-node-a");
    await a.detachNetworkInterface("eni-a1", "i-node-a");
    await a.deleteNetworkInterface("eni-a1");
    const ips = await a.assignPrivateIpAddresses({ eniId: "eni-a1", count: 2, clientToken: "tok-a" });
    await a.unassignPrivateIpAddresses("eni-a1", ["10.0.1.20", "10.0.1.21"]);
    const types = await a.describeInstanceTypes(["ecs.g7.large"]);
    const [attach, detach, del, assign, unassign, dit] = rec.requests;
    expect(Object.fromEntries(attach!)).toMatchObject({
      Action: "AttachNetworkInterface",
      NetworkInterfaceId: "eni-a1",
      InstanceId: "i-node-a",
      RegionId: "cn-hangzhou",
    });
    expect(Object.fromEntries(detach!)).toMatchObject({
      Action: "DetachNetworkInterface",
      NetworkInterfaceId: "eni-a1",
      InstanceId: "i-node-a",
    });
    expect(Object.fromEntries(del!)).toMatchObject({
      Action: "DeleteNetworkInterface",
      NetworkInterfaceId: "eni-a1",
    });
    expect(Object.fromEntries(assign!)).toMatchObject({
      Action: "AssignPrivateIpAddresses",
      NetworkInterfaceId: "eni-a1",
      SecondaryPrivateIpAddressCount: "2",
      ClientToken: "tok-a",
    });
    expect(ips).toEqual(["10.0.1.20", "10.0.1.21"]);
    expect(Object.fromEntries(unassign!)).toMatchObject({
      Action: "UnassignPrivateIpAddresses",
      NetworkInterfaceId: "eni-a1",
      "PrivateIpAddress.1": "10.0.1.20",
      "PrivateIpAddress.2": "10.0.1.21",
    });
    expect(Object.fromEntries(dit!)).toMatchObject({
      Action: "DescribeInstanceTypes",
      "InstanceTypes.1": "ecs.g7.large",
    });
    expect(types).toEqual([
      {
        instanceTypeId: "ecs.g7.large",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 6,
        eniIpv6AddressQuantity: 6,
        cpuCoreCount: 0,
      },
    ]);
  });

  it("IPv4 prefixes: Assign with Ipv4PrefixCount, Unassign with Ipv4Prefix.N, Create with Ipv4PrefixCount; Describe's and DescribeInstanceTypes' fields", async () => {
    const rec = recorder();
    const withPrefixes = (id: string) =>
      wireEni(id, {
        Ipv4PrefixSets: { Ipv4PrefixSet: [{ Ipv4Prefix: "10.0.1.64/28" }, { Ipv4Prefix: "10.0.1.80/28" }] },
      });
    expectCalls(ECS, rec, [
      ok({
        AssignedPrivateIpAddressesSet: {
          NetworkInterfaceId: "eni-a1",
          PrivateIpSet: { PrivateIpAddress: [] },
          Ipv4PrefixSet: { Ipv4Prefixes: ["10.0.1.64/28", "10.0.1.80/28"] },
        },
      }),
      ok(),
      ok(withPrefixes("eni-new1")),
      ok({ NextToken: "", NetworkInterfaceSets: { NetworkInterfaceSet: [withPrefixes("eni-a1")] } }),
      ok({
        NextToken: "",
        InstanceTypes: {
          InstanceType: [
            {
              InstanceTypeId: "ecs.g7.8xlarge",
              EniQuantity: 8,
              EniPrivateIpAddressQuantity: 20,
              CpuCoreCount: 32,
            },
          ],
        },
      }),
    ]);
    const a = use(testApi());
    const prefixes = await a.assignIpv4Prefixes({ eniId: "eni-a1", count: 2, clientToken: "tok-p" });
    expect(prefixes).toEqual(["10.0.1.64/28", "10.0.1.80/28"]);
    await a.unassignIpv4Prefixes("eni-a1", ["10.0.1.64/28", "10.0.1.80/28"]);
    const created = await a.createNetworkInterface({
      vSwitchId: "vsw-a",
      securityGroupIds: ["sg-1"],
      tags: {},
      secondaryIpCount: 0,
      ipv4PrefixCount: 2,
    });
    expect(created.ipv4Prefixes).toEqual(["10.0.1.64/28", "10.0.1.80/28"]);
    const [described] = await a.describeNetworkInterfaces({ eniIds: ["eni-a1"] });
    expect(described?.ipv4Prefixes).toEqual(["10.0.1.64/28", "10.0.1.80/28"]);
    const [type] = await a.describeInstanceTypes(["ecs.g7.8xlarge"]);
    expect(type?.cpuCoreCount).toBe(32);
    const [assign, unassign, create] = rec.requests;
    expect(Object.fromEntries(assign!)).toMatchObject({
      Action: "AssignPrivateIpAddresses",
      NetworkInterfaceId: "eni-a1",
      Ipv4PrefixCount: "2",
      ClientToken: "tok-p",
    });
    expect(assign!.has("SecondaryPrivateIpAddressCount")).toBe(false);
    expect(Object.fromEntries(unassign!)).toMatchObject({
      Action: "UnassignPrivateIpAddresses",
      "Ipv4Prefix.1": "10.0.1.64/28",
      "Ipv4Prefix.2": "10.0.1.80/28",
    });
    expect(unassign!.has("PrivateIpAddress.1")).toBe(false);
    expect(Object.fromEntries(create!)).toMatchObject({
      Action: "CreateNetworkInterface",
      Ipv4PrefixCount: "2",
    });
    expect(create!.has("SecondaryPrivateIpAddressCount")).toBe(false);
  });

  it("an answer with a malformed prefix is the cloud's invalid response", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      ok({
        AssignedPrivateIpAddressesSet: {
          NetworkInterfaceId: "eni-a1",
          Ipv4PrefixSet: { Ipv4Prefixes: ["10.0.1.65/28"] },
        },
      }),
    ]);
    const err = await use(testApi())
      .assignIpv4Prefixes({ eniId: "eni-a1", count: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudError);
    expect((err as CloudError).detail).toMatch(/10\.0\.1\.65\/28.*not an IPv4 \/28 prefix/);
  });

  it("rejects malformed identifiers before sending anything", async () => {
    const a = use(testApi());
    await expect(a.attachNetworkInterface("eni-a1&Action=Delete", "i-node-a")).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(a.deleteNetworkInterface("vsw-a")).rejects.toThrow(/invalid ENI id/);
    await expect(a.detachNetworkInterface("eni-a1", "node-a")).rejects.toThrow(/invalid instance id/);
    await expect(a.unassignPrivateIpAddresses("eni-a1", ["10.0.1.300"])).rejects.toThrow(/invalid IPv4/);
    await expect(
      a.createNetworkInterface({
        vSwitchId: "vs-a",
        securityGroupIds: ["sg-1"],
        tags: {},
        secondaryIpCount: 0,
      }),
    ).rejects.toThrow(/invalid vSwitch id/);
    await expect(
      a.createNetworkInterface({
        vSwitchId: "vsw-a",
        securityGroupIds: ["sg-1"],
        tags: { "acs:x": "y" },
        secondaryIpCount: 0,
      }),
    ).rejects.toThrow(/tag key/);
    await expect(a.assignPrivateIpAddresses({ eniId: "eni-a1", count: 0 })).rejects.toThrow(/count/);
    await expect(a.assignIpv4Prefixes({ eniId: "eni-a1", count: 11 })).rejects.toThrow(/count \(1\.\.10\)/);
    await expect(a.assignIpv4Prefixes({ eniId: "eni-a1", count: 0 })).rejects.toThrow(/count/);
    for (const bad of ["10.0.1.65/28", "10.0.1.64/27", "10.0.1.64", "fd00::/80"])
      await expect(a.unassignIpv4Prefixes("eni-a1", [bad]), bad).rejects.toThrow(/invalid IPv4 prefix/);
    const create = { vSwitchId: "vsw-a", securityGroupIds: ["sg-1"], tags: {} };
    await expect(
      a.createNetworkInterface({ ...create, secondaryIpCount: 1, ipv4PrefixCount: 1 }),
    ).rejects.toThrow(/cannot be combined/);
    await expect(
      a.createNetworkInterface({ ...create, secondaryIpCount: 0, ipv4PrefixCount: 11 }),
    ).rejects.toThrow(/ipv4PrefixCount/);
    await expect(a.describeNetworkInterfaces({ eniIds: ["eni-ok", "bad"] })).rejects.toThrow(
      /invalid ENI id/,
    );
    // nothing was intercepted, and net connect is disabled: any request would have failed differently
    expect(nock.pendingMocks()).toEqual([]);
  });
});

describe("DescribeNetworkInterfaces", () => {
  it("follows NextToken across 3 pages with MaxResults and the filters on every page", async () => {
    const rec = recorder();
    const page = (ids: string[], next: string): Handler =>
      ok({
        NextToken: next,
        NetworkInterfaceSets: { NetworkInterfaceSet: ids.map((id) => wireEni(id)) },
      });
    const scope = expectCalls(ECS, rec, [
      page(["eni-1", "eni-2"], "t1"),
      page(["eni-3", "eni-4"], "t2"),
      page(["eni-5"], ""),
    ]);
    const a = use(testApi({ pageSize: 2 }));
    const enis = await a.describeNetworkInterfaces({
      instanceId: "i-node-a",
      tags: { creator: "eniway" },
      status: "InUse",
      type: "Secondary",
      vSwitchId: "vsw-a",
    });
    scope.done();
    expect(enis.map((e) => e.eniId)).toEqual(["eni-1", "eni-2", "eni-3", "eni-4", "eni-5"]);
    expect(rec.requests.map((p) => p.get("NextToken"))).toEqual([null, "t1", "t2"]);
    for (const p of rec.requests) {
      expect(Object.fromEntries(p)).toMatchObject({
        Action: "DescribeNetworkInterfaces",
        MaxResults: "2",
        InstanceId: "i-node-a",
        "Tag.1.Key": "creator",
        "Tag.1.Value": "eniway",
        Status: "InUse",
        Type: "Secondary",
        VSwitchId: "vsw-a",
      });
    }
    expect(enis[0]).toMatchObject({ tags: { creator: "eniway" }, privateIps: ["10.0.1.10", "10.0.1.11"] });
  });

  it("stops on an empty page even if it carries a token, and uses MaxResults 100 by default", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      ok({ NextToken: "t1", NetworkInterfaceSets: { NetworkInterfaceSet: [wireEni("eni-1")] } }),
      ok({ NextToken: "t2", NetworkInterfaceSets: { NetworkInterfaceSet: [] } }),
    ]);
    const enis = await use(testApi()).describeNetworkInterfaces({});
    expect(enis).toHaveLength(1);
    expect(rec.requests).toHaveLength(2);
    expect(rec.requests[0]!.get("MaxResults")).toBe("100");
  });

  it("splits more than 100 ENI ids into chunks and sends nothing for an empty list", async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `eni-x${i}`);
    const rec = recorder();
    const echo: Handler = (p) => {
      const asked = [...p.entries()]
        .filter(([k]) => k.startsWith("NetworkInterfaceId."))
        .sort(([a], [b]) => Number(a.split(".")[1]) - Number(b.split(".")[1]))
        .map(([, v]) => v);
      return [
        200,
        {
          RequestId: "r",
          NextToken: "",
          NetworkInterfaceSets: { NetworkInterfaceSet: asked.map((id) => wireEni(id)) },
        },
      ];
    };
    expectCalls(ECS, rec, [echo, echo]);
    const a = use(testApi());
    const enis = await a.describeNetworkInterfaces({ eniIds: ids });
    expect(rec.requests).toHaveLength(2);
    expect(rec.requests[0]!.get("NetworkInterfaceId.100")).toBe("eni-x99");
    expect(rec.requests[0]!.has("NetworkInterfaceId.101")).toBe(false);
    expect(rec.requests[1]!.get("NetworkInterfaceId.1")).toBe("eni-x100");
    expect(rec.requests[1]!.get("NetworkInterfaceId.50")).toBe("eni-x149");
    expect(enis.map((e) => e.eniId)).toEqual(ids);
    expect(await a.describeNetworkInterfaces({ eniIds: [] })).toEqual([]);
    expect(rec.requests).toHaveLength(2);
  });

  it("skips an ENI in a state it does not model, keeps the rest", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      ok({
        NextToken: "",
        NetworkInterfaceSets: {
          NetworkInterfaceSet: [
            wireEni("eni-1", { Status: "Migrating" }),
            wireEni("eni-2", { Type: "", InstanceId: "", Attachment: { InstanceId: "i-x" } }),
          ],
        },
      }),
    ]);
    const enis = await use(testApi()).describeNetworkInterfaces({});
    expect(enis.map((e) => [e.eniId, e.type, e.instanceId])).toEqual([["eni-2", "Secondary", "i-x"]]);
  });
});

describe("DescribeVSwitches", () => {
  it("queries the VPC API once per vSwitch id", async () => {
    const rec = recorder();
    const vsw = (id: string, free: number) => ({
      VSwitchId: id,
      VpcId: "vpc-sim",
      ZoneId: "cn-hangzhou-k",
      CidrBlock: "10.0.1.0/24",
      AvailableIpAddressCount: free,
      Status: "Available",
    });
    const byId: Handler = (p) => [
      200,
      {
        RequestId: "r",
        TotalCount: 1,
        PageNumber: 1,
        PageSize: 50,
        VSwitches: { VSwitch: [vsw(p.get("VSwitchId")!, 7)] },
      },
    ];
    const scope = expectCalls(VPC, rec, [byId, byId]);
    const out = await use(testApi()).describeVSwitches({ vSwitchIds: ["vsw-a", "vsw-b"] });
    scope.done();
    expect(
      rec.requests.map((p) => [p.get("Action"), p.get("Version"), p.get("VSwitchId"), p.get("PageSize")]),
    ).toEqual([
      ["DescribeVSwitches", "2016-04-28", "vsw-a", "50"],
      ["DescribeVSwitches", "2016-04-28", "vsw-b", "50"],
    ]);
    expect(out.map((v) => [v.vSwitchId, v.availableIpAddressCount, v.cidrBlock])).toEqual([
      ["vsw-a", 7, "10.0.1.0/24"],
      ["vsw-b", 7, "10.0.1.0/24"],
    ]);
  });

  it("pages through a VPC with PageNumber until TotalCount", async () => {
    const rec = recorder();
    const items = Array.from({ length: 60 }, (_, i) => ({
      VSwitchId: `vsw-${i}`,
      VpcId: "vpc-sim",
      ZoneId: "z-1",
      CidrBlock: `10.${i}.0.0/24`,
      AvailableIpAddressCount: 1,
      Status: "Available",
    }));
    const page: Handler = (p) => {
      const n = Number(p.get("PageNumber"));
      return [
        200,
        {
          RequestId: "r",
          TotalCount: 60,
          PageNumber: n,
          PageSize: 50,
          VSwitches: { VSwitch: items.slice((n - 1) * 50, n * 50) },
        },
      ];
    };
    expectCalls(VPC, rec, [page, page]);
    const out = await use(testApi()).describeVSwitches({ vpcId: "vpc-sim" });
    expect(out).toHaveLength(60);
    expect(rec.requests.map((p) => [p.get("PageNumber"), p.get("VpcId")])).toEqual([
      ["1", "vpc-sim"],
      ["2", "vpc-sim"],
    ]);
  });
});

describe("ClientToken", () => {
  it("is identical across every retry of one Create, and differs between two Creates", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      apiError(400, "Throttling"),
      apiError(500, "InternalError"),
      createdEni,
      apiError(503, "ServiceUnavailable"),
      createdEni,
    ]);
    const a = use(testApi());
    const req = { vSwitchId: "vsw-a", securityGroupIds: ["sg-1"], tags: {}, secondaryIpCount: 1 };
    await a.createNetworkInterface(req);
    await a.createNetworkInterface(req);
    const tokens = rec.requests.map((p) => p.get("ClientToken"));
    expect(tokens).toHaveLength(5);
    expect(tokens[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(tokens[1]).toBe(tokens[0]);
    expect(tokens[2]).toBe(tokens[0]);
    expect(tokens[4]).toBe(tokens[3]);
    expect(tokens[3]).not.toBe(tokens[0]);
    // signature nonces differ per attempt: each retry is a fresh signed request
    expect(new Set(rec.requests.map((p) => p.get("SignatureNonce"))).size).toBe(5);
  });

  it("is identical across every retry of one Assign, and differs between two Assigns", async () => {
    const rec = recorder();
    const assigned = ok({
      AssignedPrivateIpAddressesSet: {
        NetworkInterfaceId: "eni-a1",
        PrivateIpSet: { PrivateIpAddress: ["10.0.1.30"] },
      },
    });
    expectCalls(ECS, rec, [
      apiError(403, "Operation.Conflict"),
      assigned,
      apiError(400, "Throttling.User"),
      assigned,
    ]);
    const a = use(testApi());
    await a.assignPrivateIpAddresses({ eniId: "eni-a1", count: 1 });
    await a.assignPrivateIpAddresses({ eniId: "eni-a1", count: 1 });
    const tokens = rec.requests.map((p) => p.get("ClientToken"));
    expect(tokens[0]).toBeTruthy();
    expect(tokens[1]).toBe(tokens[0]);
    expect(tokens[3]).toBe(tokens[2]);
    expect(tokens[2]).not.toBe(tokens[0]);
  });

  it("uses the caller's token on every attempt", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [apiError(500, "InternalError"), createdEni]);
    await use(testApi()).createNetworkInterface({
      vSwitchId: "vsw-a",
      securityGroupIds: ["sg-1"],
      tags: {},
      secondaryIpCount: 0,
      clientToken: "caller-token",
    });
    expect(rec.requests.map((p) => p.get("ClientToken"))).toEqual(["caller-token", "caller-token"]);
  });
});

describe("retry classes", () => {
  const retryable: [number, string][] = [
    [400, "Throttling"],
    [400, "Throttling.User"],
    [400, "Throttling.Api"],
    [500, "InternalError"],
    [503, "ServiceUnavailable"],
    [403, "Operation.Conflict"],
  ];
  for (const [status, code] of retryable) {
    it(`retries ${code}`, async () => {
      const rec = recorder();
      expectCalls(ECS, rec, [apiError(status, code), ok()]);
      await use(testApi()).attachNetworkInterface("eni-a1", "i-node-a");
      expect(rec.requests).toHaveLength(2);
    });
  }

  const fatal: [number, string][] = [
    [400, "InvalidParameter"],
    [403, "InvalidVSwitchId.IpNotEnough"],
    [400, "IdempotentParameterMismatch"],
    [403, "EniPerInstanceLimitExceeded"],
    [400, "InvalidOperation.InvalidEniState"],
  ];
  for (const [status, code] of fatal) {
    it(`does not retry ${code}, and surfaces code, requestId, httpStatus and action`, async () => {
      const rec = recorder();
      const scope = expectCalls(ECS, rec, [apiError(status, code, "RID-1"), ok()]);
      const err = await use(testApi())
        .attachNetworkInterface("eni-a1", "i-node-a")
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CloudError);
      const ce = err as CloudError;
      expect([ce.code, ce.requestId, ce.httpStatus, ce.action, ce.retryable]).toEqual([
        code,
        "RID-1",
        status,
        "AttachNetworkInterface",
        false,
      ]);
      expect(ce.hostId).toBe("ecs.test");
      expect(ce.message).toBe(`AttachNetworkInterface: ${code}: ${code} message (RequestId RID-1)`);
      expect(rec.requests).toHaveLength(1);
      expect(scope.isDone()).toBe(false);
    });
  }

  it("retries a 5xx with an unparseable body as HttpError.5xx, but not a 4xx one", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [() => [502, "<html>bad gateway</html>"], ok()]);
    const a = use(testApi());
    await a.attachNetworkInterface("eni-a1", "i-node-a");
    expect(rec.requests).toHaveLength(2);

    expectCalls(ECS, rec, [() => [404, "<html>not here</html>"], ok()]);
    const err = (await a.attachNetworkInterface("eni-a1", "i-node-a").catch((e: unknown) => e)) as CloudError;
    expect(err).toBeInstanceOf(CloudError);
    expect([err.code, err.httpStatus, err.retryable]).toEqual(["HttpError.404", 404, false]);
    expect(rec.requests).toHaveLength(3);
  });

  it("a non-2xx JSON body without Code is an HttpError too", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [() => [503, { RequestId: "r-503" }], ok()]);
    await use(testApi()).deleteNetworkInterface("eni-a1");
    expect(rec.requests).toHaveLength(2);
  });

  it("retries connection errors and read timeouts", async () => {
    const { logger, lines } = memoryLogger();
    const a = use(testApi({ timeoutMs: 100, logger }));
    const rec = recorder();
    nock(ECS).post("/").replyWithError(netError("ECONNRESET", "socket hang up"));
    expectCalls(ECS, rec, [ok()]);
    await a.attachNetworkInterface("eni-a1", "i-node-a");
    expect(rec.requests).toHaveLength(1);

    nock(ECS).post("/").delay(400).reply(200, { RequestId: "late" });
    expectCalls(ECS, rec, [ok()]);
    await a.attachNetworkInterface("eni-a1", "i-node-a");
    expect(rec.requests).toHaveLength(2);
    const codes = lines
      .map((l) => JSON.parse(l) as { level: string; code?: string })
      .filter((l) => l.level === "warn");
    expect(codes.map((l) => l.code)).toEqual(["ConnectionError", "RequestTimeout"]);
  });

  it("gives up within the time budget and rethrows the last error", async () => {
    const rec = recorder();
    expectCalls(
      ECS,
      rec,
      Array.from({ length: 50 }, () => apiError(400, "Throttling", "RID-T")),
    );
    const a = use(testApi({ retry: { baseMs: 5, capMs: 10, maxElapsedMs: 60, maxAttempts: 100 } }));
    const started = Date.now();
    const err = (await a.attachNetworkInterface("eni-a1", "i-node-a").catch((e: unknown) => e)) as CloudError;
    expect(err.code).toBe("Throttling");
    expect(err.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(rec.requests.length).toBeGreaterThan(1);
    expect(rec.requests.length).toBeLessThan(50);
  });

  it("logs each retry at warn with action, code, requestId and attempt, and no credentials", async () => {
    const { logger, lines } = memoryLogger();
    const rec = recorder();
    expectCalls(ECS, rec, [apiError(400, "Throttling", "RID-W"), ok()]);
    await use(testApi({ logger })).attachNetworkInterface("eni-a1", "i-node-a");
    const warn = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === "warn");
    expect(warn).toMatchObject({
      action: "AttachNetworkInterface",
      code: "Throttling",
      requestId: "RID-W",
      attempt: 1,
    });
    const all = lines.join("\n");
    for (const secret of [AK, SK, STS, rec.requests[0]!.get("Signature")!]) expect(all).not.toContain(secret);
  });
});

describe("already done counts as success", () => {
  it("Delete and Detach of an ENI that is gone succeed", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [apiError(404, "InvalidEniId.NotFound"), apiError(404, "InvalidEniId.NotFound")]);
    const a = use(testApi());
    await expect(a.deleteNetworkInterface("eni-gone")).resolves.toBeUndefined();
    await expect(a.detachNetworkInterface("eni-gone", "i-node-a")).resolves.toBeUndefined();
    expect(rec.actions()).toEqual(["DeleteNetworkInterface", "DetachNetworkInterface"]);
  });

  it("Attach of an ENI that is gone still fails", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [apiError(404, "InvalidEniId.NotFound")]);
    await expect(use(testApi()).attachNetworkInterface("eni-gone", "i-node-a")).rejects.toMatchObject({
      code: "InvalidEniId.NotFound",
      httpStatus: 404,
    });
  });

  it("Delete of an ENI in the wrong state fails", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [apiError(400, "InvalidOperation.InvalidEniState")]);
    await expect(use(testApi()).deleteNetworkInterface("eni-busy")).rejects.toMatchObject({
      code: "InvalidOperation.InvalidEniState",
    });
  });

  it("Unassign of an IP that is already free succeeds", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [apiError(403, "InvalidIp.IpUnassigned"), apiError(404, "InvalidEniId.NotFound")]);
    const a = use(testApi());
    await expect(a.unassignPrivateIpAddresses("eni-a1", ["10.0.1.5"])).resolves.toBeUndefined();
    await expect(a.unassignPrivateIpAddresses("eni-gone", ["10.0.1.5", "10.0.1.6"])).resolves.toBeUndefined();
  });

  it("a batch Unassign that hits one free IP frees the others one by one", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      apiError(403, "InvalidIp.IpUnassigned"),
      ok(),
      apiError(403, "InvalidIp.IpUnassigned"),
      ok(),
    ]);
    await use(testApi()).unassignPrivateIpAddresses("eni-a1", ["10.0.1.5", "10.0.1.6", "10.0.1.7"]);
    expect(
      rec.requests.map((p) => [...p.keys()].filter((k) => k.startsWith("PrivateIpAddress.")).length),
    ).toEqual([3, 1, 1, 1]);
    expect(rec.requests.slice(1).map((p) => p.get("PrivateIpAddress.1"))).toEqual([
      "10.0.1.5",
      "10.0.1.6",
      "10.0.1.7",
    ]);
  });

  it("Unassign of a prefix already free succeeds; a batch that hits one frees the others one by one", async () => {
    const rec = recorder();
    expectCalls(ECS, rec, [
      apiError(403, "InvalidIp.IpUnassigned"),
      apiError(403, "InvalidIp.IpUnassigned"),
      ok(),
      apiError(403, "InvalidIp.IpUnassigned"),
    ]);
    const a = use(testApi());
    await expect(a.unassignIpv4Prefixes("eni-a1", ["10.0.1.64/28"])).resolves.toBeUndefined();
    await a.unassignIpv4Prefixes("eni-a1", ["10.0.1.80/28", "10.0.1.96/28"]);
    expect(rec.requests.map((p) => [...p.keys()].filter((k) => k.startsWith("Ipv4Prefix.")).length)).toEqual([
      1, 2, 1, 1,
    ]);
  });

  it("Unassign of nothing sends nothing", async () => {
    await use(testApi()).unassignPrivateIpAddresses("eni-a1", []);
  });
});

describe("secrets never leak into errors or logs", () => {
  it("SignatureDoesNotMatch echoing the string to sign", async () => {
    const rec = recorder();
    const echo: Handler = (p) => [
      400,
      {
        RequestId: "RID-SIG",
        HostId: "ecs.test",
        Code: "SignatureDoesNotMatch",
        Message: `Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3D${AK}%26SecurityToken%3D${encodeURIComponent(encodeURIComponent(STS))} Signature=${p.get("Signature")} key ${SK}`,
        Recommend: `https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch&AccessKeyId=${AK}`,
      },
    ];
    expectCalls(ECS, rec, [echo]);
    const err = (await use(testApi())
      .deleteNetworkInterface("eni-a1")
      .catch((e: unknown) => e)) as CloudError;
    expect(err).toBeInstanceOf(CloudError);
    expect([err.code, err.requestId, err.httpStatus, err.action]).toEqual([
      "SignatureDoesNotMatch",
      "RID-SIG",
      400,
      "DeleteNetworkInterface",
    ]);
    const signature = rec.requests[0]!.get("Signature")!;
    const forms = [
      String(err),
      err.message,
      err.stack ?? "",
      JSON.stringify(err),
      inspect(err, { depth: 5 }),
    ];
    for (const text of forms) {
      for (const secret of [AK, SK, STS, encodeURIComponent(STS), signature, ECS])
        expect(text).not.toContain(secret);
    }
    expect(err.message).toContain("Specified signature is not matched");
    expect(err.recommend).toBe(
      "https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch&AccessKeyId=[redacted]",
    );
  });

  it("transport errors do not carry the URL", async () => {
    nock(ECS)
      .post("/")
      .times(2)
      .replyWithError(netError("ECONNREFUSED", `connect ECONNREFUSED ${ECS}/`));
    const err = (await use(testApi({ retry: { baseMs: 1, capMs: 1, maxAttempts: 2 } }))
      .deleteNetworkInterface("eni-a1")
      .catch((e: unknown) => e)) as CloudError;
    expect([err.code, err.httpStatus, err.retryable]).toEqual(["ConnectionError", 0, true]);
    expect(err.message).toBe("DeleteNetworkInterface: ConnectionError: connection failed (ECONNREFUSED)");
  });

  it("a failing credentials provider gives CredentialsUnavailable without retrying", async () => {
    let calls = 0;
    const a = use(
      testApi({
        credentials: {
          getCredentials: async () => {
            calls++;
            throw new Error("metadata down");
          },
        },
      }),
    );
    const err = (await a.deleteNetworkInterface("eni-a1").catch((e: unknown) => e)) as CloudError;
    expect([err.code, err.retryable, err.httpStatus]).toEqual(["CredentialsUnavailable", false, 0]);
    expect(err.message).toContain("metadata down");
    expect(calls).toBe(1);
  });
});

describe("credentials", () => {
  it("signs with the RAM role's STS credentials fetched from the metadata service", async () => {
    const META = "http://127.0.0.1:9470";
    nock(META).put("/meta/i-node-a/latest/api/token").reply(200, "T");
    nock(META).get("/meta/i-node-a/latest/meta-data/ram/security-credentials/").reply(200, "EniwayRole");
    nock(META)
      .get("/meta/i-node-a/latest/meta-data/ram/security-credentials/EniwayRole")
      .reply(200, {
        AccessKeyId: "STS.RAMAK",
        AccessKeySecret: "ram-secret",
        SecurityToken: "ram-token",
        Expiration: new Date(Date.now() + 3_600_000).toISOString(),
        Code: "Success",
      });
    const metadata = createMetadataClient({ endpoint: `${META}/meta/i-node-a` });
    const rec = recorder();
    expectCalls(ECS, rec, [ok(), ok()]);
    const a = use(testApi({ credentials: ramRoleCredentialsProvider({ metadata }) }));
    await a.deleteNetworkInterface("eni-a1");
    await a.deleteNetworkInterface("eni-a2");
    expect(rec.requests.map((p) => [p.get("AccessKeyId"), p.get("SecurityToken")])).toEqual([
      ["STS.RAMAK", "ram-token"],
      ["STS.RAMAK", "ram-token"],
    ]);
  });
});

describe("close", () => {
  it("refuses new calls after close", async () => {
    const a = testApi();
    await a.close();
    await expect(a.deleteNetworkInterface("eni-a1")).rejects.toThrow(/closed/);
  });
});
