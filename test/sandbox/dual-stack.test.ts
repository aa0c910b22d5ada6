// Dual stack on real namespaces: a sandbox of two nodes whose VPC and
// vSwitches have IPv6 and whose daemons run `ipStack: dual`. Every pod gets
// an IPv4 and an IPv6 address of the same ENI through the real plugin, pods
// on two nodes reach each other over both families across the simulated VPC
// (whose source check drops IPv6 sent through the wrong ENI), CHECK and
// drift repair cover the IPv6 pieces, and after every DEL nothing of the pods
// is left on the nodes, while the cloud holds no IPv6 address the pool has
// not paired with an IPv4.

import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/log.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { CLI, call } from "../daemon-harness.js";
import { cleanUp, sh, tryPing } from "../helpers/netns.js";

const PREFIX = `ewd${process.pid % 100000}`;
const execFileAsync = promisify(execFile);
const VSW6 = /^fd00:10:0:1:/;

interface Pod {
  ns: string;
  containerId: string;
  node: SandboxNode;
  ip: string;
  ip6: string;
  result: string;
}

interface SimEni {
  NetworkInterfaceId: string;
  Type: string;
  InstanceId: string;
  PrivateIpSets: { PrivateIpSet: { PrivateIpAddress: string }[] };
  Ipv6Sets: { Ipv6Set: { Ipv6Address: string }[] };
}

const nodeNs = (n: SandboxNode): string => n.netns;
const json = <T>(ns: string, ...args: string[]): T =>
  JSON.parse(sh("ip", "-n", ns, "-j", ...args) || "[]") as T;

