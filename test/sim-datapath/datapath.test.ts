// The simulator's datapath mode with real network namespaces: a router
// namespace is the VPC, each instance a node namespace, each ENI a veth pair.
// Traffic really flows, and the VPC's source check really drops a packet whose
// source IP is not assigned to the ENI it leaves through.

import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { teardownDatapath } from "../../cloud/simulator/datapath.js";
import type { Simulator } from "../../cloud/simulator/server.js";
import { type AssignResponse, Cloud, sleep, ZONE } from "../helpers/sim.js";
import {
  dpHarness,
  dpWorld,
  exec,
  GW,
  ip,
  ipBatchIn,
  ipJson,
  type Link,
  links,
  NS_A,
  NS_B,
  ourNetns,
  ping,
  RUN,
  rpFilterDrops,
  VPC_NS,
} from "./helpers.js";

const h = dpHarness(afterEach, afterAll);

interface Addr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface Route {
  dst: string;
  gateway?: string;
  dev: string;
}
interface Neigh {
  dst: string;
  dev: string;
  lladdr: string;
  state: string[];
}

const primaryOf = (sim: Simulator, instanceId: string) => {
  const inst = sim.state.instances.get(instanceId)!;
  return sim.state.enis.get(inst.primaryEniId)!;
};

const byMac = (ls: Link[], mac: string): Link | undefined => ls.find((l) => l.address === mac);

async function routerRoute(ip: string): Promise<Route | undefined> {
  return (await ipJson<Route>(VPC_NS, "route", "show", "exact", `${ip}/32`))[0];
}

