// `eniway sandbox up --cluster`: the simulated VPC, a control plane, a
// kubelet + containerd + kube-proxy per node (cluster.ts), the eniway image
// and a busybox image imported into every node, and eniway installed with
// `helm install` of charts/eniway, as a user installs it.

import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { nodeNetnsNames } from "../../cloud/simulator/datapath.js";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { loadWorld, type World } from "../../cloud/simulator/world.js";
import { exec } from "../../lib/exec.js";
import type { Logger } from "../../lib/log.js";
import { packageRoot } from "../../lib/process.js";
import { BUSYBOX, buildImage } from "../image/build.js";
import {
  type ClusterNode,
  type ClusterRecord,
  createLinks,
  prepareHost,
  requireClusterTools,
  restoreHost,
  startNode,
  stopNode,
} from "./cluster.js";
import { type ControlPlane, kubeE2eDir, startControlPlane } from "./controlplane.js";
import { startClusterDns } from "./dns.js";
import { removeExcept, StartFailed } from "./failure.js";
import { CLUSTER_LOCK, takeHostLock } from "./host-lock.js";
import {
  requireRoot,
  requireTools,
  type SandboxFile,
  sandboxHosts,
  sandboxWorld,
  simEntry,
} from "./sandbox.js";

export const RELEASE = "eniway";
export const RELEASE_NAMESPACE = "kube-system";
/** The port of the daemon's /metrics, /dashboard and probes on each node (the chart's metrics.listen). */
export const DAEMON_PORT = 9470;
/** The daemon's setting (KEY=VALUE, as for `--set`) that gives every pod an IPv4 and an IPv6 address. */
export const DUAL_STACK_SETTING = "ipStack=dual";

/** helm 3.17.3, fetched once per machine by test/helm.sh; $ENIWAY_HELM overrides. */
export function helmBin(): string {
  return (
    process.env.ENIWAY_HELM ??
    join(process.env.ENIWAY_KUBE_CACHE ?? "/var/cache/eniway", "helm-2.1.0", "helm")
  );
}

