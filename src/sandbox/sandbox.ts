// `eniway sandbox`: a whole local cluster on one machine. The simulator in
// datapath mode makes the VPC out of namespaces; one daemon per node manages
// its node's namespace; a conflist per node points runtimes at the built
// plugin. Everything it makes is removed on SIGINT/SIGTERM or by `down`.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFile, mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { nodeNetnsNames, teardownDatapath } from "../../cloud/simulator/datapath.js";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { loadWorld, parseWorld, type World } from "../../cloud/simulator/world.js";
import { freePort, socketRequest } from "../../lib/http.js";
import type { Logger } from "../../lib/log.js";
import { NETNS_NAME } from "../../lib/net.js";
import { BUILT, DAEMON_NODE_FLAGS, endOf, findTool, hasExited, waitExit } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";
import { applyOverrides } from "../daemon/config.js";
import { type ClusterRecord, removeLinks, restoreHost, stopNode } from "./cluster.js";
import { type ControlPlane, startControlPlane } from "./controlplane.js";
import { ownError, removeExcept, StartFailed } from "./failure.js";

export interface SandboxNode {
  name: string;
  instanceId: string;
  netns: string;
  socket: string;
  cniConfFile: string;
  cniBinDir: string;
  /** The Node object's name (with --kubernetes). */
  nodeName?: string;
  /** The daemon's http.listen, for /metrics and /dashboard. */
  http: string;
}

/** A VPC host outside the cluster (a world instance of role "host"): no daemon, no kubelet, its primary IP only. */
export interface SandboxHost {
  name: string;
  instanceId: string;
  netns: string;
  ip: string;
}

export interface SandboxFile {
  sim: { endpoint: string; regionId: string; accessKeyId: string; accessKeySecret: string };
  vpcNetns: string;
  nodes: SandboxNode[];
  hosts: SandboxHost[];
  /** With --kubernetes or --cluster: the API server and an admin kubeconfig. */
  kubernetes?: { server: string; kubeconfig: string };
  /** With --cluster: a local image with sh and sleep for test pods (imagePullPolicy: Never). */
  image?: string;
  /** Extra, for `sandbox down` after a crash: the world and the daemons' pids. */
  world: World;
  pids: number[];
}

export interface Sandbox {
  file: SandboxFile;
  sim: Simulator;
  controlPlane: ControlPlane | null;
  stop(): Promise<void>;
}

/** sandbox.json's `sim`: where the simulator listens and the credentials it accepts. */
export function simEntry(url: string, world: World): SandboxFile["sim"] {
  const cred = world.credentials[0]!;
  return {
    endpoint: url,
    regionId: world.regionId,
    accessKeyId: cred.accessKeyId,
    accessKeySecret: cred.accessKeySecret,
  };
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0)
    throw new Error(
      `${what} needs root: it creates network namespaces, veth pairs and routes (run it as root, e.g. sudo npm start)`,
    );
}

/** The programs the sandbox and the datapath need, and the Debian package of each. */
const TOOLS: Record<string, string> = {
  ip: "iproute2",
  nsenter: "util-linux",
};

/**
 * Stops with the missing programs and their packages. iptables (Debian
 * priority "optional": absent from a fresh install) only gets a warning: the
 * datapath then has no return path for hostPorts reached from other nodes.
 */
export function requireTools(log: Logger): void {
  const missing = Object.entries(TOOLS).filter(([bin]) => findTool(bin) === null);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(" ");
    throw new Error(
      `missing ${missing.map(([b]) => b).join(", ")}: install them with apt-get install -y ${pkgs} (bash test/setup.sh installs everything)`,
    );
  }
  if (findTool("iptables") === null)
    log.warn(
      "iptables is not installed (apt-get install -y iptables): hostPorts reached from other nodes will not answer",
    );
}

/**
 * The default sandbox world; `prefix` names its namespaces (`PREFIX-vpc`,
 * `PREFIX-node-a`, …, `PREFIX-host-1`, …). `hosts`: VPC hosts outside the
 * cluster (role "host") beside the nodes.
 */
