// vSwitch CIDR reservations (VPC 2016-04-28) through the real pop-core
// client and Alibaba Cloud's own V3 SDK: CreateVSwitchCidrReservation is
// asynchronous (Assigning → Assigned after the action's latency knob),
// ListVSwitchCidrReservations returns the documented flat array, and
// DeleteVSwitchCidrReservation refuses while prefixes are still assigned,
// then Releasing → gone. At most 10 per vSwitch and IP version.

import * as $Vpc from "@alicloud/vpc20160428";
import { describe, expect, it } from "vitest";
import { sdkConfig, VpcClient } from "../helpers/sdk.js";
import { type Cloud, expectErrorShape, REGION, simHarness } from "../helpers/sim.js";
import {
  assignPrefixes,
  createReservation,
  dualWorld,
  listReservations,
  reservation,
  reserve,
  VSW6,
} from "./dual-stack.js";

const h = simHarness();
const vpc = { api: "vpc" } as const;

function vpcSdk(c: Cloud) {
  return new VpcClient(sdkConfig(c));
}

describe("CreateVSwitchCidrReservation / ListVSwitchCidrReservations", () => {
  it("is asynchronous: Assigning until the action's latency has passed, then Assigned; the documented List shape", async () => {
    const c = await h.start(dualWorld({ latencyMs: { CreateVSwitchCidrReservation: 300 } }));
    const id = await createReservation(c, {
      VSwitchCidrReservationCidr: "10.0.1.64/26",
      VSwitchCidrReservationName: "pods",
      VSwitchCidrReservationDescription: "prefixes for pods",
      "Tag.1.Key": "team",
      "Tag.1.Value": "net",
    });
    const r = await listReservations(c);
    expect(Object.keys(r).sort()).toEqual([
      "MaxResults",
      "NextToken",
      "RequestId",
      "TotalCount",
      "VSwitchCidrReservations",
    ]);
    expect(r).toMatchObject({ NextToken: "", MaxResults: 10, TotalCount: 1 });
    expect(Array.isArray(r.VSwitchCidrReservations)).toBe(true);
    expect(r.VSwitchCidrReservations[0]).toEqual({
      VSwitchCidrReservationId: id,
      VSwitchCidrReservationCidr: "10.0.1.64/26",
      VSwitchCidrReservationName: "pods",
      VSwitchCidrReservationDescription: "prefixes for pods",
      VSwitchId: "vsw-a",
      VpcId: "vpc-contract",
      IpVersion: "IPv4",
      Type: "prefix",
      Status: "Assigning",
      AssignedCidrCount: 0,
      AvailableCidrCount: 4,
      CreationTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      Tags: [{ Key: "team", Value: "net" }],
    });
    const t0 = Date.now();
    for (;;) {
      const s = (await reservation(c, id))?.Status;
      if (s === "Assigned") break;
      expect(s).toBe("Assigning");
      expect(Date.now() - t0).toBeLessThan(3000);
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
  });

  it("picks the first free block of VSwitchCidrReservationMask; IPv6 reservations come from the vSwitch's /64", async () => {
    const c = await h.start(dualWorld());
    const a = await reserve(c, { VSwitchCidrReservationMask: 27 });
    const b = await reserve(c, { VSwitchCidrReservationMask: 27 });
    expect((await reservation(c, a))?.VSwitchCidrReservationCidr).toBe("10.0.1.32/27");
    expect((await reservation(c, b))?.VSwitchCidrReservationCidr).toBe("10.0.1.64/27");
    const v6 = await reserve(c, { IpVersion: "IPv6", VSwitchCidrReservationMask: 72 });
    const r6 = await reservation(c, v6);
    expect(r6).toMatchObject({
      IpVersion: "IPv6",
      VSwitchCidrReservationCidr: "2408:4005:300:ff01:100::/72", // the first /72 holds the /64's first address
      AvailableCidrCount: 256,
    });
    const named6 = await reserve(c, {
      IpVersion: "IPv6",
      VSwitchCidrReservationCidr: "2408:4005:300:ff01:1::/80",
    });
    expect((await reservation(c, named6))?.VSwitchCidrReservationCidr).toBe("2408:4005:300:ff01:1::/80");
    // Filters and paging.
    const v4only = await listReservations(c, { IpVersion: "IPv4" });
    expect(v4only.VSwitchCidrReservations.map((x) => x.VSwitchCidrReservationId)).toEqual([a, b]);
    const page1 = await listReservations(c, { MaxResults: 3 });
    expect(page1.VSwitchCidrReservations).toHaveLength(3);
    expect(page1.TotalCount).toBe(4);
    expect(page1.NextToken).not.toBe("");
    const page2 = await listReservations(c, { MaxResults: 3, NextToken: page1.NextToken });
    expect(page2.VSwitchCidrReservations.map((x) => x.VSwitchCidrReservationId)).toEqual([named6]);
    expect(page2.NextToken).toBe("");
    expect((await listReservations(c, { VSwitchId: "vsw-j" })).VSwitchCidrReservations).toEqual([]);
  });

  it("refuses what the documentation rules out, with nothing created", async () => {
    const c = await h.start(dualWorld());
    await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/26" });
    const cases: [Record<string, string | number>, string, number][] = [
      [{ VSwitchCidrReservationCidr: "10.0.1.64/27" }, "InvalidCidrBlock.Overlapped", 400],
      [{ VSwitchCidrReservationCidr: "10.0.1.0/28" }, "InvalidParameter", 400], // holds the first address
      [{ VSwitchCidrReservationCidr: "10.0.1.240/28" }, "InvalidParameter", 400], // holds the last three
      [{ VSwitchCidrReservationCidr: "10.0.1.128/29" }, "InvalidParameter", 400], // longer than /28
      [{ VSwitchCidrReservationCidr: "10.0.2.0/28" }, "InvalidParameter", 400], // another vSwitch's
      [{ VSwitchCidrReservationCidr: "10.0.1.0/24" }, "InvalidParameter", 400], // not a proper subset
      [{ VSwitchCidrReservationCidr: "10.0.1.129/28" }, "InvalidParameter", 400], // host bits
      [{ VSwitchCidrReservationMask: 25 }, "InvalidParameter", 400], // at least 2 bits longer than the vSwitch
      [{ VSwitchCidrReservationMask: 29 }, "InvalidParameter", 400],
      [
        { VSwitchCidrReservationMask: 28, VSwitchCidrReservationCidr: "10.0.1.128/28" },
        "InvalidParameter.Conflict",
        400,
      ],
      [{}, "MissingParameter", 400],
      [{ VSwitchCidrReservationMask: 28, VSwitchCidrReservationType: "segment" }, "InvalidParameter", 400],
      [{ VSwitchCidrReservationMask: 28, IpVersion: "IPv5" }, "InvalidParameter", 400],
      [{ VSwitchCidrReservationMask: 28, VSwitchId: "vsw-nope" }, "InvalidVSwitchId.NotFound", 404],
      [
        { IpVersion: "IPv6", VSwitchCidrReservationMask: 80, VSwitchId: "vsw-j" },
        "InvalidVSwitch.Ipv6NotTurnOn",
        403,
      ],
      [{ IpVersion: "IPv6", VSwitchCidrReservationMask: 64 }, "InvalidParameter", 400], // longer than the /64
      [{ IpVersion: "IPv6", VSwitchCidrReservationMask: 81 }, "InvalidParameter", 400],
      [
        { IpVersion: "IPv6", VSwitchCidrReservationCidr: `${VSW6.split("/")[0]}/80` },
        "InvalidParameter",
        400,
      ],
      [{ VSwitchCidrReservationMask: 28, DryRun: "true" }, "DryRunOperation", 400],
      [{ RegionId: "cn-nowhere", VSwitchCidrReservationMask: 28 }, "InvalidRegionId.NotFound", 404],
    ];
    for (const [params, code, status] of cases) {
      const e = await c.callError("CreateVSwitchCidrReservation", { VSwitchId: "vsw-a", ...params }, vpc);
      expect([e.code, e.status], JSON.stringify(params)).toEqual([code, status]);
      expectErrorShape(e);
    }
    expect((await listReservations(c)).TotalCount).toBe(1);
  });

  it("at most 10 per vSwitch and IP version: the 11th is QuotaExceeded.VSwitchCidrReservation", async () => {
    const c = await h.start(dualWorld());
    for (let i = 0; i < 10; i++) await createReservation(c, { VSwitchCidrReservationMask: 28 });
    const e = await c.callError(
      "CreateVSwitchCidrReservation",
      { VSwitchId: "vsw-a", VSwitchCidrReservationMask: 28 },
      vpc,
    );
    expect([e.code, e.status]).toEqual(["QuotaExceeded.VSwitchCidrReservation", 403]);
    // The other IP version has its own 10, and another vSwitch its own.
    await createReservation(c, { IpVersion: "IPv6", VSwitchCidrReservationMask: 80 });
    await createReservation(c, { VSwitchId: "vsw-j", VSwitchCidrReservationMask: 28 });
    const all = await listReservations(c, { MaxResults: 100 });
    expect(all.TotalCount).toBe(11);
  });

  it("ClientToken: the same request gives the same reservation", async () => {
    const c = await h.start(dualWorld());
    const args = { VSwitchCidrReservationMask: 28, ClientToken: "vcr-token-1" };
    const a = await createReservation(c, args);
    expect(await createReservation(c, args)).toBe(a);
    expect((await listReservations(c)).TotalCount).toBe(1);
  });
});

describe("the world file's reservations", () => {
  it("are Assigned from the start: prefixes come from them at once", async () => {
    const world = dualWorld();
    const vsws = world.vSwitches as Record<string, unknown>[];
    vsws[0] = { ...vsws[0], reservations: ["10.0.1.128/26", "2408:4005:300:ff01:1::/80"] };
    const c = await h.start(world);
    const r = await listReservations(c);
    expect(
      r.VSwitchCidrReservations.map((x) => [x.VSwitchCidrReservationCidr, x.IpVersion, x.Status]).sort(),
    ).toEqual([
      ["10.0.1.128/26", "IPv4", "Assigned"],
      ["2408:4005:300:ff01:1::/80", "IPv6", "Assigned"],
    ]);
    const eni = await c.create();
    const prefixes = await assignPrefixes(c, eni.NetworkInterfaceId, { Ipv4PrefixCount: 2 });
    expect(prefixes).toHaveLength(2);
    for (const p of prefixes) expect(p).toMatch(/^10\.0\.1\.(128|144|160|176|192|208|224|240)\/28$/);
  });

  it("a block the API would refuse stops the simulator with the key and the reason", async () => {
    const world = dualWorld();
    const vsws = world.vSwitches as Record<string, unknown>[];
    vsws[0] = { ...vsws[0], reservations: ["10.0.1.0/28"] }; // holds the vSwitch's first address
    await expect(h.start(world)).rejects.toThrow(/vSwitches\[0\]\.reservations\[0\]: .*10\.0\.1\.0\/28/);
  });
});

describe("DeleteVSwitchCidrReservation", () => {
  it("refuses while a prefix from it is assigned, then Releasing until the latency has passed, then gone", async () => {
    const c = await h.start(dualWorld({ latencyMs: { DeleteVSwitchCidrReservation: 300 } }));
    const id = await reserve(c, { VSwitchCidrReservationCidr: "10.0.1.64/28" });
    const eni = await c.create();
    const [p] = await assignPrefixes(c, eni.NetworkInterfaceId, { Ipv4PrefixCount: 1 });
    const busy = await c.callError("DeleteVSwitchCidrReservation", { VSwitchCidrReservationId: id }, vpc);
    expect([busy.code, busy.status]).toEqual(["DependencyViolation.VSwitchCidrReservation", 400]);
    await c.call("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: eni.NetworkInterfaceId,
      "Ipv4Prefix.1": p!,
    });
    const d = await c.call("DeleteVSwitchCidrReservation", { VSwitchCidrReservationId: id }, vpc);
    expect(Object.keys(d)).toEqual(["RequestId"]);
    expect((await reservation(c, id))?.Status).toBe("Releasing");
    // Releasing: no prefixes from it, a second Delete is refused.
    expect(
      (
        await c.callError("AssignPrivateIpAddresses", {
          NetworkInterfaceId: eni.NetworkInterfaceId,
          Ipv4PrefixCount: 1,
        })
      ).code,
    ).toBe("InvalidVSwitchId.IpNotEnough");
    const twice = await c.callError("DeleteVSwitchCidrReservation", { VSwitchCidrReservationId: id }, vpc);
    expect([twice.code, twice.status]).toEqual(["IncorrectStatus.VSwitchCidrReservation", 400]);
    await c.admin("settle", "POST");
    expect(await reservation(c, id)).toBeUndefined();
    const gone = await c.callError("DeleteVSwitchCidrReservation", { VSwitchCidrReservationId: id }, vpc);
    expect([gone.code, gone.status]).toEqual(["ResourceNotFound.VSwitchCidrReservation", 404]);
    const missing = await c.callError("DeleteVSwitchCidrReservation", {}, vpc);
    expect(missing.code).toBe("MissingParameter");
    // Its block is the vSwitch's again: a single IP may come from it.
    await c.call("AssignPrivateIpAddresses", {
      NetworkInterfaceId: eni.NetworkInterfaceId,
      "PrivateIpAddress.1": "10.0.1.70",
    });
  });
});

