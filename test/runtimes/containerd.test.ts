// containerd as a real CNI client: a private containerd 1.6 (own root, state
// and socket in a temp dir) whose CRI plugin runs the sandbox's eniway
// plugin exactly as it would under kubelet. Driven through CRI like kubelet:
// RunPodSandbox → the pod gets a VPC address that is the daemon's allocation
// for that sandbox, labelled with the pod from CNI_ARGS; StopPodSandbox →
// the first DEL (netns + prevResult) releases it and unwires the host;
// RemovePodSandbox → the second DEL (empty CNI_NETNS, no prevResult) is fine.

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { status as grpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/datapath/names.js";
import { silentLogger } from "../../lib/log.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { call } from "../daemon-harness.js";
import {
  CNI_PLUGINS,
  type Containerd,
  importPauseImage,
  requireTools,
  runPod as runSandbox,
  sh,
  startContainerd,
  stopContainerd,
} from "./containerd.js";
import { type CriClient, criClient } from "./cri.js";

const PREFIX = `ewc${randomBytes(3).toString("hex")}`;

interface CniCall {
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

interface Pod {
  id: string;
  uid: string;
  ip: string;
  netnsPath: string;
}

interface Allocation {
  containerId: string;
  ifname: string;
  ip: string;
  eniId: string;
  pod: { namespace: string; name: string; uid: string };
}

describe("containerd CRI runs eniway like kubelet would", () => {
  let sb: Sandbox | undefined;
  let node: SandboxNode;
  let dir: string;
  let sbDir: string;
  let ctrd: Containerd | undefined;
  let cri: CriClient | undefined;
  let callsDir: string;
  const sandboxes = new Set<string>();
  const netnsPaths = new Set<string>();
  const timings: { run?: number; stop?: number; remove?: number } = {};

  const allocations = async (): Promise<Allocation[]> =>
    ((await call(node.socket, "GET", "/v1/allocations")).body as { allocations: Allocation[] }).allocations;
  const ipPhase = async (ip: string): Promise<string | undefined> =>
    ((await call(node.socket, "GET", "/v1/ips")).body as { ips: { ip: string; phase: string }[] }).ips.find(
      (x) => x.ip === ip,
    )?.phase;
  const links = (): string[] =>
    (JSON.parse(sh("ip", "-n", node.netns, "-j", "link", "show")) as { ifname: string }[]).map(
      (l) => l.ifname,
    );

  beforeAll(async () => {
    requireTools();
    dir = await mkdtemp(join(tmpdir(), "eniway-ctrd-"));
    sbDir = await mkdtemp(join(tmpdir(), "eniway-ctrd-sbx-"));
    sb = await sandboxUp({
      dir: sbDir,
      nodes: 1,
      world: sandboxWorld(1, PREFIX),
      sets: [],
      log: silentLogger,
    });
    node = sb.file.nodes[0]!;
    // CNI: the sandbox's plugin and the reference loopback in one bin dir;
    // node A's conflist alone in the conf dir.
    const cniBin = join(dir, "cni-bin");
    const cniConf = join(dir, "cni-conf");
    callsDir = join(dir, "calls");
    await mkdir(cniBin);
    await mkdir(cniConf);
    // eniway is a recorder that execs the sandbox's plugin: each call's CNI_*
    // variables and stdin land in calls/, so the test sees what containerd sent.
    await mkdir(callsDir);
    await writeFile(
      join(cniBin, "eniway"),
      [
        "#!/bin/sh",
        `f=${JSON.stringify(callsDir)}/$(date +%s%N)-$$`,
        'cat > "$f.stdin"',
        'env | grep "^CNI_" > "$f.env"',
        `exec ${JSON.stringify(join(node.cniBinDir, "eniway"))} < "$f.stdin"`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    await symlink(join(CNI_PLUGINS, "loopback"), join(cniBin, "loopback"));
    await copyFile(node.cniConfFile, join(cniConf, "10-eniway.conflist"));
    ctrd = await startContainerd(dir, cniBin, cniConf);
    cri = criClient(ctrd.socket);
    const v = await cri.version();
    expect(v.runtimeName).toBe("containerd");
    await importPauseImage(ctrd);
  }, 120_000);

  afterAll(async () => {
    const errors = await stopContainerd({ ctrd, cri, sandboxes, netnsPaths, cgroupPrefix: PREFIX });
    await sb?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (sbDir) await rm(sbDir, { recursive: true, force: true });
    expect(sh("ip", "netns", "list")).not.toContain(PREFIX);
    if (dir) expect(existsSync(dir)).toBe(false);
    expect(errors, ctrd?.log().slice(-4000)).toEqual([]);
  }, 90_000);

  async function runPod(name: string): Promise<Pod> {
    const p = await runSandbox(cri!, ctrd!, { name, cgroupPrefix: PREFIX });
    sandboxes.add(p.id);
    if (p.netnsPath) netnsPaths.add(p.netnsPath);
    expect(p.status.state).toBe("SANDBOX_READY");
    expect(p.status.metadata).toMatchObject({ name, namespace: "eniway-test", uid: p.uid });
    return { id: p.id, uid: p.uid, ip: p.ip, netnsPath: p.netnsPath };
  }

  /** What containerd ran the plugin with for one sandbox, in order. */
  async function cniCalls(containerId: string): Promise<CniCall[]> {
    const names = (await readdir(callsDir)).filter((n) => n.endsWith(".env")).sort();
    const calls: CniCall[] = [];
    for (const n of names) {
      const env = Object.fromEntries(
        (await readFile(join(callsDir, n), "utf8"))
          .split("\n")
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      ) as Record<string, string>;
      if (env.CNI_CONTAINERID !== containerId) continue;
      const stdin = JSON.parse(await readFile(join(callsDir, n.replace(/\.env$/, ".stdin")), "utf8"));
      calls.push({ env, stdin });
    }
    return calls;
  }

  const pods: Pod[] = [];

  it("RunPodSandbox: the pod's IP is the daemon's allocation for the sandbox, with the pod from CNI_ARGS", async () => {
    const t0 = performance.now();
    const p = await runPod("web-0");
    timings.run = performance.now() - t0;
    pods.push(p);
    expect(p.ip).toMatch(/^10\.0\.\d+\.\d+$/);
    const a = (await allocations()).find((x) => x.containerId === p.id);
    expect(a, JSON.stringify(await allocations())).toBeDefined();
    expect(a!.ifname).toBe("eth0");
    expect(a!.ip).toBe(p.ip);
    expect(a!.pod).toEqual({ namespace: "eniway-test", name: "web-0", uid: p.uid });
    // What containerd sent: one ADD, no VERSION, the pod in CNI_ARGS.
    const calls = await cniCalls(p.id);
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(["ADD"]);
    const args = new Map(calls[0]!.env.CNI_ARGS!.split(";").map((kv) => kv.split("=") as [string, string]));
    expect(args.get("K8S_POD_NAMESPACE")).toBe("eniway-test");
    expect(args.get("K8S_POD_NAME")).toBe("web-0");
    expect(args.get("K8S_POD_UID")).toBe(p.uid);
    expect(args.get("K8S_POD_INFRA_CONTAINER_ID")).toBe(p.id);
    expect(calls[0]!.env.CNI_NETNS).toBe(p.netnsPath);
    // The host end is wired: veth, /32 route; the pod's netns holds the address.
    const veth = hostVethName(p.id, "eth0");
    expect(links()).toContain(veth);
    expect(sh("ip", "-n", node.netns, "route", "show", `${p.ip}/32`)).toContain(`dev ${veth}`);
    expect(p.netnsPath).toMatch(/^\/var\/run\/netns\/[^/]+$/);
    expect(sh("ip", "-n", basename(p.netnsPath), "-4", "addr", "show", "eth0")).toContain(`${p.ip}/32`);
  });

  it("a second pod gets a different IP, and the two pods reach each other", async () => {
    const p = await runPod("web-1");
    pods.push(p);
    expect(p.ip).toMatch(/^10\.0\.\d+\.\d+$/);
    expect(p.ip).not.toBe(pods[0]!.ip);
    const mine = (await allocations()).filter((a) => pods.some((q) => q.id === a.containerId));
    expect(mine.map((a) => a.ip).sort()).toEqual(pods.map((q) => q.ip).sort());
    sh("ip", "netns", "exec", basename(pods[0]!.netnsPath), "ping", "-c1", "-W2", p.ip);
  });

  it("StopPodSandbox: DEL with the netns and prevResult releases the IP (cooling) and unwires the host", async () => {
    const p = pods[0]!;
    const t0 = performance.now();
    await cri!.stopPodSandbox(p.id);
    timings.stop = performance.now() - t0;
    const calls = await cniCalls(p.id);
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(["ADD", "DEL"]);
    const del = calls[1]!;
    expect(del.env.CNI_NETNS).toBe(p.netnsPath);
    expect((del.stdin.prevResult as { ips?: { address: string }[] } | undefined)?.ips?.[0]?.address).toBe(
      `${p.ip}/32`,
    );
    expect((await allocations()).map((a) => a.containerId)).not.toContain(p.id);
    expect(await ipPhase(p.ip)).toBe("cooling");
    expect(links()).not.toContain(hostVethName(p.id, "eth0"));
    expect(sh("ip", "-n", node.netns, "route", "show", `${p.ip}/32`)).toBe("");
    expect(sh("ip", "-n", node.netns, "rule")).not.toMatch(
      new RegExp(`\\b${p.ip.replaceAll(".", "\\.")}\\b`),
    );
    expect((await cri!.podSandboxStatus(p.id)).status.state).toBe("SANDBOX_NOTREADY");
    // The other pod is untouched.
    expect((await allocations()).map((a) => a.containerId)).toContain(pods[1]!.id);
  });

  it("RemovePodSandbox: the second DEL (empty CNI_NETNS, no prevResult) succeeds", async () => {
    const p = pods[0]!;
    const t0 = performance.now();
    await cri!.removePodSandbox(p.id);
    timings.remove = performance.now() - t0;
    sandboxes.delete(p.id);
    const calls = await cniCalls(p.id);
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(["ADD", "DEL", "DEL"]);
    expect(calls[2]!.env.CNI_NETNS ?? "").toBe("");
    expect(calls[2]!.stdin.prevResult).toBeUndefined();
    await expect(cri!.podSandboxStatus(p.id)).rejects.toMatchObject({ code: grpcStatus.NOT_FOUND });
    expect(existsSync(p.netnsPath)).toBe(false);
    expect(await ipPhase(p.ip)).toBe("cooling");
    expect((await allocations()).map((a) => a.containerId)).not.toContain(p.id);
  });

  it("the second pod stops and goes the same way", async () => {
    const p = pods[1]!;
    await cri!.stopPodSandbox(p.id);
    await cri!.removePodSandbox(p.id);
    sandboxes.delete(p.id);
    expect((await cniCalls(p.id)).map((c) => c.env.CNI_COMMAND)).toEqual(["ADD", "DEL", "DEL"]);
    const left = (await allocations()).filter((a) => pods.some((q) => q.id === a.containerId));
    expect(left).toEqual([]);
    expect(links().filter((l) => pods.some((q) => l === hostVethName(q.id, "eth0")))).toEqual([]);
    expect(existsSync(p.netnsPath)).toBe(false);
    console.log(
      `containerd CRI with eniway: RunPodSandbox ${timings.run?.toFixed(0)} ms, ` +
        `StopPodSandbox ${timings.stop?.toFixed(0)} ms, RemovePodSandbox ${timings.remove?.toFixed(0)} ms`,
    );
  });
});
