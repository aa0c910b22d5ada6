// Prefix mode end to end on real namespaces: a two-node sandbox whose
// vSwitch has a block reserved for prefixes, nodes whose instance type allows
// 2 secondary ENIs × 6 IPs (12 secondary IPs in ip mode), 60 pods on one node
// through the real plugin, each reached from the other node across the
// simulated VPC (which routes the /28s to their ENIs and drops any other
// source), a handful of cloud calls; every DEL leaves nothing, and the pool
// gives its prefixes back.

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/datapath/names.js";
import { silentLogger } from "../../lib/log.js";
import { runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { cleanUp, sh, tryPing } from "../helpers/netns.js";
import { calls, readSimStats } from "../helpers/sim-stats.js";

const PREFIX = `ewpx${process.pid % 100000}`;
const PODS = 60;
/** 7 /28s of vsw-sandbox-a reserved for prefixes (not its last three addresses); single IPs come from the rest. */
const RESERVED = ["10.0.1.128/26", "10.0.1.192/27", "10.0.1.224/28"];

interface Pod {
  ns: string;
  containerId: string;
  ip: string;
}

interface EniState {
  InstanceId: string;
  Type: string;
  PrivateIpSets: { PrivateIpSet: { PrivateIpAddress: string }[] };
  Ipv4PrefixSets: { Ipv4PrefixSet: { Ipv4Prefix: string }[] };
}

const inPrefix = (ip: string, prefix: string): boolean => {
  const [base, len] = prefix.split("/") as [string, string];
  const n = (a: string): number => a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
};

describe("prefix mode on a two-node sandbox", () => {
  let sb: Sandbox | undefined;
  let dir: string | undefined;
  const namespaces: string[] = [];
  const pods: Pod[] = [];

  const enis = async (instanceId: string): Promise<EniState[]> => {
    const state = (await (await fetch(`${sb!.file.sim.endpoint}/admin/state`)).json()) as {
      networkInterfaces: EniState[];
    };
    return state.networkInterfaces.filter((e) => e.Type === "Secondary" && e.InstanceId === instanceId);
  };
  const prefixesOf = (list: EniState[]): string[] =>
    list.flatMap((e) => e.Ipv4PrefixSets.Ipv4PrefixSet.map((p) => p.Ipv4Prefix));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-prefix-"));
    sb = await sandboxUp({
      dir,
      nodes: 2,
      world: sandboxWorld(2, PREFIX, {
        instanceType: { eniQuantity: 3, eniPrivateIpAddressQuantity: 6 },
        reservations: RESERVED,
      }),
      sets: [
        "pool.mode=prefix",
        "pool.minIdle=0",
        "pool.maxIdle=0",
        "pool.cooldownSeconds=0",
        "pool.idleReclaimSeconds=0.5",
      ],
      log: silentLogger,
    });
  }, 120_000);

  afterAll(async () => {
    const left = await cleanUp({ sandbox: sb, namespaces, dir, prefix: PREFIX });
    expect(left).toEqual([]);
  });

  it(`serves ${PODS} pods on one node from prefixes, each reached from the other node`, async () => {
    const [a, b] = sb!.file.nodes as [SandboxNode, SandboxNode];
    const before = await readSimStats(sb!.file.sim.endpoint);
    for (let i = 0; i < PODS; i++) {
      const ns = `${PREFIX}-p${i}`;
      sh("ip", "netns", "add", ns);
      namespaces.push(ns);
      const containerId = `ctr-${PREFIX}-${i}`;
      const r = await runPlugin(a, {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: containerId,
        CNI_NETNS: `/var/run/netns/${ns}`,
        CNI_IFNAME: "eth0",
        CNI_PATH: a.cniBinDir,
      });
      expect(r.code, r.out).toBe(0);
      const ip = (JSON.parse(r.out) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!;
      pods.push({ ns, containerId, ip });
    }
    const after = await readSimStats(sb!.file.sim.endpoint);
    const used = ["CreateNetworkInterface", "AttachNetworkInterface", "AssignPrivateIpAddresses"].map(
      (action) => calls(after, action) - calls(before, action),
    );
    const total = used.reduce((x, y) => x + y, 0);
    console.log(`cloud calls for ${PODS} pods (Create, Attach, Assign): ${used.join(", ")}; ${total} in all`);
    // Four /28s carry 60 pods: a Create (with its first prefixes), an Attach, an Assign or two.
    expect(total).toBeLessThanOrEqual(8);

    expect(new Set(pods.map((p) => p.ip)).size).toBe(PODS);
    const mine = await enis(a.instanceId);
    const prefixes = prefixesOf(mine);
    expect(prefixes.length).toBeGreaterThanOrEqual(4);
    for (const p of prefixes)
      expect(
        RESERVED.some((r) => inPrefix(p.split("/")[0]!, r)),
        p,
      ).toBe(true);
    // Every pod's address is its node's: from a prefix of its ENIs, or an ENI's own primary IP.
    const singles = new Set(mine.flatMap((e) => e.PrivateIpSets.PrivateIpSet.map((s) => s.PrivateIpAddress)));
    for (const p of pods)
      expect(singles.has(p.ip) || prefixes.some((x) => inPrefix(p.ip, x)), p.ip).toBe(true);
    // Packed: at most one prefix is partly used.
    const partly = prefixes.filter((x) => {
      const n = pods.filter((p) => inPrefix(p.ip, x)).length;
      return n > 0 && n < 16;
    });
    expect(partly.length, `partly used prefixes: ${partly.join(", ")}`).toBeLessThanOrEqual(1);

    // Reached from the other node (its namespace routes through the VPC), and each pod reaches out.
    const unreached = pods.filter((p) => !tryPing(b.netns, p.ip)).map((p) => p.ip);
    expect(unreached, "pods node B cannot reach").toEqual([]);
    const [eth0] = JSON.parse(sh("ip", "-j", "-n", b.netns, "-4", "addr", "show", "dev", "eth0")) as {
      addr_info: { local: string }[];
    }[];
    expect(tryPing(pods[PODS - 1]!.ns, eth0!.addr_info[0]!.local)).toBe(true);
  }, 240_000);

  it("every DEL leaves nothing on the node, and the prefixes go back to the cloud", async () => {
    const a = sb!.file.nodes[0]!;
    for (const p of pods) {
      const r = await runPlugin(a, {
        CNI_COMMAND: "DEL",
        CNI_CONTAINERID: p.containerId,
        CNI_NETNS: `/var/run/netns/${p.ns}`,
        CNI_IFNAME: "eth0",
        CNI_PATH: a.cniBinDir,
      });
      expect(r.code, r.out).toBe(0);
    }
    const rules = sh("ip", "-n", a.netns, "rule");
    const routes = sh("ip", "-n", a.netns, "route");
    for (const p of pods) {
      expect(rules, `rules for ${p.ip}`).not.toMatch(new RegExp(`${p.ip.replaceAll(".", "\\.")}\\b`));
      expect(routes, `route to ${p.ip}`).not.toMatch(new RegExp(`^${p.ip.replaceAll(".", "\\.")} `, "m"));
    }
    // Host veths go right after the DEL (off its path).
    const hostVeths = new Set(pods.map((p) => hostVethName(p.containerId, "eth0")));
    let left: string[] = [];
    for (let i = 0; i < 40; i++) {
      const links = JSON.parse(sh("ip", "-j", "-n", a.netns, "link", "show")) as { ifname: string }[];
      left = links.map((l) => l.ifname).filter((n) => hostVeths.has(n));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left, "host veths left").toEqual([]);
    // With nothing wanted (minIdle 0, maxIdle 0) and no cooldown, every prefix goes back whole.
    for (let i = 0; i < 60; i++) {
      left = prefixesOf(await enis(a.instanceId));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(left, "prefixes the node still holds").toEqual([]);
  }, 120_000);
});