/**
 * `hosts`: instances that are no nodes (VPC hosts); `instanceType`: the
 * nodes' ENI quotas (default 3 ENIs × 6 IPs, a small instance).
 */
export function sandboxWorld(
  nodes: number,
  prefix = "eniway",
  opts: {
    hosts?: number;
    instanceType?: { eniQuantity: number; eniPrivateIpAddressQuantity: number };
    /** vsw-sandbox-a's blocks reserved for IP prefixes (prefix mode), e.g. ["10.0.1.128/25"]. */
    reservations?: string[];
    /** IPv6 in the VPC: fd00:10::/56, each vSwitch a /64, as many IPv6 per ENI as IPv4 (dual stack). */
    ipv6?: boolean;
  } = {},
): World {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  if (nodes < 1 || nodes > letters.length) throw new Error(`--nodes must be 1..${letters.length}`);
  const hosts = Array.from({ length: opts.hosts ?? 0 }, (_, i) => ({
    instanceId: `i-sandbox-host-${i + 1}`,
    instanceType: "ecs.g7.large",
    zoneId: "cn-hangzhou-k",
    vSwitchId: "vsw-sandbox-a",
    netns: `${prefix}-host-${i + 1}`,
    role: "host",
  }));
  return parseWorld({
    regionId: "cn-hangzhou",
    credentials: [{ accessKeyId: "LTAI-sandbox", accessKeySecret: "sandbox-secret-do-not-log" }],
    vpc: { vpcId: "vpc-sandbox", cidr: "10.0.0.0/16", ...(opts.ipv6 ? { ipv6Cidr: "fd00:10::/56" } : {}) },
    vSwitches: [
      {
        vSwitchId: "vsw-sandbox-a",
        zoneId: "cn-hangzhou-k",
        cidr: "10.0.1.0/24",
        reservations: opts.reservations ?? [],
        ...(opts.ipv6 ? { ipv6Cidr: "fd00:10:0:1::/64" } : {}),
      },
      {
        vSwitchId: "vsw-sandbox-b",
        zoneId: "cn-hangzhou-k",
        cidr: "10.0.2.0/24",
        ...(opts.ipv6 ? { ipv6Cidr: "fd00:10:0:2::/64" } : {}),
      },
    ],
    securityGroups: ["sg-sandbox"],
    instanceTypes: [
      {
        instanceTypeId: "ecs.g7.large",
        ...(opts.instanceType ?? { eniQuantity: 3, eniPrivateIpAddressQuantity: 6 }),
        ...(opts.ipv6 ? { eniIpv6AddressQuantity: opts.instanceType?.eniPrivateIpAddressQuantity ?? 6 } : {}),
      },
    ],
    instances: [
      ...Array.from({ length: nodes }, (_, i) => ({
        instanceId: `i-sandbox-${letters[i]}`,
        instanceType: "ecs.g7.large",
        zoneId: "cn-hangzhou-k",
        vSwitchId: "vsw-sandbox-a",
        netns: `${prefix}-node-${letters[i]}`,
      })),
      ...hosts,
    ],
    latencyMs: { "*": [5, 20], AttachNetworkInterface: 300, DetachNetworkInterface: 300 },
    datapath: { vpcNetns: `${prefix}-vpc` },
  });
}

/** Until the daemon is ready; if it ends first, its own error, with its log and config kept. */
async function waitReady(socket: string, child: ChildProcess, log: string, config: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (hasExited(child))
      throw new StartFailed(
        `daemon ended (${endOf(child)}): ${(await ownError(log)) || "it said nothing"}; its log is kept at ${log}`,
        [log, config],
      );
    const r = await socketRequest(socket, "GET", "/readyz", undefined, 1000).catch(() => null);
    if (r?.status === 200) return;
    await sleep(100);
  }
  throw new StartFailed(`daemon not ready after 60 s; its log is kept at ${log}`, [log]);
}