describe("datapath: nodes and the router", () => {
  it("gives each node eth0 with its primary ENI's MAC and IP, and A reaches B through the router", async () => {
    const sim = await h.start();
    const c = new Cloud(sim);
    expect(await ourNetns()).toEqual([NS_A, NS_B, VPC_NS].sort());

    for (const [id, ns] of [
      ["i-a", NS_A],
      ["i-b", NS_B],
    ] as const) {
      const eni = primaryOf(sim, id);
      const eth0 = (await links(ns)).find((l) => l.ifname === "eth0");
      expect(eth0?.address).toBe(eni.mac);
      expect(eth0?.flags).toContain("UP");
      expect(await c.metaOk(id, "meta-data/mac")).toBe(eth0?.address);
      const addrs = await ipJson<Addr>(ns, "-4", "addr", "show", "dev", "eth0");
      expect(addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${eni.ips[0]}/24`]);
      const def = await ipJson<Route>(ns, "route", "show", "default");
      expect(def).toEqual([expect.objectContaining({ dst: "default", gateway: GW, dev: "eth0" })]);

      // The router: a /32 to the primary IP on the ENI's device, which carries
      // the gateway, and a permanent neighbour entry with the ENI's MAC.
      const dev = sim.datapath!.routerDevice(eni.id)!;
      expect(dev).toMatch(/^r[0-9a-f]{12}$/);
      expect(await routerRoute(eni.ips[0]!)).toEqual(expect.objectContaining({ dev }));
      const neigh = await ipJson<Neigh>(VPC_NS, "neigh", "show", eni.ips[0]!, "dev", dev);
      expect(neigh[0]?.lladdr).toBe(eni.mac);
      expect(neigh[0]?.state).toContain("PERMANENT");
      const gw = await ipJson<Addr>(VPC_NS, "-4", "addr", "show", "dev", dev);
      expect(gw[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${GW}/32`]);
    }
    // The router has nothing but the /32s: no subnet route to fall back on.
    const routes = await ipJson<Route>(VPC_NS, "route", "show");
    expect(routes.map((r) => r.dst).sort()).toEqual(
      [primaryOf(sim, "i-a").ips[0]!, primaryOf(sim, "i-b").ips[0]!].sort(),
    );

    const a = primaryOf(sim, "i-a").ips[0]!;
    const b = primaryOf(sim, "i-b").ips[0]!;
    const ab = await ping(NS_A, b);
    expect(ab.ok, ab.out).toBe(true);
    expect(ab.ttl, "one routed hop (64 - 1)").toBe(63);
    const ba = await ping(NS_B, a);
    expect(ba.ok, ba.out).toBe(true);
    expect((await ping(NS_A, GW)).ok).toBe(true);

    // A made-up source address is on no ENI: dropped by the source check.
    await ipBatchIn(NS_A, ["addr add 10.0.1.200/32 dev lo"]);
    const before = await rpFilterDrops();
    const spoofed = await ping(NS_A, b, "10.0.1.200");
    expect(spoofed.ok, spoofed.out).toBe(false);
    expect(await rpFilterDrops()).toBeGreaterThan(before);
  });

  it("wires an attached ENI: down on the node, routed by the VPC, and the source check bites on the wrong ENI", async () => {
    const sim = await h.start();
    const c = new Cloud(sim);
    const a = primaryOf(sim, "i-a").ips[0]!;
    const b = primaryOf(sim, "i-b").ips[0]!;

    const eni = await c.create();
    const id = eni.NetworkInterfaceId;
    await c.call("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    // Attaching: the metadata service does not list it yet.
    expect(await c.macs("i-a")).not.toContain(`${eni.MacAddress}/`);
    await c.waitStatus(id, "InUse");
    expect(await c.macs("i-a")).toContain(`${eni.MacAddress}/`);

    // Attached: a device with the ENI's MAC exists in A, down and unconfigured.
    const dev = byMac(await links(NS_A), eni.MacAddress);
    expect(dev?.ifname).toBe("eth1");
    expect(dev?.flags).not.toContain("UP");
    expect(await ipJson<Addr>(NS_A, "-4", "addr", "show", "dev", "eth1"), "no IPv4 address").toEqual([]);
    const rdev = sim.datapath!.routerDevice(id)!;
    expect((await links(VPC_NS)).find((l) => l.ifname === rdev)?.flags).toContain("UP");
    expect(await routerRoute(eni.PrivateIpAddress)).toEqual(expect.objectContaining({ dev: rdev }));

    const assigned = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: id,
      SecondaryPrivateIpAddressCount: 1,
    });
    const ipx = assigned.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress[0]!;
    expect(await routerRoute(ipx)).toEqual(expect.objectContaining({ dev: rdev }));

    // What the eniway datapath does on the node: bring the ENI up, a table
    // with a default route via the gateway on it, a rule sending the IP there.
    await ipBatchIn(NS_A, [
      "link set eth1 up",
      `addr add ${ipx}/32 dev lo`,
      `route add ${GW} dev eth1 scope link table 100`,
      `route add default via ${GW} dev eth1 table 100`,
      `rule add from ${ipx} lookup 100 priority 2048`,
    ]);
    expect((await ping(NS_A, b)).ok, "primary to B").toBe(true); // also resolves B on eth0
    const good = await ping(NS_A, b, ipx);
    expect(good.ok, good.out).toBe(true);
    expect(good.ttl).toBe(63);

    // The same source leaving through eth0 (no policy rule): the VPC drops it.
    await ipBatchIn(NS_A, [`rule del from ${ipx} lookup 100 priority 2048`]);
    const before = await rpFilterDrops();
    const wrong = await ping(NS_A, b, ipx);
    expect(wrong.ok, wrong.out).toBe(false);
    expect(await rpFilterDrops(), "dropped by the router's source check").toBeGreaterThan(before);
    // Only the path was wrong: with the rule back, it works again.
    await ipBatchIn(NS_A, [`rule add from ${ipx} lookup 100 priority 2048`]);
    expect((await ping(NS_A, b, ipx)).ok).toBe(true);

    // Unassign: the router forgets the /32, so the same ping fails.
    await c.call("UnassignPrivateIpAddresses", { NetworkInterfaceId: id, "PrivateIpAddress.1": ipx });
    expect(await routerRoute(ipx)).toBeUndefined();
    expect(await ipJson<Neigh>(VPC_NS, "neigh", "show", ipx)).toEqual([]);
    expect((await ping(NS_A, b, ipx)).ok).toBe(false);
    expect((await ping(NS_A, b)).ok, "the primary path is untouched").toBe(true);

    // Detach: the pair is gone, on both sides.
    await c.call("DetachNetworkInterface", { NetworkInterfaceId: id, InstanceId: "i-a" });
    await c.waitStatus(id, "Available");
    expect(byMac(await links(NS_A), eni.MacAddress)).toBeUndefined();
    expect((await links(VPC_NS)).map((l) => l.ifname)).not.toContain(rdev);
    expect(await routerRoute(eni.PrivateIpAddress)).toBeUndefined();
    expect(sim.datapath!.routerDevice(id)).toBeUndefined();
    await c.call("DeleteNetworkInterface", { NetworkInterfaceId: id });
    expect(a).not.toBe(b);
  });

  it("names ENI devices ethN with the lowest free N and routes IPs assigned before the attach", async () => {
    const sim = await h.start();
    const c = new Cloud(sim);
    const e1 = await c.create();
    const e2 = await c.create();
    await c.attach(e1.NetworkInterfaceId, "i-b");
    await c.attach(e2.NetworkInterfaceId, "i-b");
    let ls = await links(NS_B);
    expect(byMac(ls, e1.MacAddress)?.ifname).toBe("eth1");
    expect(byMac(ls, e2.MacAddress)?.ifname).toBe("eth2");

    await c.call("DetachNetworkInterface", { NetworkInterfaceId: e1.NetworkInterfaceId, InstanceId: "i-b" });
    await c.waitStatus(e1.NetworkInterfaceId, "Available");
    // Assigned while unattached: the VPC routes it once the ENI is attached.
    const e3 = await c.create({ SecondaryPrivateIpAddressCount: 1 });
    const ips3 = e3.PrivateIpSets.PrivateIpSet.map((s) => s.PrivateIpAddress);
    expect(ips3).toHaveLength(2);
    for (const x of ips3) expect(await routerRoute(x)).toBeUndefined();
    await c.attach(e3.NetworkInterfaceId, "i-b");
    ls = await links(NS_B);
    expect(byMac(ls, e3.MacAddress)?.ifname).toBe("eth1");
    expect(byMac(ls, e1.MacAddress)).toBeUndefined();
    const rdev = sim.datapath!.routerDevice(e3.NetworkInterfaceId);
    for (const x of ips3) expect(await routerRoute(x)).toEqual(expect.objectContaining({ dev: rdev }));
    // A's namespace saw none of it.
    expect((await links(NS_A)).map((l) => l.ifname).sort()).toEqual(["eth0", "lo"]);
  });
});

