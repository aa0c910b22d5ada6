// The whole path on real namespaces: a sandbox of two nodes, pods added by
// the real plugin binary, pinging across the simulated VPC; traffic leaves
// through the ENI that owns the pod's IP; without its `from` rule the VPC
// drops it, and drift repair brings it back.

import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/log.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { CLI, call } from "../daemon-harness.js";
import { sh, tryPing } from "../helpers/netns.js";

const execFileAsync = promisify(execFile);
const PREFIX = `ews${process.pid % 100000}`;

interface Pod {
  ns: string;
  containerId: string;
  node: SandboxNode;
  ip: string;
  result: string;
}

describe("two-node sandbox through the real plugin", () => {
  let sb: Sandbox;
  let dir: string;
  const pods: Pod[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-sbx-"));
    sb = await sandboxUp({
      dir,
      nodes: 2,
      world: sandboxWorld(2, PREFIX),
      // GC's floor on an attachment's age off: the GC test runs right after its ADD (the floor: test/daemon/gc.test.ts).
      sets: [
        "datapath.repairSeconds=1",
        "pool.cooldownSeconds=0.2",
        "pool.idleReclaimSeconds=0.5",
        "cni.gcMinAgeSeconds=0",
      ],
      log: silentLogger,
    });
  }, 120_000);

  afterAll(async () => {
    // Every pod goes; the pools then hand surplus IPs back to the cloud.
    for (const p of pods) {
      await runPlugin(p.node, {
        CNI_COMMAND: "DEL",
        CNI_CONTAINERID: p.containerId,
        CNI_NETNS: "",
        CNI_IFNAME: "eth0",
        CNI_PATH: p.node.cniBinDir,
      });
    }
    let extra: string[] = [];
    for (let i = 0; i < 40; i++) {
      const state = (await (await fetch(`${sb.file.sim.endpoint}/admin/state`)).json()) as {
        networkInterfaces: { Type: string; InstanceId: string; PrivateIpSets: { PrivateIpSet: unknown[] } }[];
      };
      extra = sb.file.nodes
        .map((n) => ({
          n: n.instanceId,
          ips: state.networkInterfaces
            .filter((e) => e.Type === "Secondary" && e.InstanceId === n.instanceId)
            .reduce((sum, e) => sum + e.PrivateIpSets.PrivateIpSet.length, 0),
        }))
        .filter((x) => x.ips > 8)
        .map((x) => `${x.n} holds ${x.ips} IPs`);
      if (extra.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(extra, "cloud-side IPs beyond the pool's maxIdle").toEqual([]);
    for (const p of pods) {
      try {
        sh("ip", "netns", "del", p.ns);
      } catch {}
    }
    await sb?.stop();
    await rm(dir, { recursive: true, force: true });
    expect(sh("ip", "netns", "list")).not.toContain(PREFIX);
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
    const result = JSON.parse(r.out) as { ips: { address: string; gateway: string }[] };
    const pod = { ns, containerId, node, ip: result.ips[0]!.address.split("/")[0]!, result: r.out };
    pods.push(pod);
    return pod;
  }

  it("pods on two nodes ping each other", async () => {
    const [a, b] = sb.file.nodes as [SandboxNode, SandboxNode];
    const a1 = await addPod(a, "a1");
    const b1 = await addPod(b, "b1");
    expect(a1.ip).toMatch(/^10\.0\./);
    expect(a1.ip).not.toBe(b1.ip);
    expect(tryPing(a1.ns, b1.ip)).toBe(true);
    expect(tryPing(b1.ns, a1.ip)).toBe(true);
  });

  it("a pod's traffic leaves through the ENI that owns its IP", async () => {
    const a1 = pods[0]!;
    const b1 = pods[1]!;
    const state = (await (await fetch(`${sb.file.sim.endpoint}/admin/state`)).json()) as {
      networkInterfaces: {
        NetworkInterfaceId: string;
        MacAddress: string;
        PrivateIpSets: { PrivateIpSet: { PrivateIpAddress: string }[] };
      }[];
    };
    const owner = state.networkInterfaces.find((e) =>
      e.PrivateIpSets.PrivateIpSet.some((p) => p.PrivateIpAddress === a1.ip),
    )!;
    const links = JSON.parse(sh("ip", "-n", a1.node.netns, "-j", "-s", "link", "show")) as {
      ifname: string;
      address: string;
      stats64: { tx: { packets: number } };
    }[];
    const dev = links.find((l) => l.address === owner.MacAddress)!;
    const eth0 = links.find((l) => l.ifname === "eth0")!;
    expect(dev.ifname).not.toBe("eth0");
    sh("ip", "netns", "exec", a1.ns, "ping", "-c5", "-i0.2", "-W1", b1.ip);
    const after = JSON.parse(sh("ip", "-n", a1.node.netns, "-j", "-s", "link", "show")) as typeof links;
    const devTx = after.find((l) => l.ifname === dev.ifname)!.stats64.tx.packets - dev.stats64.tx.packets;
    const eth0Tx = after.find((l) => l.ifname === "eth0")!.stats64.tx.packets - eth0.stats64.tx.packets;
    expect(devTx).toBeGreaterThanOrEqual(5);
    expect(eth0Tx).toBeLessThan(5);
  });

  it("without its from rule the VPC drops the pod's traffic; drift repair restores it", async () => {
    const a1 = pods[0]!;
    const b1 = pods[1]!;
    sh("ip", "-n", a1.node.netns, "rule", "del", "priority", "2048", "from", `${a1.ip}/32`);
    // Leaving through eth0 with an IP of another ENI: the source check drops it.
    expect(tryPing(a1.ns, b1.ip)).toBe(false);
    let back = false;
    for (let i = 0; i < 40 && !back; i++) {
      await new Promise((r) => setTimeout(r, 250));
      back = sh("ip", "-n", a1.node.netns, "rule").includes(`from ${a1.ip} lookup`);
    }
    expect(back, "drift repair did not restore the from rule").toBe(true);
    expect(tryPing(a1.ns, b1.ip)).toBe(true);
  });

  it("CHECK passes on a wired pod and fails once a piece is missing", async () => {
    const a1 = pods[0]!;
    const env = {
      CNI_COMMAND: "CHECK",
      CNI_CONTAINERID: a1.containerId,
      CNI_NETNS: `/var/run/netns/${a1.ns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: a1.node.cniBinDir,
    };
    const conf = { ...(await netconf(a1.node)), prevResult: JSON.parse(a1.result) };
    const ok = await runPlugin(a1.node, env, conf);
    expect(ok.code, ok.out).toBe(0);
    sh("ip", "netns", "exec", a1.ns, "ip", "neigh", "del", "169.254.1.1", "dev", "eth0");
    const bad = await runPlugin(a1.node, env, conf);
    expect(bad.code).not.toBe(0);
    // Drift is not a configuration error: eniway's own code 100, naming what is missing.
    expect(JSON.parse(bad.out)).toMatchObject({
      code: 100,
      msg: expect.stringMatching(/permanent neighbour 169\.254\.1\.1/),
    });
    sh(
      "ip",
      "netns",
      "exec",
      a1.ns,
      "ip",
      "neigh",
      "replace",
      "169.254.1.1",
      "lladdr",
      JSON.parse(a1.result).interfaces[0].mac,
      "dev",
      "eth0",
      "nud",
      "permanent",
    );
  });

  it("GC releases exactly the attachments that are not listed", async () => {
    const a = sb.file.nodes[0]!;
    const a2 = await addPod(a, "a2");
    const a1 = pods[0]!;
    const gc = {
      ...(await netconf(a)),
      cniVersion: "1.1.0",
      "cni.dev/valid-attachments": [{ containerID: a1.containerId, ifname: "eth0" }],
    };
    const r = await runPlugin(a, { CNI_COMMAND: "GC" }, gc);
    expect(r.code, r.out).toBe(0);
    const allocs = (await call(a.socket, "GET", "/v1/allocations")).body as {
      allocations: { containerId: string }[];
    };
    expect(allocs.allocations.map((x) => x.containerId)).toEqual([a1.containerId]);
    expect(sh("ip", "-n", a.netns, "rule")).not.toContain(`${a2.ip} `);
    expect(tryPing(a1.ns, pods[1]!.ip)).toBe(true);
  });

  it("the operator CLI shows the pool, the pods, the ENIs and the IP map", async () => {
    const a = sb.file.nodes[0]!;
    // Asynchronous: `gc` makes the daemon call the simulator, which runs in this process.
    const cli = async (...args: string[]): Promise<string> =>
      (await execFileAsync(process.execPath, [CLI, ...args, "--socket", a.socket])).stdout;
    expect(await cli("status")).toMatch(/ready:\s+yes[\s\S]*IPs:\s+\d+ idle, 1 assigned/);
    const podsJson = JSON.parse(await cli("pods", "--json")) as { containerId: string; ip: string }[];
    expect(podsJson.map((p) => p.containerId)).toEqual([pods[0]!.containerId]);
    expect(await cli("pods")).toContain(pods[0]!.ip);
    expect(await cli("enis")).toMatch(/^ENI\s+PHASE\s+VSWITCH/);
    // Without Kubernetes, mapping compares the pool with the cloud; it exits 0 when they agree.
    const mapping = JSON.parse(await cli("mapping", "--json")) as {
      kubernetes: boolean;
      problems: number;
      rows: { ip: string; state: string; allocatedTo: string; inCloud: boolean; problem: string }[];
    };
    expect(mapping.kubernetes).toBe(false);
    expect(mapping.problems, JSON.stringify(mapping.rows)).toBe(0);
    const row = mapping.rows.find((m) => m.ip === pods[0]!.ip);
    expect(row).toMatchObject({ state: "assigned", inCloud: true, problem: "" });
    expect(row?.allocatedTo).not.toBe("");
    expect(await cli("mapping")).toMatch(/^IP\s+ENI\s+STATE\s+POOL POD\s+API POD\s+CLOUD\s+PROBLEM/);
    const gc = JSON.parse(await cli("gc", "--json")) as {
      droppedIps: string[];
      brokenAllocations: unknown[];
    };
    expect(gc.brokenAllocations).toEqual([]);
  });

  it("DEL removes the pod's wiring and releases its IP; DEL twice is fine", async () => {
    const b1 = pods[1]!;
    const env = {
      CNI_COMMAND: "DEL",
      CNI_CONTAINERID: b1.containerId,
      CNI_NETNS: `/var/run/netns/${b1.ns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: b1.node.cniBinDir,
    };
    for (let i = 0; i < 2; i++) {
      const r = await runPlugin(b1.node, env);
      expect(r.code, r.out).toBe(0);
    }
    expect(sh("ip", "-n", b1.node.netns, "rule")).not.toContain(b1.ip);
    expect(sh("ip", "-n", b1.node.netns, "route")).not.toContain(b1.ip);
    const allocs = (await call(b1.node.socket, "GET", "/v1/allocations")).body as {
      allocations: { containerId: string }[];
    };
    expect(allocs.allocations.map((x) => x.containerId)).not.toContain(b1.containerId);
  });
});
