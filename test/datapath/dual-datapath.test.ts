// The daemon's datapath in dual stack on real namespaces: a node with one
// ENI whose far end is a stand-in VPC gateway with an IPv4 and an IPv6
// address, and a dual-stack pod wired into it. Its IPv6 leaves through the
// ENI's table (set up again with its IPv6 gateway when the ENI was first set
// up without one), CHECK and drift repair see the IPv6 pieces, and DEL
// leaves none of them.

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatapath, type Datapath } from "../../cni/datapath/datapath.js";
import { hostVethName } from "../../cni/datapath/names.js";
import { silentLogger } from "../../lib/log.js";

const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const P = `ewv${process.pid % 100000}`;
const NODE = `${P}-node`;
const GW = `${P}-gw`;
const POD = `${P}-pod`;
const ENI = { eniId: "eni-dual1", mac: "00:16:3e:00:bb:01", gateway: "10.9.2.253" };
const GW6 = "fd00:9:0:1:ffff:ffff:ffff:fff7";
const POD_IP = "10.9.2.7";
const POD_IP6 = "fd00:9:0:1::7";
const nsPath = (n: string): string => `/var/run/netns/${n}`;
const ping = (ns: string, ip: string): boolean => {
  try {
    sh("ip", "netns", "exec", ns, "ping", "-c1", "-W2", ip);
    return true;
  } catch {
    return false;
  }
};
const json = <T>(ns: string, ...args: string[]): T =>
  JSON.parse(sh("ip", "-n", ns, "-j", ...args) || "[]") as T;

