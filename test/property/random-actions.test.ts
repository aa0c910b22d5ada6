// Long random sequences of API calls through the real pop-core client; after
// each call the VPC's invariants must hold, both as the API reports them and
// inside the simulator.

import RPCClient from "@alicloud/pop-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { checkInvariants } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import type { WireDescribeNetworkInterfacesResponse, WireNetworkInterfaceSet } from "../../cloud/types.js";
import { cidrContains, ipToInt, parseCidr } from "../../lib/net.js";
import { prng } from "../helpers/prng.js";

const world = parseWorld({
  regionId: "cn-hangzhou",
  credentials: [{ accessKeyId: "AK", accessKeySecret: "SK" }],
  vpc: { vpcId: "vpc-r", cidr: "10.9.0.0/16" },
  vSwitches: [
    { vSwitchId: "vsw-small", zoneId: "z1", cidr: "10.9.1.0/27" },
    { vSwitchId: "vsw-tiny", zoneId: "z1", cidr: "10.9.2.0/29" },
    { vSwitchId: "vsw-other-zone", zoneId: "z2", cidr: "10.9.3.0/28" },
  ],
  securityGroups: ["sg-r"],
  instanceTypes: [
    { instanceTypeId: "t.small", eniQuantity: 3, eniPrivateIpAddressQuantity: 4 },
    { instanceTypeId: "t.big", eniQuantity: 4, eniPrivateIpAddressQuantity: 10 },
  ],
  instances: [
    { instanceId: "i-r1", instanceType: "t.small", zoneId: "z1", vSwitchId: "vsw-small" },
    { instanceId: "i-r2", instanceType: "t.big", zoneId: "z1", vSwitchId: "vsw-small" },
  ],
  latencyMs: { AttachNetworkInterface: [0, 3], DetachNetworkInterface: [0, 3] },
});

const RESERVED_TAIL = 3;
const SEED = Number(process.env.ENIWAY_RANDOM_SEED ?? 20261127);
const STEPS = 600;

