// Names and validation of the simulator's datapath, without touching the kernel:
// nothing unchecked may reach an `ip` command line.

import { describe, expect, it } from "vitest";
import { lowestFreeEth, nodeNetnsNames, routerDeviceName } from "../../cloud/simulator/datapath.js";
import {
  ifName,
  ipBatch,
  ipv4,
  line,
  macAddress,
  netnsName,
  setSysctls,
} from "../../cloud/simulator/netlink.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import { worldJson, ZONE } from "../helpers/sim.js";

const inst = (instanceId: string, netns?: string) => ({
  instanceId,
  instanceType: "ecs.t.small",
  zoneId: ZONE,
  vSwitchId: "vsw-a",
  ...(netns === undefined ? {} : { netns }),
});

describe("node namespace names", () => {
  it("uses instances[].netns, else eniway-node-<id without i->, unique and at most 64 characters", () => {
    const long = `i-${"x".repeat(100)}`;
    const w = parseWorld(
      worldJson({
        datapath: { vpcNetns: "eniway-vpc" },
        instances: [
          inst("i-a", "my-node-a"),
          inst("i-b"),
          inst("node-c"),
          inst("i-taken"),
          inst("i-other", "eniway-node-taken"),
          inst(long),
          inst(`${long}y`),
        ],
      }),
    );
    const names = nodeNetnsNames(w);
    expect(names.get("i-a")).toBe("my-node-a");
    expect(names.get("i-b")).toBe("eniway-node-b");
    expect(names.get("node-c")).toBe("eniway-node-node-c");
    expect(names.get("i-taken")).toBe("eniway-node-taken-2");
    expect(names.get("i-other")).toBe("eniway-node-taken");
    expect(names.get(long)).toBe(`eniway-node-${"x".repeat(52)}`);
    expect(names.get(`${long}y`)).toBe(`eniway-node-${"x".repeat(50)}-2`);
    const all = [...names.values()];
    expect(new Set(all).size).toBe(all.length);
    for (const n of all) expect(n.length).toBeLessThanOrEqual(64);
  });

  it("names router devices from a hash of the ENI id, within IFNAMSIZ", () => {
    const d = routerDeviceName("eni-abc");
    expect(d).toMatch(/^r[0-9a-f]{12}$/);
    expect(routerDeviceName("eni-abc")).toBe(d);
    expect(routerDeviceName("eni-abd")).not.toBe(d);
    expect(routerDeviceName("eni-abc", 1)).not.toBe(d);
  });

  it("picks the lowest free ethN", () => {
    expect(lowestFreeEth(["lo"])).toBe("eth0");
    expect(lowestFreeEth(["lo", "eth0", "eth2", "veth1"])).toBe("eth1");
    expect(lowestFreeEth(["eth0", "eth1", "eth2"])).toBe("eth3");
  });
});

describe("validation before a command line", () => {
  it("refuses names, addresses and MACs that are not what they claim", () => {
    expect(() => netnsName("../etc")).toThrow();
    expect(() => netnsName("a b")).toThrow();
    expect(() => netnsName("x".repeat(65))).toThrow();
    expect(() => ifName("x".repeat(16))).toThrow();
    expect(() => ifName("eth0\nlink")).toThrow();
    expect(() => ipv4("10.0.1.256")).toThrow();
    expect(() => ipv4("10.0.1.1 dev lo")).toThrow();
    expect(() => macAddress("00:16:3e:00:00")).toThrow();
    expect(macAddress("00:16:3E:AA:bb:01")).toBe("00:16:3e:aa:bb:01");
  });

  it("refuses batch tokens that could split, quote or comment a line", async () => {
    for (const bad of ["a b", "a\nb", '"x"', "x#y", "'x'", ""]) expect(() => line("link", bad)).toThrow();
    expect(line("route", "replace", "10.0.1.5/32", "dev", "r0123")).toBe(
      "route replace 10.0.1.5/32 dev r0123",
    );
    await expect(ipBatch(null, ["netns add x\nnetns del y"])).rejects.toThrow(/unsafe token/);
    await expect(ipBatch("bad name", ["link show"])).rejects.toThrow(/namespace/);
    await expect(setSysctls("ns", ["net.ipv4.ip_forward"], "1 2")).rejects.toThrow(/value/);
    await expect(setSysctls("ns", ["kernel.panic"], "1")).rejects.toThrow(/name/);
  });
});
