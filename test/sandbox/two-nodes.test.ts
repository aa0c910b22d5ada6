// The whole path on real namespaces: a sandbox of two nodes, pods added by
// the real plugin binary, pinging across the simulated VPC; traffic leaves
// through the ENI that owns the pod's IP; without its `from` rule the VPC
// drops it, and drift repair brings it back.

import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox.js";
import { call } from "../daemon-harness.js";

const PREFIX = `ews${process.pid % 100000}`;
const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const tryPing = (ns: string, ip: string): boolean => {
  try {
    sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", ip);
    return true;
  } catch {
    return false;
  }
};

interface Pod {
  ns: string;
  containerId: string;
  node: SandboxNode;
  ip: string;
}

function runPlugin(
  node: SandboxNode,
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(join(node.cniBinDir, "eniway"), [], {
      env: { PATH: process.env.PATH ?? "", ...env },
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => resolve({ code, out }));
    child.stdin?.end(stdin);
  });
}

async function netconf(node: SandboxNode): Promise<string> {
  const c = JSON.parse(await readFile(node.cniConfFile, "utf8")) as {
    cniVersion: string;
    name: string;
    plugins: object[];
  };
  return JSON.stringify({ cniVersion: c.cniVersion, name: c.name, ...c.plugins[0] });
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
      sets: ["datapath.repairSeconds=1"],
      log: silentLogger,
    });
  }, 120_000);

  afterAll(async () => {
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
    const r = await runPlugin(
      node,
      {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: containerId,
        CNI_NETNS: `/var/run/netns/${ns}`,
        CNI_IFNAME: "eth0",
        CNI_PATH: node.cniBinDir,
      },
      await netconf(node),
    );
    expect(r.code, r.out).toBe(0);
    const result = JSON.parse(r.out) as { ips: { address: string; gateway: string }[] };
    const pod = { ns, containerId, node, ip: result.ips[0]!.address.split("/")[0]! };
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
      const r = await runPlugin(b1.node, env, await netconf(b1.node));
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