describe("node datapath, dual stack", () => {
  let dp: Datapath;
  const pod = {
    containerId: "ctrdual",
    ifname: "eth0",
    netns: nsPath(POD),
    ip: POD_IP,
    ip6: POD_IP6,
    eni: { ...ENI, gateway6: GW6 },
  };

  beforeAll(() => {
    for (const n of [NODE, GW, POD]) sh("ip", "netns", "add", n);
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
    sh(
      "ip",
      "netns",
      "exec",
      GW,
      "sysctl",
      "-qw",
      "net.ipv6.conf.all.accept_dad=0",
      "net.ipv6.conf.vpc1.accept_dad=0",
    );
    sh("ip", "-n", GW, "addr", "add", `${ENI.gateway}/32`, "dev", "vpc1");
    sh("ip", "-n", GW, "addr", "add", `${GW6}/128`, "dev", "vpc1", "nodad");
    sh("ip", "-n", GW, "link", "set", "vpc1", "up");
    // The VPC's side: the pod's addresses are the ENI's, at its MAC.
    sh("ip", "-n", GW, "route", "add", `${POD_IP}/32`, "dev", "vpc1");
    sh("ip", "-n", GW, "neigh", "add", POD_IP, "lladdr", ENI.mac, "dev", "vpc1", "nud", "permanent");
    sh("ip", "-n", GW, "-6", "route", "add", `${POD_IP6}/128`, "dev", "vpc1");
    sh("ip", "-n", GW, "-6", "neigh", "add", POD_IP6, "lladdr", ENI.mac, "dev", "vpc1", "nud", "permanent");
    dp = createDatapath({ nodeNetns: nsPath(NODE), mtu: 1500, log: silentLogger, ipv6: true });
  });

  afterAll(() => {
    dp?.close();
    for (const n of [NODE, GW, POD]) {
      try {
        sh("ip", "netns", "del", n);
      } catch {}
    }
    expect(sh("ip", "netns", "list")).not.toContain(P);
  });

  it("wires a dual-stack pod whose IPv6 leaves through its ENI, on an ENI first set up without IPv6", async () => {
    const dev = await dp.ensureEni(ENI);
    // No IPv6 route in the table yet: the kernel has no such IPv6 table at all.
    const routes6 = (): { dst: string; gateway?: string }[] => {
      try {
        return json(NODE, "-6", "route", "show", "table", String(dev.table));
      } catch {
        return [];
      }
    };
    expect(routes6().some((r) => r.dst === "default")).toBe(false);
    await dp.add(pod);
    expect(routes6()).toContainEqual(expect.objectContaining({ dst: "default", gateway: GW6 }));
    expect(sh("ip", "netns", "exec", NODE, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").trim()).toBe("1");
    // Set up first without IPv6, the ENI's link-local address went through DAD (a second or two,
    // once per ENI); a device set up with its IPv6 gateway from the start skips it (accept_dad 0).
    for (
      let i = 0;
      i < 40 && sh("ip", "-n", NODE, "-6", "addr", "show", "dev", "eth1", "tentative").trim();
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    expect(sh("ip", "netns", "exec", NODE, "cat", "/proc/sys/net/ipv6/conf/eth1/accept_dad").trim()).toBe(
      "0",
    );
    expect(ping(POD, ENI.gateway), "pod → IPv4 gateway").toBe(true);
    expect(ping(POD, GW6), "pod → IPv6 gateway").toBe(true);
    // The node reaches the pod over IPv6 at once: fe80::1 on the host veth has no DAD to wait for.
    expect(ping(NODE, POD_IP6), "node → pod over IPv6").toBe(true);
    expect(await dp.check(pod)).toEqual([]);
  });

  it("CHECK names a missing IPv6 piece, and repair restores it", async () => {
    sh("ip", "-n", NODE, "-6", "rule", "del", "from", `${POD_IP6}/128`, "priority", "2048");
    sh("ip", "-n", NODE, "-6", "neigh", "del", POD_IP6, "dev", hostVethName(pod.containerId, pod.ifname));
    const problems = await dp.check(pod);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`from ${POD_IP6}`),
        expect.stringContaining(`permanent neighbour ${POD_IP6}`),
      ]),
    );
    const report = await dp.repair(() => [pod], []);
    expect(report.restored).toEqual([`ctrdual/eth0 ${POD_IP} ${POD_IP6}`]);
    expect(await dp.check(pod)).toEqual([]);
    expect(ping(POD, GW6)).toBe(true);
  });

  it("a stray IPv6 rule and route of a pod no allocation owns are removed; the host veth's own fe80::/64 stays", async () => {
    const host = hostVethName(pod.containerId, pod.ifname);
    sh(
      "ip",
      "-n",
      NODE,
      "-6",
      "rule",
      "add",
      "from",
      "fd00:9:0:1::99/128",
      "lookup",
      "main",
      "priority",
      "2048",
    );
    sh("ip", "-n", NODE, "-6", "route", "add", "fd00:9:0:1::99/128", "dev", host);
    const report = await dp.repair(() => [pod], []);
    expect(report.removed.sort()).toEqual([`route fd00:9:0:1::99 dev ${host}`, "rule 2048 fd00:9:0:1::99"]);
    const main = json<{ dst: string; dev?: string }[]>(NODE, "-6", "route", "show");
    expect(main).toContainEqual(expect.objectContaining({ dst: "fe80::/64", dev: host }));
    expect(await dp.check(pod)).toEqual([]);
  });

  it("a node back on IPv4 judges IPv4 alone: an ENI with an IPv6 gateway and a pod with an IPv6 pass its CHECK and repair", async () => {
    const v4 = createDatapath({ nodeNetns: nsPath(NODE), mtu: 1500, log: silentLogger });
    try {
      const report = await v4.repair(() => [pod], [pod.eni]);
      expect(report.enisBroughtUp).toEqual([]);
      expect(report.restored).toEqual([]);
      expect(report.removed).toEqual([]);
      expect(await v4.check(pod)).toEqual([]);
    } finally {
      v4.close();
    }
  });

  it("DEL leaves none of the pod's IPv6 pieces on the node, even once the node is back on IPv4", async () => {
    const v4 = createDatapath({ nodeNetns: nsPath(NODE), mtu: 1500, log: silentLogger });
    await v4.del(pod.containerId, pod.ifname, POD_IP, POD_IP6);
    await new Promise((r) => setTimeout(r, 300)); // the veth goes right after the DEL's answer
    const rules = json<{ priority: number; src?: string; dst?: string }[]>(NODE, "-6", "rule", "show");
    expect(rules.filter((r) => r.src === POD_IP6 || r.dst === POD_IP6)).toEqual([]);
    expect(json<{ dst: string }[]>(NODE, "-6", "route", "show").filter((r) => r.dst === POD_IP6)).toEqual([]);
    expect(json<{ dst: string }[]>(NODE, "-6", "neigh", "show").filter((r) => r.dst === POD_IP6)).toEqual([]);
    expect(json<{ ifname: string }[]>(NODE, "link", "show").map((l) => l.ifname)).toEqual(["lo", "eth1"]);
    v4.close();
  });
});