describe("Alibaba Cloud's V3 SDK (@alicloud/vpc20160428)", () => {
  it("creates, lists and deletes a reservation, and reads the response into its models", async () => {
    const c = await h.start(dualWorld());
    const sdk = vpcSdk(c);
    const created = await sdk.createVSwitchCidrReservation(
      new $Vpc.CreateVSwitchCidrReservationRequest({
        regionId: REGION,
        vSwitchId: "vsw-a",
        ipVersion: "IPv4",
        vSwitchCidrReservationCidr: "10.0.1.128/28",
      }),
    );
    const id = created.body?.vSwitchCidrReservationId;
    expect(id).toMatch(/^vcr-/);
    await c.admin("settle", "POST");
    const listed = await sdk.listVSwitchCidrReservations(
      new $Vpc.ListVSwitchCidrReservationsRequest({ regionId: REGION, vSwitchId: "vsw-a" }),
    );
    const [r] = listed.body?.vSwitchCidrReservations ?? [];
    expect(r?.vSwitchCidrReservationId).toBe(id);
    expect(r?.vSwitchCidrReservationCidr).toBe("10.0.1.128/28");
    expect(r?.status).toBe("Assigned");
    expect(r?.availableCidrCount).toBe(1);
    await sdk.deleteVSwitchCidrReservation(
      new $Vpc.DeleteVSwitchCidrReservationRequest({ regionId: REGION, vSwitchCidrReservationId: id }),
    );
    await c.admin("settle", "POST");
    expect(await reservation(c, id!)).toBeUndefined();
  });
});
