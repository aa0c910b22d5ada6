// Parameter validation of all nine actions: every required parameter missing
// gives MissingParameter (400) naming it, malformed values give
// InvalidParameter (400) — never a 5xx — and every error body has exactly the
// documented keys.

import { beforeEach, describe, expect, it } from "vitest";
import { ALL_ACTIONS } from "../../cloud/types.js";
import { type Cloud, expectErrorShape, simHarness, toApiErr } from "../helpers/sim.js";

const h = simHarness();

type P = Record<string, string | number | undefined>;

describe("required parameters", () => {
  let c: Cloud;
  let eni: string;
  let ip: string;
  beforeEach(async () => {
    c = await h.start();
    const r = await c.create({ SecondaryPrivateIpAddressCount: 1 });
    eni = r.NetworkInterfaceId;
    ip = r.PrivateIpSets.PrivateIpSet[1]!.PrivateIpAddress;
  });

  const cases = (): [string, P, string][] => [
    [
      "CreateNetworkInterface",
      { RegionId: undefined, VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" },
      "RegionId",
    ],
    ["CreateNetworkInterface", { "SecurityGroupIds.1": "sg-1" }, "VSwitchId"],
    ["CreateNetworkInterface", { VSwitchId: "vsw-a" }, "SecurityGroupId"],
    [
      "AttachNetworkInterface",
      { RegionId: undefined, NetworkInterfaceId: eni, InstanceId: "i-a" },
      "RegionId",
    ],
    ["AttachNetworkInterface", { InstanceId: "i-a" }, "NetworkInterfaceId"],
    ["AttachNetworkInterface", { NetworkInterfaceId: eni }, "InstanceId"],
    [
      "DetachNetworkInterface",
      { RegionId: undefined, NetworkInterfaceId: eni, InstanceId: "i-a" },
      "RegionId",
    ],
    ["DetachNetworkInterface", { InstanceId: "i-a" }, "NetworkInterfaceId"],
    ["DetachNetworkInterface", { NetworkInterfaceId: eni }, "InstanceId"],
    ["DeleteNetworkInterface", { RegionId: undefined, NetworkInterfaceId: eni }, "RegionId"],
    ["DeleteNetworkInterface", {}, "NetworkInterfaceId"],
    ["DescribeNetworkInterfaces", { RegionId: undefined }, "RegionId"],
    [
      "AssignPrivateIpAddresses",
      { RegionId: undefined, NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: 1 },
      "RegionId",
    ],
    ["AssignPrivateIpAddresses", { SecondaryPrivateIpAddressCount: 1 }, "NetworkInterfaceId"],
    ["AssignPrivateIpAddresses", { NetworkInterfaceId: eni }, "SecondaryPrivateIpAddressCount"],
    [
      "UnassignPrivateIpAddresses",
      { RegionId: undefined, NetworkInterfaceId: eni, "PrivateIpAddress.1": ip },
      "RegionId",
    ],
    ["UnassignPrivateIpAddresses", { "PrivateIpAddress.1": ip }, "NetworkInterfaceId"],
    ["UnassignPrivateIpAddresses", { NetworkInterfaceId: eni }, "PrivateIpAddress"],
    ["DescribeVSwitches", { RegionId: undefined }, "RegionId"],
  ];

  it("each missing required parameter → MissingParameter (400) naming it, and nothing changes", async () => {
    const before = await c.admin<{ networkInterfaces: unknown[] }>("state");
    const list = cases();
    expect(new Set(list.map(([a]) => a)).size).toBe(8); // DescribeInstanceTypes has no required parameter
    for (const [action, params, name] of list) {
      const e = await c.callError(action, params);
      expect([e.code, e.status], `${action} without ${name}`).toEqual(["MissingParameter", 400]);
      expect(e.message, `${action} without ${name}`).toContain(name);
      expectErrorShape(e);
    }
    const after = await c.admin<{ networkInterfaces: unknown[] }>("state");
    expect(after.body.networkInterfaces).toEqual(before.body.networkInterfaces);
  });

  it("an empty value counts as missing", async () => {
    const e = await c.callError("DeleteNetworkInterface", { NetworkInterfaceId: "" });
    expect([e.code, e.status]).toEqual(["MissingParameter", 400]);
  });

  it("DescribeInstanceTypes needs no parameter at all", async () => {
    const r = await c.call<{ InstanceTypes: { InstanceType: unknown[] } }>("DescribeInstanceTypes", {
      RegionId: undefined,
    });
    expect(r.InstanceTypes.InstanceType).toHaveLength(2);
  });
});

describe("malformed values → InvalidParameter (400), never 5xx", () => {
  it("rejects every malformed value with a 400 naming the parameter", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: eni } = await c.create();
    const create = { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" };
    const cases: [string, P, string][] = [
      [
        "CreateNetworkInterface",
        { ...create, SecondaryPrivateIpAddressCount: "abc" },
        "SecondaryPrivateIpAddressCount",
      ],
      [
        "CreateNetworkInterface",
        { ...create, SecondaryPrivateIpAddressCount: "-1" },
        "SecondaryPrivateIpAddressCount",
      ],
      [
        "CreateNetworkInterface",
        { ...create, SecondaryPrivateIpAddressCount: "1.5" },
        "SecondaryPrivateIpAddressCount",
      ],
      [
        "CreateNetworkInterface",
        { ...create, SecondaryPrivateIpAddressCount: "50" },
        "SecondaryPrivateIpAddressCount",
      ],
      ["CreateNetworkInterface", { ...create, ClientToken: "x".repeat(65) }, "ClientToken"],
      ["CreateNetworkInterface", { ...create, Description: "http://example.com" }, "Description"],
      [
        "CreateNetworkInterface",
        { ...create, NetworkInterfaceName: "9starts-with-digit" },
        "NetworkInterfaceName",
      ],
      [
        "AssignPrivateIpAddresses",
        { NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: "abc" },
        "SecondaryPrivateIpAddressCount",
      ],
      [
        "AssignPrivateIpAddresses",
        { NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: "0" },
        "SecondaryPrivateIpAddressCount",
      ],
      [
        "AssignPrivateIpAddresses",
        { NetworkInterfaceId: eni, "PrivateIpAddress.11": "10.0.1.9" },
        "PrivateIpAddress",
      ],
      ["DescribeNetworkInterfaces", { MaxResults: "0" }, "MaxResults"],
      ["DescribeNetworkInterfaces", { MaxResults: "501" }, "MaxResults"],
      ["DescribeNetworkInterfaces", { MaxResults: "ten" }, "MaxResults"],
      ["DescribeNetworkInterfaces", { PageSize: "101" }, "PageSize"],
      ["DescribeNetworkInterfaces", { PageSize: "0" }, "PageSize"],
      ["DescribeNetworkInterfaces", { PageNumber: "0" }, "PageNumber"],
      ["DescribeNetworkInterfaces", { Status: "Sleeping" }, "Status"],
      ["DescribeNetworkInterfaces", { Type: "Tertiary" }, "Type"],
      ["DescribeNetworkInterfaces", { NextToken: "not-a-token" }, "NextToken"],
      ["DescribeNetworkInterfaces", { "NetworkInterfaceId.101": eni }, "NetworkInterfaceId"],
      ["DescribeInstanceTypes", { MaxResults: "0" }, "MaxResults"],
      ["DescribeInstanceTypes", { MaxResults: "x" }, "MaxResults"],
      ["DescribeInstanceTypes", { NextToken: "%%%" }, "NextToken"],
      ["DescribeVSwitches", { PageSize: "51" }, "PageSize"],
      ["DescribeVSwitches", { PageNumber: "abc" }, "PageNumber"],
      ["DescribeVSwitches", { IsDefault: "maybe" }, "IsDefault"],
      ["CreateNetworkInterface", { ...create, PrimaryIpAddress: "10.0.1.999" }, "PrimaryIpAddress"],
      ["CreateNetworkInterface", { ...create, "PrivateIpAddress.1": "abc" }, "PrivateIpAddress"],
      [
        "AssignPrivateIpAddresses",
        { NetworkInterfaceId: eni, "PrivateIpAddress.1": "10.0.1" },
        "PrivateIpAddress",
      ],
      [
        "UnassignPrivateIpAddresses",
        { NetworkInterfaceId: eni, "PrivateIpAddress.1": "10.0.1.5/32" },
        "PrivateIpAddress",
      ],
    ];
    for (const [action, params, name] of cases) {
      const e = await c.callError(action, params);
      const what = `${action} ${JSON.stringify(params)}`;
      expect([e.code, e.status], what).toEqual(["InvalidParameter", 400]);
      expect(e.message, what).toContain(name);
      expectErrorShape(e);
    }
    // The one ENI created above is all there is.
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
  });

  it("odd values in any parameter never produce a 5xx", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: eni } = await c.create();
    const odd = [
      "",
      "abc",
      "-1",
      "1e3",
      "0x10",
      "99999999999999999999",
      "10.0.1",
      "10.0.1.999",
      " 1",
      "%",
      "eni-",
      "a".repeat(300),
    ];
    const targets: [string, P, string[]][] = [
      [
        "CreateNetworkInterface",
        { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" },
        [
          "PrimaryIpAddress",
          "PrivateIpAddress.1",
          "SecondaryPrivateIpAddressCount",
          "SecurityGroupIds.11",
          "Tag.0.Key",
          "Tag.1.Value",
          "NetworkInterfaceName",
          "InstanceType",
          "ClientToken",
        ],
      ],
      ["AttachNetworkInterface", { NetworkInterfaceId: eni }, ["InstanceId"]],
      [
        "AssignPrivateIpAddresses",
        { NetworkInterfaceId: eni },
        ["PrivateIpAddress.1", "PrivateIpAddress.0", "SecondaryPrivateIpAddressCount"],
      ],
      [
        "UnassignPrivateIpAddresses",
        { NetworkInterfaceId: eni },
        ["PrivateIpAddress.1", "PrivateIpAddress.51"],
      ],
      ["DeleteNetworkInterface", {}, ["NetworkInterfaceId"]],
      [
        "DescribeNetworkInterfaces",
        {},
        [
          "PrivateIpAddress.1",
          "NetworkInterfaceId.1",
          "NextToken",
          "MaxResults",
          "PageNumber",
          "Tag.1.Key",
          "Tag.21.Key",
        ],
      ],
      ["DescribeInstanceTypes", {}, ["InstanceTypes.1", "InstanceTypes.101", "NextToken", "MaxResults"]],
      ["DescribeVSwitches", {}, ["VSwitchId", "PageNumber", "PageSize", "IsDefault"]],
    ];
    const fivexx: string[] = [];
    let calls = 0;
    for (const [action, base, keys] of targets)
      for (const key of keys)
        for (const v of odd) {
          calls++;
          try {
            await c.call(action, { ...base, [key]: v });
          } catch (e) {
            const err = toApiErr(e);
            if (err.status >= 500)
              fivexx.push(`${action} ${key}=${JSON.stringify(v)}: ${err.status} ${err.code}`);
          }
        }
    expect(calls).toBeGreaterThan(300);
    expect(fivexx).toEqual([]);
  });

  it("conflicting parameters → InvalidParameter.Conflict (400)", async () => {
    const c = await h.start();
    const { NetworkInterfaceId: eni } = await c.create();
    const a = await c.callError("AssignPrivateIpAddresses", {
      NetworkInterfaceId: eni,
      SecondaryPrivateIpAddressCount: 1,
      "PrivateIpAddress.1": "10.0.1.77",
    });
    expect([a.code, a.status]).toEqual(["InvalidParameter.Conflict", 400]);
    const cr = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
      SecondaryPrivateIpAddressCount: 1,
      "PrivateIpAddress.1": "10.0.1.77",
    });
    expect([cr.code, cr.status]).toEqual(["InvalidParameter.Conflict", 400]);
  });

  it("unknown region on every action → InvalidRegionId.NotFound (404)", async () => {
    const c = await h.start();
    for (const action of ALL_ACTIONS) {
      const e = await c.callError(action, { RegionId: "us-nowhere-1" });
      expect([e.code, e.status], action).toEqual(["InvalidRegionId.NotFound", 404]);
      expectErrorShape(e);
    }
  });
});