describe("dual-stack sandbox through the real plugin", () => {
  let sb: Sandbox;
  let dir: string;
  const pods: Pod[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-dual-"));
    sb = await sandboxUp({
      dir,
      nodes: 2,
      world: sandboxWorld(2, PREFIX, { ipv6: true }),
      sets: ["ipStack=dual", "datapath.repairSeconds=1", "pool.cooldownSeconds=0.2"],
      log: silentLogger,
    });
  }, 120_000);

  afterAll(async () => {
    const left = await cleanUp({ sandbox: sb, namespaces: pods.map((p) => p.ns), dir, prefix: PREFIX });
    expect(left).toEqual([]);
  });

  async function addPod(node: SandboxNode, name: string): Promise<Pod> {
    const ns = `${PREFIX}-${name}`;
    sh("ip", "netns", "add", ns);
    const containerId = `ctr-${name}`;
    const r = await runPlugin(node, {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/var/run/netns/${ns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: node.cniBinDir,
    });
    expect(r.code, r.out).toBe(0);
    const result = JSON.parse(r.out) as {
      ips: { address: string; gateway: string }[];
      routes: { dst: string; gw: string }[];
    };
    expect(result.ips.map((i) => i.gateway)).toEqual(["169.254.1.1", "fe80::1"]);
    expect(result.routes).toEqual([
      { dst: "0.0.0.0/0", gw: "169.254.1.1" },
      { dst: "::/0", gw: "fe80::1" },
    ]);
    const [v4, v6] = result.ips.map((i) => i.address);
    expect(v4).toMatch(/^10\.0\.1\.\d+\/32$/);
    expect(v6).toMatch(/\/128$/);
    const pod = { ns, containerId, node, ip: v4!.split("/")[0]!, ip6: v6!.split("/")[0]!, result: r.out };
    expect(pod.ip6).toMatch(VSW6);
    pods.push(pod);
    return pod;
  }

  const del = async (p: Pod): Promise<void> => {
    const r = await runPlugin(p.node, {
      CNI_COMMAND: "DEL",
      CNI_CONTAINERID: p.containerId,
      CNI_NETNS: `/var/run/netns/${p.ns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: p.node.cniBinDir,
    });
    expect(r.code, r.out).toBe(0);
  };

  it("gives every pod an IPv4 and an IPv6 of the same ENI, reachable over both from the other node", async () => {
    const [a, b] = sb.file.nodes as [SandboxNode, SandboxNode];
    const a1 = await addPod(a, "a1");
    const a2 = await addPod(a, "a2");
    const b1 = await addPod(b, "b1");
    expect(new Set(pods.map((p) => p.ip6)).size).toBe(3);

    // The same ENI: the cloud lists both addresses on one ENI of the pod's node.
    const state = (await (await fetch(`${sb.file.sim.endpoint}/admin/state`)).json()) as {
      networkInterfaces: SimEni[];
    };
    for (const p of pods) {
      const eni = state.networkInterfaces.find((e) =>
        e.PrivateIpSets.PrivateIpSet.some((s) => s.PrivateIpAddress === p.ip),
      );
      expect(eni?.InstanceId).toBe(p.node.instanceId);
      expect(eni?.Ipv6Sets.Ipv6Set.map((s) => s.Ipv6Address)).toContain(p.ip6);
    }

    // Inside the pod: both addresses and both default routes.
    const addrs = json<{ addr_info: { local: string; prefixlen: number }[] }[]>(
      a1.ns,
      "addr",
      "show",
      "dev",
      "eth0",
    );
    expect(addrs[0]?.addr_info).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ local: a1.ip, prefixlen: 32 }),
        expect.objectContaining({ local: a1.ip6, prefixlen: 128 }),
      ]),
    );

    for (const [from, to] of [
      [a1, b1],
      [b1, a1],
      [a1, a2],
    ] as const) {
      expect(tryPing(from.ns, to.ip, 2), `${from.ns} → ${to.ip}`).toBe(true);
      expect(tryPing(from.ns, to.ip6, 2), `${from.ns} → ${to.ip6}`).toBe(true);
    }
    // The node reaches its own pod over IPv6 too.
    expect(tryPing(nodeNs(a), a1.ip6, 2)).toBe(true);

    // The operator CLI shows both addresses, and each ENI's IPv6 count.
    const cli = async (...args: string[]): Promise<string> =>
      (await execFileAsync(process.execPath, [CLI, ...args, "--socket", a.socket])).stdout;
    const podsTable = await cli("pods");
    expect(podsTable).toMatch(/IPV6/);
    expect(podsTable).toContain(a1.ip6);
    expect(await cli("enis")).toMatch(/PREFIXES\s+IPV6/);
  }, 60_000);

  it("CHECK sees a missing IPv6 rule, and drift repair brings it back", async () => {
    const a1 = pods[0]!;
    const conf = { ...(await netconf(a1.node)), prevResult: JSON.parse(a1.result) };
    const check = () =>
      runPlugin(
        a1.node,
        {
          CNI_COMMAND: "CHECK",
          CNI_CONTAINERID: a1.containerId,
          CNI_NETNS: `/var/run/netns/${a1.ns}`,
          CNI_IFNAME: "eth0",
          CNI_PATH: a1.node.cniBinDir,
        },
        conf,
      );
    const ok = await check();
    expect(ok.code, ok.out).toBe(0);
    sh("ip", "-n", nodeNs(a1.node), "-6", "rule", "del", "from", `${a1.ip6}/128`, "priority", "2048");
    const broken = await check();
    expect(broken.code).not.toBe(0);
    expect(broken.out).toContain(`from ${a1.ip6}`);
    let repaired = false;
    for (let i = 0; i < 50 && !repaired; i++) {
      await new Promise((r) => setTimeout(r, 200));
      repaired = (await check()).code === 0;
    }
    expect(repaired).toBe(true);
    expect(tryPing(a1.ns, pods[2]!.ip6, 2)).toBe(true);
  }, 30_000);

  it("leaves nothing of the pods on the nodes after DEL, and no IPv6 in the cloud without its IPv4", async () => {
    for (const p of pods) await del(p);
    for (const n of sb.file.nodes) {
      const ns = nodeNs(n);
      const links = json<{ ifname: string }[]>(ns, "link", "show").map((l) => l.ifname);
      expect(links.filter((l) => /^eni[0-9a-f]{11}$/.test(l))).toEqual([]);
      const rules6 = json<{ priority: number }[]>(ns, "-6", "rule", "show");
      expect(rules6.filter((r) => r.priority === 512 || r.priority === 2048)).toEqual([]);
      const routes6 = json<{ dst: string }[]>(ns, "-6", "route", "show");
      expect(routes6.filter((r) => VSW6.test(r.dst))).toEqual([]);
      const neigh6 = json<{ dst: string }[]>(ns, "-6", "neigh", "show", "nud", "permanent");
      expect(neigh6.filter((r) => VSW6.test(r.dst))).toEqual([]);
      const allocations = await call(n.socket, "GET", "/v1/allocations");
      expect(allocations.body).toEqual({ allocations: [] });
    }
    const state = (await (await fetch(`${sb.file.sim.endpoint}/admin/state`)).json()) as {
      networkInterfaces: SimEni[];
    };
    for (const e of state.networkInterfaces.filter((x) => x.Type === "Secondary"))
      expect(e.Ipv6Sets.Ipv6Set.length, e.NetworkInterfaceId).toBeLessThanOrEqual(
        e.PrivateIpSets.PrivateIpSet.length,
      );
  }, 30_000);
});