describe("random action sequences keep the VPC's invariants", () => {
  let sim: Simulator;
  let ecs: RPCClient;
  beforeAll(async () => {
    sim = await startSimulator(world);
    ecs = new RPCClient({
      endpoint: sim.url,
      apiVersion: "2014-05-26",
      accessKeyId: "AK",
      accessKeySecret: "SK",
    });
  });
  afterAll(async () => sim.stop());

  const call = async (
    action: string,
    params: Record<string, unknown>,
  ): Promise<{ ok: boolean; code?: string }> => {
    try {
      await ecs.request(
        action,
        { RegionId: "cn-hangzhou", ...params },
        { method: "POST", formatParams: false },
      );
      return { ok: true };
    } catch (e) {
      const err = e as { code?: string; entry?: { response?: { statusCode?: number } } };
      expect(err.code, `${action} failed without an API error code`).toBeTypeOf("string");
      expect(err.entry?.response?.statusCode, `${action} ${err.code}`).toBeLessThan(500);
      return { ok: false, code: err.code as string };
    }
  };

  const describeAll = async (): Promise<WireNetworkInterfaceSet[]> => {
    const out: WireNetworkInterfaceSet[] = [];
    let token = "";
    for (;;) {
      const r = await ecs.request<WireDescribeNetworkInterfacesResponse>(
        "DescribeNetworkInterfaces",
        { RegionId: "cn-hangzhou", MaxResults: 7, ...(token ? { NextToken: token } : {}) },
        { method: "POST", formatParams: false },
      );
      out.push(...r.NetworkInterfaceSets.NetworkInterfaceSet);
      token = r.NextToken;
      if (!token) return out;
    }
  };

  const checkFromApi = (enis: WireNetworkInterfaceSet[]): void => {
    const owner = new Map<string, string>();
    const macs = new Set<string>();
    const perInstance = new Map<string, number>();
    for (const e of enis) {
      expect(macs.has(e.MacAddress), `MAC ${e.MacAddress} twice`).toBe(false);
      macs.add(e.MacAddress);
      const vsw = world.vSwitches.find((v) => v.vSwitchId === e.VSwitchId)!;
      const c = parseCidr(vsw.cidr);
      const ips = e.PrivateIpSets.PrivateIpSet;
      expect(ips[0]?.Primary).toBe(true);
      expect(ips[0]?.PrivateIpAddress).toBe(e.PrivateIpAddress);
      for (const { PrivateIpAddress: ip } of ips) {
        expect(owner.get(ip), `${ip} on ${owner.get(ip)} and ${e.NetworkInterfaceId}`).toBeUndefined();
        owner.set(ip, e.NetworkInterfaceId);
        const n = ipToInt(ip);
        expect(cidrContains(c, n), `${ip} outside ${vsw.cidr}`).toBe(true);
        expect(n, `${ip} is the network address`).toBeGreaterThan(c.base);
        expect(n, `${ip} is reserved`).toBeLessThan(c.base + c.size - RESERVED_TAIL);
      }
      if (e.InstanceId) {
        perInstance.set(e.InstanceId, (perInstance.get(e.InstanceId) ?? 0) + 1);
        const inst = world.instances.find((i) => i.instanceId === e.InstanceId)!;
        const type = world.instanceTypes.find((t) => t.instanceTypeId === inst.instanceType)!;
        expect(ips.length).toBeLessThanOrEqual(type.eniPrivateIpAddressQuantity);
      } else {
        expect(ips.length).toBeLessThanOrEqual(50);
      }
    }
    for (const [id, n] of perInstance) {
      const inst = world.instances.find((i) => i.instanceId === id)!;
      const type = world.instanceTypes.find((t) => t.instanceTypeId === inst.instanceType)!;
      expect(n, `${id} ENIs`).toBeLessThanOrEqual(type.eniQuantity);
    }
  };

  it(`holds for ${STEPS} random calls (seed ${SEED})`, async () => {
    const rnd = prng(SEED);
    const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const codes = new Map<string, number>();
    let known: WireNetworkInterfaceSet[] = await describeAll();
    for (let step = 0; step < STEPS; step++) {
      const enis = known.filter((e) => e.Type === "Secondary");
      const eni = enis.length ? pickOf(enis) : undefined;
      const eniId = eni && rnd() < 0.95 ? eni.NetworkInterfaceId : "eni-doesnotexist000";
      const instanceId = pickOf(["i-r1", "i-r2", "i-r2", "i-none"]);
      const kind = rnd();
      let r: { ok: boolean; code?: string };
      if (kind < 0.18 || enis.length === 0) {
        r = await call("CreateNetworkInterface", {
          VSwitchId: pickOf(["vsw-small", "vsw-small", "vsw-tiny", "vsw-other-zone"]),
          SecurityGroupId: "sg-r",
          SecondaryPrivateIpAddressCount: Math.floor(rnd() * 6),
          "Tag.1.Key": "creator",
          "Tag.1.Value": "random",
        });
      } else if (kind < 0.33) {
        r = await call("AttachNetworkInterface", { NetworkInterfaceId: eniId, InstanceId: instanceId });
      } else if (kind < 0.45) {
        r = await call("DetachNetworkInterface", {
          NetworkInterfaceId: eniId,
          InstanceId: eni?.InstanceId || instanceId,
        });
      } else if (kind < 0.55) {
        r = await call("DeleteNetworkInterface", { NetworkInterfaceId: eniId });
      } else if (kind < 0.8) {
        r = await call("AssignPrivateIpAddresses", {
          NetworkInterfaceId: eniId,
          SecondaryPrivateIpAddressCount: 1 + Math.floor(rnd() * 6),
        });
      } else {
        const ips = (eni?.PrivateIpSets.PrivateIpSet ?? []).map((s) => s.PrivateIpAddress);
        const chosen = ips.filter(() => rnd() < 0.4);
        if (rnd() < 0.1) chosen.push("10.9.1.30"); // maybe free, maybe reserved
        r = await call("UnassignPrivateIpAddresses", {
          NetworkInterfaceId: eniId,
          ...Object.fromEntries(
            (chosen.length ? chosen : [ips[0] ?? "10.9.1.1"]).map((ip, i) => [
              `PrivateIpAddress.${i + 1}`,
              ip,
            ]),
          ),
        });
      }
      const key = r.ok ? "ok" : r.code!;
      codes.set(key, (codes.get(key) ?? 0) + 1);
      if (rnd() < 0.1) await sim.settle();
      known = await describeAll();
      checkFromApi(known);
      expect(checkInvariants(sim.state), `step ${step}`).toEqual([]);
    }
    // The sequence must have exercised the interesting paths, or it proves little.
    for (const code of [
      "ok",
      "InvalidOperation.InvalidEniState",
      "InvalidVSwitchId.IpNotEnough",
      "InvalidOperation.Ipv4CountExceeded",
      "InvalidEniId.NotFound",
      "InvalidIp.IpUnassigned",
    ]) {
      expect(codes.get(code) ?? 0, `no ${code} in ${JSON.stringify([...codes])}`).toBeGreaterThan(0);
    }
  }, 120_000);
});
