// The daemon's datapath on real namespaces: a node with one ENI whose far
// end is a stand-in VPC gateway, and pods wired into it.

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatapath, type Datapath } from "../../cni/datapath/datapath.js";
import { hostVethName } from "../../cni/datapath/names.js";
import { silentLogger } from "../../lib/log.js";

const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const P = `ewd${process.pid % 100000}`;
const NODE = `${P}-node`;
const GW = `${P}-gw`;
const PODS = [`${P}-p1`, `${P}-p2`];
const ENI = { eniId: "eni-test1", mac: "00:16:3e:00:aa:01", gateway: "10.9.1.253" };
const nsPath = (n: string): string => `/var/run/netns/${n}`;
const ping = (ns: string, ip: string): boolean => {
  try {
    sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", ip);
    return true;
  } catch {
    return false;
  }
};

describe("node datapath", () => {
  let dp: Datapath;

  beforeAll(() => {
    for (const n of [NODE, GW, ...PODS]) sh("ip", "netns", "add", n);
    // The ENI: its node end carries the ENI's MAC and is down, as a fresh attachment is.
    sh(
      "ip",
      "-n",
      NODE,
      "link",
      "add",
      "eth1",
      "address",
      ENI.mac,
      "type",
      "veth",
      "peer",
      "name",
      "vpc1",
      "netns",
      GW,
    );
    sh("ip", "-n", GW, "addr", "add", `${ENI.gateway}/32`, "dev", "vpc1");
    sh("ip", "-n", GW, "link", "set", "vpc1", "up");
    for (const ip of ["10.9.1.7", "10.9.1.8"]) {
      sh("ip", "-n", GW, "route", "add", `${ip}/32`, "dev", "vpc1");
      sh("ip", "-n", GW, "neigh", "add", ip, "lladdr", ENI.mac, "dev", "vpc1", "nud", "permanent");
    }
    dp = createDatapath({ nodeNetns: nsPath(NODE), mtu: 1500, log: silentLogger });
  });

  afterAll(() => {
    for (const n of [NODE, GW, ...PODS]) {
      try {
        sh("ip", "netns", "del", n);
      } catch {}
    }
    const left = sh("ip", "netns", "list");
    expect(left).not.toContain(P);
  });

  const spec = (i: number) => ({
    containerId: `ctr${i}`,
    ifname: "eth0",
    netns: nsPath(PODS[i]!),
    ip: i === 0 ? "10.9.1.7" : "10.9.1.8",
    eni: ENI,
  });

  it("wires a pod whose traffic leaves through its ENI", async () => {
    const w = await dp.add(spec(0));
    expect(w.hostIfname).toBe(hostVethName("ctr0", "eth0"));
    expect(w.hostIfname.length).toBeLessThanOrEqual(15);
    const link = sh("ip", "-n", NODE, "link", "show", "eth1");
    expect(link).toContain("UP");
    expect(ping(PODS[0]!, ENI.gateway)).toBe(true);
    // The reply came back and the request left through eth1: its counters moved.
    const stats = JSON.parse(sh("ip", "-n", NODE, "-j", "-s", "link", "show", "eth1")) as {
      stats64: { tx: { packets: number } };
    }[];
    expect(stats[0]!.stats64.tx.packets).toBeGreaterThan(0);
    expect(await dp.check(spec(0))).toEqual([]);
  });

  it("CHECK reports each missing piece", async () => {
    sh("ip", "-n", NODE, "rule", "del", "priority", "2048", "from", "10.9.1.7/32");
    const problems = await dp.check(spec(0));
    expect(problems.join()).toMatch(/no rule 2048: from 10\.9\.1\.7/);
    expect(ping(PODS[0]!, ENI.gateway)).toBe(false);
  });

  it("drift repair restores missing rules and removes strays", async () => {
    // A stray rule and a stray veth that belong to no allocation.
    sh("ip", "-n", NODE, "rule", "add", "from", "10.9.1.99/32", "lookup", "1234", "priority", "2048");
    sh("ip", "-n", NODE, "link", "add", "eni0123456789a", "type", "veth", "peer", "name", "strayp");
    const report = await dp.repair(
      () => [{ containerId: "ctr0", ifname: "eth0", ip: "10.9.1.7", eni: ENI }],
      [ENI],
    );
    expect(report.restored).toEqual(["ctr0/eth0 10.9.1.7"]);
    expect(report.removed).toEqual(expect.arrayContaining(["rule 2048 10.9.1.99", "veth eni0123456789a"]));
    expect(await dp.check(spec(0))).toEqual([]);
    expect(ping(PODS[0]!, ENI.gateway)).toBe(true);
    expect(sh("ip", "-n", NODE, "rule")).not.toContain("10.9.1.99");
  });

  it("a repair that runs during an ADD leaves the pod being wired alone", async () => {
    // As in the daemon: the allocation exists before the wiring starts, and the
    // repairs began before the allocation did.
    let allocated = false;
    const current = () => [
      { containerId: "ctr0", ifname: "eth0", ip: "10.9.1.7", eni: ENI },
      ...(allocated ? [{ containerId: "ctr1", ifname: "eth0", ip: "10.9.1.8", eni: ENI }] : []),
    ];
    const repairs = Array.from({ length: 5 }, () => dp.repair(current, [ENI]));
    allocated = true;
    await Promise.all([dp.add(spec(1)), ...repairs]);
    await dp.repair(current, [ENI]);
    expect(sh("ip", "-n", NODE, "link")).toContain(hostVethName("ctr1", "eth0"));
    expect(ping(PODS[1]!, ENI.gateway)).toBe(true);
  });

  it("a second pod on the same ENI works alongside", async () => {
    await dp.add(spec(1));
    expect(ping(PODS[1]!, ENI.gateway)).toBe(true);
    expect(ping(PODS[0]!, ENI.gateway)).toBe(true);
  });

  it("teardown removes the veth, route and rules; twice is fine", async () => {
    await dp.del("ctr1", "eth0", "10.9.1.8");
    await dp.del("ctr1", "eth0", "10.9.1.8");
    expect(sh("ip", "-n", NODE, "rule")).not.toContain("10.9.1.8");
    expect(sh("ip", "-n", NODE, "route")).not.toContain("10.9.1.8");
    expect(sh("ip", "-n", NODE, "link")).not.toContain(hostVethName("ctr1", "eth0"));
    expect(sh("ip", "-n", PODS[1]!, "link")).not.toContain("eth0");
    await dp.del("ctr0", "eth0", "10.9.1.7");
    expect(sh("ip", "-n", NODE, "rule").trim().split("\n")).toHaveLength(3);
  });

  it("a leftover of an interrupted ADD does not block the next ADD", async () => {
    await dp.add(spec(0));
    // The runtime retries ADD after a crash: the veth already exists.
    const again = await dp.add(spec(0));
    expect(again.hostIfname).toBe(hostVethName("ctr0", "eth0"));
    expect(ping(PODS[0]!, ENI.gateway)).toBe(true);
    await dp.del("ctr0", "eth0", "10.9.1.7");
  });

  it("a container stopped and started again (DEL, then at once ADD of the same attachment in a new namespace) keeps its new veth", async () => {
    for (let round = 0; round < 5; round++) {
      await dp.add(spec(0));
      // podman stop: the namespace goes, then DEL; podman start: a new namespace, then ADD.
      sh("ip", "netns", "del", PODS[0]!);
      sh("ip", "netns", "add", PODS[0]!);
      await dp.del("ctr0", "eth0", "10.9.1.7");
      await dp.add(spec(0));
      await new Promise((r) => setTimeout(r, 200)); // what the DEL left to do off its path is done
      expect(await dp.check(spec(0)), `round ${round}`).toEqual([]);
      expect(ping(PODS[0]!, ENI.gateway), `round ${round}`).toBe(true);
    }
    await dp.del("ctr0", "eth0", "10.9.1.7");
  });
});