export interface ClusterSandbox {
  file: SandboxFile;
  sim: Simulator;
  controlPlane: ControlPlane;
  nodes: ClusterNode[];
  /** Runs helm with the admin kubeconfig; resolves with its stdout. */
  helm(args: string[]): Promise<string>;
  /** The helm values that point the chart at this sandbox. */
  values: string[];
  /**
   * `helm install` or `helm upgrade` of charts/eniway with those values and
   * `extra` ones (`--set`), then waits until every eniway pod and node is Ready.
   */
  release(verb: "install" | "upgrade", extra?: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function sandboxClusterUp(opts: {
  dir: string;
  nodes: number;
  worldFile?: string;
  world?: World;
  /** Extra daemon settings, KEY=VALUE as for `--set`; they become the chart's config.KEY. */
  sets: string[];
  /** Skip `helm install` (a test installs it itself, or compares with another CNI). */
  install?: boolean;
  /** Also import the images Kubernetes' upstream e2e suite runs, under its names (`--test-images`). */
  testImages?: boolean;
  /**
   * IPv4 and IPv6 per pod (`--dual-stack`): an IPv6 VPC (the default world's
   * fd00:10::/56), the IPv6DualStack gate on every component, Services from
   * both ranges, and the daemon's `ipStack: dual`.
   */
  dualStack?: boolean;
  log: Logger;
}): Promise<ClusterSandbox> {
  requireRoot("eniway sandbox --cluster");
  requireTools(opts.log);
  const dualStack = opts.dualStack === true;
  requireClusterTools(dualStack);
  const dir = resolve(opts.dir);
  // The default world has a VPC host outside the cluster beside the nodes.
  const world =
    opts.world ??
    (opts.worldFile
      ? await loadWorld(opts.worldFile)
      : sandboxWorld(opts.nodes, "eniway", { hosts: 1, ipv6: dualStack }));
  if (dualStack) checkDualStackWorld(world);
  const nodeInstances = world.instances.filter((i) => i.role === "node");
  if (!world.datapath) world.datapath = { vpcNetns: "eniway-vpc" };
  await mkdir(dir, { recursive: true });
  const log = opts.log;
  /**
   * What the stop undoes, by stage: every process at once (the nodes and the
   * control plane), then the simulated VPC, the management links, and the
   * host (sysctls, paths, cgroups) with the folder last. Nothing waits for a
   * graceful end it does not need: the whole stop stays within seconds,
   * whatever runs in the cluster.
   */
  const undo: { stage: "processes" | "vpc" | "links" | "host"; what: string; run(): Promise<void> }[] = [];
  /** Logs a failed start names: the clean-up leaves them. */
  let keep: string[] = [];
  const stopAll = async (): Promise<void> => {
    const steps = undo.splice(0);
    const t0 = performance.now();
    for (const stage of ["processes", "vpc", "links", "host"] as const) {
      const started = performance.now();
      await Promise.all(
        steps
          .filter((u) => u.stage === stage)
          .map(async (u) => {
            const t = performance.now();
            await u
              .run()
              .catch((e: unknown) => log.warn("cleanup step failed", { step: u.what, error: String(e) }));
            log.debug("sandbox stop step done", { step: u.what, ms: Math.round(performance.now() - t) });
          }),
      );
      log.debug("sandbox stop stage done", { stage, ms: Math.round(performance.now() - started) });
    }
    if (steps.length > 0) log.info("sandbox stopped", { ms: Math.round(performance.now() - t0) });
    // Only once the host is as it was: another cluster sandbox may start now.
    await unlock?.();
    unlock = null;
  };
  let unlock: (() => Promise<void>) | null = await takeHostLock(CLUSTER_LOCK, 15 * 60_000, (pid) =>
    log.info("waiting for another cluster sandbox to stop", { pid, lock: CLUSTER_LOCK }),
  );
  try {
    const record: ClusterRecord = { host: "", links: [], pids: [], nodes: [], ...(await prepareHost()) };
    const recordFile = join(dir, "cluster.json");
    const save = (): Promise<void> => writeFile(recordFile, JSON.stringify(record, null, 2));
    await save();
    undo.push({
      stage: "host",
      what: "host and folder",
      run: async () => {
        await Promise.all([restoreHost(record), removeExcept(dir, keep)]);
      },
    });
    const links = await createLinks(nodeInstances.length, randomBytes(2).toString("hex"));
    undo.push({ stage: "links", what: "management links", run: () => links.remove() });
    record.host = links.host;
    record.links = links.names;
    await save();
    const imagesFile = join(dir, "images.tar");
    const images = buildImage({
      root: packageRoot(),
      out: imagesFile,
      withTestImages: true,
      ...(opts.testImages ? { e2eDir: kubeE2eDir() } : {}),
    });
    images.catch(() => {});
    const controlPlane = await startControlPlane(join(dir, "kubernetes"), {
      address: links.host,
      cluster: true,
      dualStack,
    });
    undo.push({ stage: "processes", what: "control plane", run: () => controlPlane.stop() });
    record.pids = controlPlane.pids();
    await save();
    const sim = await startSimulator(world, { host: links.host, logger: log.child({ component: "sim" }) });
    undo.push({ stage: "vpc", what: "simulator", run: () => sim.stop() });
    const netnsOf = nodeNetnsNames(world);
    const specs = nodeInstances.map((inst) => {
      const primary = sim.state.enis.get(sim.state.instances.get(inst.instanceId)!.primaryEniId)!;
      return {
        name: inst.instanceId.replace(/^i-/, ""),
        netns: netnsOf.get(inst.instanceId)!,
        primaryIp: primary.ips[0]!,
      };
    });
    await links.attach(specs);
    await links.reachVpc(world.vpc.cidr);
    await images;
    const adminToken = (await readFile(join(dir, "kubernetes", "pki", "tokens.csv"), "utf8")).split(",")[0]!;
    const nodes = await Promise.all(
      specs.map((spec) =>
        startNode({
          spec,
          dir: join(dir, spec.name),
          server: controlPlane.server,
          adminToken,
          images: imagesFile,
          dualStack,
          log,
        }).then((n) => {
          record.nodes.push(n);
          undo.push({ stage: "processes", what: `node ${n.name}`, run: () => stopNode(n, log) });
          return n;
        }),
      ),
    );
    await save();
    await rm(imagesFile, { force: true });
    await waitRegistered(
      controlPlane,
      specs.map((sp) => sp.name),
    );
    // Cluster DNS before any pod: named on the first node's address, behind the kube-dns Service.
    const first = specs[0]!;
    await mkdir(join(dir, "dns"), { recursive: true });
    const dns = await startClusterDns({
      admin: controlPlane.admin,
      netns: first.netns,
      ip: first.primaryIp,
      dir: join(dir, "dns"),
      log: log.child({ component: "dns" }),
    });
    undo.push({ stage: "processes", what: "cluster DNS", run: () => dns.stop() });
    const values = [
      "image.pullPolicy=Never",
      `config.cloud.endpoint=${sim.url}`,
      `config.cloud.vpcEndpoint=${sim.url}`,
      `config.cloud.metadataEndpoint=${sim.url}`,
      "config.clusterId=sandbox",
      `metrics.listen=0.0.0.0:${DAEMON_PORT}`,
      // Before the caller's settings, which may override it.
      ...(dualStack ? [`config.${DUAL_STACK_SETTING}`] : []),
      ...opts.sets.map((s) => `config.${s}`),
    ];
    const helm = (args: string[]): Promise<string> =>
      exec([helmBin(), "--kubeconfig", controlPlane.adminKubeconfig, ...args]);
    const release = async (verb: "install" | "upgrade", extra: string[] = []): Promise<void> => {
      const chart = join(packageRoot(), "charts", "eniway");
      const sets = [...values, ...extra].flatMap((v) => ["--set", v]);
      await helm([verb, RELEASE, chart, "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "5m", ...sets]);
      await waitClusterReady(controlPlane, nodes.length);
    };
    if (opts.install !== false) await release("install");
    const file: SandboxFile = {
      sim: simEntry(sim.url, world),
      vpcNetns: world.datapath.vpcNetns,
      hosts: sandboxHosts(world, sim),
      nodes: nodes.map((n) => ({
        name: n.name,
        instanceId: `i-${n.name}`,
        netns: n.netns,
        socket: join(n.dir, "host", "eniway-run", "eniway.sock"),
        cniConfFile: join(n.dir, "host", "cni-conf", "10-eniway.conflist"),
        cniBinDir: join(n.dir, "host", "cni-bin"),
        nodeName: n.name,
        http: `http://${n.primaryIp}:${DAEMON_PORT}`,
      })),
      kubernetes: { server: controlPlane.server, kubeconfig: controlPlane.adminKubeconfig },
      image: BUSYBOX,
      world,
      pids: [...nodes.flatMap((n) => Object.values(n.pids)), ...controlPlane.pids()],
    };
    await writeFile(join(dir, "sandbox.json"), JSON.stringify(file, null, 2));
    return { file, sim, controlPlane, nodes, helm, values, release, stop: stopAll };
  } catch (e) {
    if (e instanceof StartFailed) keep = e.logs;
    await stopAll();
    throw e;
  }
}

/**
 * A dual-stack cluster's world: an IPv6 VPC, and an IPv6 /64 on the
 * vSwitch of every node, where the daemon takes its pods' IPv6 addresses.
 */
export function checkDualStackWorld(world: World): void {
  const why = "sandbox --cluster --dual-stack needs a world with IPv6";
  if (!world.vpc.ipv6Cidr) throw new Error(`${why}: the VPC ${world.vpc.vpcId} has no vpc.ipv6Cidr`);
  const v6 = new Set(world.vSwitches.filter((v) => v.ipv6Cidr).map((v) => v.vSwitchId));
  const without = world.instances.filter((i) => i.role === "node" && !v6.has(i.vSwitchId));
  if (without.length > 0)
    throw new Error(
      `${why}: the vSwitch of ${without.map((i) => `${i.instanceId} (${i.vSwitchId})`).join(", ")} has no ipv6Cidr`,
    );
}

/** Every kubelet has registered its Node (NotReady until a CNI config exists). */
async function waitRegistered(cp: ControlPlane, names: string[], timeoutMs = 120_000): Promise<void> {
  const core = cp.admin.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  let have: string[] = [];
  while (Date.now() < deadline) {
    have = (await core.listNode()).items.map((n) => n.metadata?.name ?? "");
    if (names.every((n) => have.includes(n))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `kubelets not registered after ${timeoutMs / 1000} s: have ${have.join(", ") || "none"} of ${names.join(", ")}`,
  );
}

/** How many nodes report Ready. */
export async function readyNodeCount(core: CoreV1Api): Promise<number> {
  const nodes = (await core.listNode()).items;
  return nodes.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
    .length;
}

/**
 * Every eniway pod Ready and every node Ready (helm --wait can return
 * before the DaemonSet controller has counted the nodes).
 */
export async function waitClusterReady(
  cp: ControlPlane,
  nodeCount: number,
  timeoutMs = 180_000,
): Promise<void> {
  const core = cp.admin.makeApiClient(CoreV1Api);
  const apps = cp.admin.makeApiClient(AppsV1Api);
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const ds = await apps
      .readNamespacedDaemonSet({ name: RELEASE, namespace: RELEASE_NAMESPACE })
      .catch(() => null);
    const ready = await readyNodeCount(core);
    const st = ds?.status;
    last = `DaemonSet ${st?.numberReady ?? 0}/${st?.desiredNumberScheduled ?? 0} ready, nodes ${ready}/${nodeCount} Ready`;
    if (st && st.desiredNumberScheduled === nodeCount && st.numberReady === nodeCount && ready === nodeCount)
      return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`cluster not ready after ${timeoutMs / 1000} s: ${last}`);
}