export async function sandboxUp(opts: {
  dir: string;
  nodes: number;
  worldFile?: string;
  /** A world object instead of a file (tests use unique namespace names). */
  world?: World;
  sets: string[];
  /** Start etcd + kube-apiserver beside the nodes; each daemon runs as the eniway ServiceAccount. */
  kubernetes?: boolean;
  log: Logger;
}): Promise<Sandbox> {
  requireRoot("eniway sandbox");
  requireTools(opts.log);
  const dir = resolve(opts.dir);
  const world = opts.world ?? (opts.worldFile ? await loadWorld(opts.worldFile) : sandboxWorld(opts.nodes));
  if (!world.datapath) world.datapath = { vpcNetns: "eniway-vpc" };
  await mkdir(dir, { recursive: true });
  const binDir = join(dir, "bin");
  await mkdir(binDir, { recursive: true });
  try {
    await copyFile(BUILT.plugin, join(binDir, "eniway"));
  } catch {
    throw new Error(`the plugin is not built (${BUILT.plugin}): run npm run build`);
  }
  const controlPlane = opts.kubernetes
    ? await startControlPlane(join(dir, "kubernetes")).catch(async (e: unknown) => {
        await rm(dir, { recursive: true, force: true });
        throw e;
      })
    : null;
  const sim = await startSimulator(world, { logger: opts.log.child({ component: "sim" }) }).catch(
    async (e: unknown) => {
      await controlPlane?.stop();
      await rm(dir, { recursive: true, force: true });
      throw e;
    },
  );
  const cred = world.credentials[0]!;
  const netnsOf = nodeNetnsNames(world);
  const children: ChildProcess[] = [];
  const nodes: SandboxNode[] = [];
  /** Stops everything and removes the folder, but for the logs in `keep`. */
  const stop = async (keep: string[] = []): Promise<void> => {
    // A daemon that died by a signal has no exit code, only a signal code: it has ended all the same.
    for (const c of children) if (!hasExited(c)) c.kill("SIGTERM");
    const ended = await Promise.all(children.map((c) => waitExit(c, 12_000)));
    if (!ended.every(Boolean)) {
      for (const c of children) if (!hasExited(c)) c.kill("SIGKILL");
      await Promise.all(children.map((c) => waitExit(c)));
    }
    await sim.stop();
    await controlPlane?.stop();
    await removeExcept(dir, keep);
  };
  try {
    for (const inst of world.instances.filter((i) => i.role === "node")) {
      const name = inst.instanceId.replace(/^i-/, "");
      const nodeDir = join(dir, name);
      // Root's alone: it holds the daemon's socket and state.
      await mkdir(nodeDir, { recursive: true, mode: 0o700 });
      let kubernetes: Record<string, unknown> = { enabled: false };
      if (controlPlane) {
        await controlPlane.createNode(name, 110);
        const kubeconfig = await controlPlane.serviceAccountKubeconfig(join(nodeDir, "kubeconfig"));
        kubernetes = { enabled: true, kubeconfig, nodeName: name };
      }
      const netns = netnsOf.get(inst.instanceId)!;
      const socket = join(nodeDir, "eniway.sock");
      const httpPort = await freePort();
      const raw: Record<string, unknown> = {
        cloud: {
          endpoint: sim.url,
          metadataEndpoint: `${sim.url}/meta/${inst.instanceId}`,
          accessKeyId: cred.accessKeyId,
          accessKeySecret: cred.accessKeySecret,
        },
        node: { netns: `/var/run/netns/${netns}` },
        clusterId: "sandbox",
        socket,
        stateDir: join(nodeDir, "state"),
        http: { listen: `127.0.0.1:${httpPort}` },
        pool: { resyncSeconds: 30 },
        kubernetes,
      };
      const configFile = join(nodeDir, "config.json");
      await writeFile(configFile, JSON.stringify(applyOverrides(raw, opts.sets), null, 2));
      const logFile = join(nodeDir, "daemon.log");
      const out = await open(logFile, "a");
      const child = spawn(
        process.execPath,
        [...DAEMON_NODE_FLAGS, BUILT.cli, "daemon", "--config", configFile],
        {
          stdio: ["ignore", out.fd, out.fd],
        },
      );
      await out.close();
      children.push(child);
      await waitReady(socket, child, logFile, configFile);
      const cniConfFile = join(nodeDir, "eniway.conflist");
      // cniVersion 1.0.0: libcni before 1.2 (containerd 1.6/1.7, podman 4)
      // rejects a 1.1.0 result ("unsupported CNI result version"); newer
      // runtimes pick the highest of cniVersions they know (CNI 1.1).
      await writeFile(
        cniConfFile,
        JSON.stringify(
          {
            cniVersion: "1.0.0",
            cniVersions: ["1.0.0", "1.1.0"],
            name: "eniway",
            plugins: [{ type: "eniway", socket }],
          },
          null,
          2,
        ),
      );
      nodes.push({
        name,
        instanceId: inst.instanceId,
        netns,
        socket,
        cniConfFile,
        cniBinDir: binDir,
        http: `http://127.0.0.1:${httpPort}`,
        ...(controlPlane ? { nodeName: name } : {}),
      });
    }
    const file: SandboxFile = {
      sim: simEntry(sim.url, world),
      vpcNetns: world.datapath.vpcNetns,
      nodes,
      hosts: sandboxHosts(world, sim),
      ...(controlPlane
        ? { kubernetes: { server: controlPlane.server, kubeconfig: controlPlane.adminKubeconfig } }
        : {}),
      world,
      pids: [...children.map((c) => c.pid ?? 0).filter((p) => p > 0), ...(controlPlane?.pids() ?? [])],
    };
    await writeFile(join(dir, "sandbox.json"), JSON.stringify(file, null, 2));
    return { file, sim, controlPlane, stop: () => stop() };
  } catch (e) {
    await stop(e instanceof StartFailed ? e.logs : []).catch(() => {});
    throw e;
  }
}