describe("datapath: setup and teardown", () => {
  it("stop() removes every namespace and link, even while a process holds a node namespace", async () => {
    const sim = await h.start();
    const c = new Cloud(sim);
    const eni = await c.create();
    await c.attach(eni.NetworkInterfaceId, "i-a");
    const holder = spawn("ip", ["netns", "exec", NS_A, "sleep", "60"], { stdio: "ignore" });
    try {
      const want = (await stat(`/run/netns/${NS_A}`)).ino;
      const nsLink = `/proc/${holder.pid}/ns/net`;
      for (let i = 0; ; i++) {
        const st = await stat(nsLink).catch(() => undefined);
        if (st?.ino === want) break;
        if (i > 200) throw new Error("the holder never entered the node namespace");
        await sleep(10);
      }
      await sim.stop();
      expect(await ourNetns()).toEqual([]);
      // The namespace lives on (held), but the links we made are gone from it.
      const r = await exec("nsenter", [`--net=${nsLink}`, "ip", "-j", "link", "show"]);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as Link[]).map((l) => l.ifname)).toEqual(["lo"]);
      // Nothing of ours in the root namespace either.
      expect(await ip("-o", "link", "show")).not.toMatch(/\br[0-9a-f]{12}\b/);
      await sim.stop(); // a second stop is harmless
    } finally {
      if (holder.exitCode === null) holder.kill("SIGKILL");
    }
  });

  it("replaces stale namespaces of a crashed run, and teardownDatapath(world) cleans up from the world alone", async () => {
    // A crashed run left namespaces with our names, one with a stale link.
    await ip("netns", "add", VPC_NS);
    await ip("netns", "add", NS_A);
    await ipBatchIn(NS_A, ["link add stale0 type veth peer name stale1"]);
    const world = dpWorld({
      instances: [
        { instanceId: "i-a", instanceType: "ecs.t.small", zoneId: ZONE, vSwitchId: "vsw-a", netns: NS_A },
        // No netns: derived as eniway-node-<id without "i-">.
        { instanceId: `i-${RUN}-c`, instanceType: "ecs.t.small", zoneId: ZONE, vSwitchId: "vsw-a" },
      ],
    });
    const derived = `eniway-node-${RUN}-c`;
    const sim = await h.start(world);
    expect((await links(NS_A)).map((l) => l.ifname).sort()).toEqual(["eth0", "lo"]);
    expect(await ourNetns()).toEqual([derived, NS_A, VPC_NS].sort());
    expect(sim.state.instances.get(`i-${RUN}-c`)?.netns).toBe(derived);
    const c = new Cloud(sim);
    const st = await c.admin<{ instances: { netns: string }[] }>("state");
    expect(st.body.instances.map((i) => i.netns)).toEqual([NS_A, derived]);
    const ping1 = await ping(derived, primaryOf(sim, "i-a").ips[0]!);
    expect(ping1.ok, ping1.out).toBe(true);

    // A "crash": the simulator never stops; the cleanup works from the world file alone.
    await c.attach((await c.create()).NetworkInterfaceId, "i-a");
    await teardownDatapath(world);
    expect(await ourNetns()).toEqual([]);
    await teardownDatapath(world); // nothing left to do: fine
  });
});

describe("datapath: timing", () => {
  it("measures setup for 2 nodes, an attach hook and teardown", async () => {
    const setups: number[] = [];
    const attaches: number[] = [];
    const stops: number[] = [];
    for (let round = 0; round < 3; round++) {
      let t = performance.now();
      const sim = await h.start();
      setups.push(performance.now() - t);
      const hook = sim.state.hooks.attach!;
      sim.state.hooks.attach = async (eni, inst) => {
        const t0 = performance.now();
        await hook(eni, inst);
        attaches.push(performance.now() - t0);
      };
      const c = new Cloud(sim);
      for (const inst of ["i-a", "i-b"]) await c.attach((await c.create()).NetworkInterfaceId, inst);
      t = performance.now();
      await sim.stop();
      stops.push(performance.now() - t);
    }
    const fmt = (xs: number[]): string => xs.map((x) => `${x.toFixed(1)} ms`).join(", ");
    console.log(
      `sim datapath timing: setup (2 nodes) ${fmt(setups)}; attach hook ${fmt(attaches)}; stop ${fmt(stops)}`,
    );
    expect(attaches).toHaveLength(6);
  });
});
