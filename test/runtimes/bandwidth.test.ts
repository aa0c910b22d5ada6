// The conflist the daemon writes (eniway, then portmap and bandwidth), used
// by containerd as kubelet's runtime would use it on a node: containerd runs
// in the node's network namespace, the pod's bandwidth annotations become the
// `bandwidth` capability, and the reference bandwidth plugin shapes the pod's
// traffic on the host veth eniway made (ingress) and on an ifb (egress).
// Removing the pod removes the shaping with the veth.

import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/datapath/names.js";
import { silentLogger } from "../../lib/log.js";
import { CONFLIST_NAME, conflist } from "../../src/daemon/conflist.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
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

const PREFIX = `ewb${randomBytes(3).toString("hex")}`;

interface Qdisc {
  kind: string;
  options?: { rate?: number };
}

describe("bandwidth annotations through containerd reach the chained bandwidth plugin", () => {
  let sb: Sandbox | undefined;
  let node: SandboxNode;
  let dir: string;
  let sbDir: string;
  let ctrd: Containerd | undefined;
  let cri: CriClient | undefined;
  const sandboxes = new Set<string>();
  const netnsPaths = new Set<string>();

  const qdiscs = (dev: string): Qdisc[] =>
    JSON.parse(sh("tc", "-n", node.netns, "-j", "qdisc", "show", "dev", dev));
  const links = (): { ifname: string; linkinfo?: { info_kind?: string } }[] =>
    JSON.parse(sh("ip", "-n", node.netns, "-d", "-j", "link", "show"));

  beforeAll(async () => {
    requireTools();
    dir = await mkdtemp(join(tmpdir(), "eniway-bw-"));
    sbDir = await mkdtemp(join(tmpdir(), "eniway-bw-sbx-"));
    sb = await sandboxUp({
      dir: sbDir,
      nodes: 1,
      world: sandboxWorld(1, PREFIX),
      sets: [],
      log: silentLogger,
    });
    node = sb.file.nodes[0]!;
    const cniBin = join(dir, "cni-bin");
    const cniConf = join(dir, "cni-conf");
    await mkdir(cniBin);
    await mkdir(cniConf);
    await copyFile(join(node.cniBinDir, "eniway"), join(cniBin, "eniway"));
    for (const p of ["loopback", "portmap", "bandwidth"])
      await symlink(join(CNI_PLUGINS, p), join(cniBin, p));
    // Exactly what the daemon writes into cni.confDir.
    await writeFile(join(cniConf, CONFLIST_NAME), JSON.stringify(conflist({ socket: node.socket })));
    ctrd = await startContainerd(dir, cniBin, cniConf, node.netns);
    cri = criClient(ctrd.socket);
    await importPauseImage(ctrd);
  }, 120_000);

  afterAll(async () => {
    const errors = await stopContainerd({ ctrd, cri, sandboxes, netnsPaths, cgroupPrefix: PREFIX });
    await sb?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (sbDir) await rm(sbDir, { recursive: true, force: true });
    expect(sh("ip", "netns", "list")).not.toContain(PREFIX);
    expect(errors, ctrd?.log().slice(-4000)).toEqual([]);
  }, 90_000);

  async function runPod(
    name: string,
    annotations: Record<string, string>,
  ): Promise<{ id: string; ip: string }> {
    const p = await runSandbox(cri!, ctrd!, { name, cgroupPrefix: PREFIX, annotations });
    sandboxes.add(p.id);
    if (p.netnsPath) netnsPaths.add(p.netnsPath);
    return { id: p.id, ip: p.ip };
  }

  async function removePod(id: string): Promise<void> {
    await cri!.stopPodSandbox(id);
    await cri!.removePodSandbox(id);
    sandboxes.delete(id);
  }

  it("shapes a pod with kubernetes.io/ingress-bandwidth and egress-bandwidth, and only that pod", async () => {
    const shaped = await runPod("shaped", {
      "kubernetes.io/ingress-bandwidth": "10M",
      "kubernetes.io/egress-bandwidth": "20M",
    });
    const plain = await runPod("plain", {});
    expect(shaped.ip).toMatch(/^10\.0\.\d+\.\d+$/);
    expect(plain.ip).toMatch(/^10\.0\.\d+\.\d+$/);

    // Ingress (towards the pod): a token bucket on the host veth at 10 Mbit/s.
    const veth = hostVethName(shaped.id, "eth0");
    const tbf = qdiscs(veth).find((q) => q.kind === "tbf");
    expect(tbf?.options?.rate, JSON.stringify(qdiscs(veth))).toBe(10_000_000 / 8);
    // Egress (from the pod): the veth's ingress is redirected to an ifb shaped at 20 Mbit/s.
    expect(qdiscs(veth).some((q) => q.kind === "ingress")).toBe(true);
    const ifbs = links().filter((l) => l.linkinfo?.info_kind === "ifb");
    expect(ifbs).toHaveLength(1);
    expect(qdiscs(ifbs[0]!.ifname).find((q) => q.kind === "tbf")?.options?.rate).toBe(20_000_000 / 8);

    const plainVeth = hostVethName(plain.id, "eth0");
    expect(qdiscs(plainVeth).some((q) => q.kind === "tbf")).toBe(false);

    await removePod(shaped.id);
    await removePod(plain.id);
    const left = links();
    expect(left.map((l) => l.ifname)).not.toContain(veth);
    expect(left.filter((l) => l.linkinfo?.info_kind === "ifb")).toEqual([]);
  }, 60_000);
});