/** The world's VPC hosts (role "host"), each with its namespace and primary IP. */
export function sandboxHosts(world: World, sim: Simulator): SandboxHost[] {
  const netnsOf = nodeNetnsNames(world);
  return world.instances
    .filter((i) => i.role === "host")
    .map((i) => {
      const primary = sim.state.enis.get(sim.state.instances.get(i.instanceId)!.primaryEniId)!;
      return {
        name: i.instanceId.replace(/^i-/, ""),
        instanceId: i.instanceId,
        netns: netnsOf.get(i.instanceId)!,
        ip: primary.ips[0]!,
      };
    });
}

/** Clean up after a sandbox that could not clean up itself. */
export async function sandboxDown(dirArg: string, log: Logger): Promise<void> {
  requireRoot("eniway sandbox down");
  const dir = resolve(dirArg);
  let file: SandboxFile | null = null;
  try {
    file = JSON.parse(await readFile(join(dir, "sandbox.json"), "utf8")) as SandboxFile;
  } catch {
    log.warn("no readable sandbox.json; removing the folder only", { dir });
  }
  const cluster = await readFile(join(dir, "cluster.json"), "utf8").then(
    (t) => JSON.parse(t) as ClusterRecord,
    () => null,
  );
  if (cluster) {
    for (const n of cluster.nodes) await stopNode(n);
    for (const pid of cluster.pids ?? []) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
  if (file) {
    for (const pid of file.pids ?? []) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    // The stored world is already parsed (defaults filled in, e.g.
    // instanceTypeFamily: ""), which parseWorld would reject: use it as is.
    if (file.world) await teardownDatapath(file.world, log);
  }
  if (cluster) {
    await removeLinks(cluster.links);
    await restoreHost(cluster);
  }
  // Pod namespaces the demo made (it records them as it goes).
  const pods = await readFile(join(dir, "pods.json"), "utf8").then(
    (t) => JSON.parse(t) as unknown,
    () => [],
  );
  if (Array.isArray(pods)) {
    for (const ns of pods) {
      if (typeof ns !== "string" || !NETNS_NAME.test(ns)) continue;
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
}
