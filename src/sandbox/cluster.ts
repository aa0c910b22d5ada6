// `eniway sandbox up --cluster`: real Kubernetes nodes on the simulated VPC.
// Each sandbox node gets a containerd, a kubelet and a kube-proxy whose
// network is that node's namespace (ENIs appear there, the VPC's source
// check applies), all three in one private mount namespace of the node.
//
// Why each piece (each was seen to fail without it):
// - `nsenter --net`, never `ip netns exec`: the latter remounts /sys, which
//   detaches the cgroup mounts the kubelet and runc need.
// - Its own UTS namespace with the node's name as host name: hostNetwork
//   pods share it and answer with it (the upstream suite checks).
// - One mount namespace per node, shared by containerd and the kubelet (the
//   kubelet's volume mounts must be visible to containerd); it is made
//   rshared, as systemd makes a real host, so the netns mounts containerd
//   makes there reach the eniway DaemonSet's HostToContainer mount.
// - In that namespace, a private folder is bind-mounted over each host path
//   a node owns: the kubelet's hard-coded device-plugins and pod-log
//   folders (one kubelet's log GC would delete the other's pods' logs), and
//   the chart's CNI bin/conf, socket and state folders.
// - A management link per node (a veth from the root namespace, in
//   100.100.0.0/16, which the VPC never uses, like the ECS cloud services):
//   the node reaches the API server and the simulator's OpenAPI and
//   metadata there, from its primary IP, so the metadata service knows the
//   instance as ECS does. Pods cannot reach it (their traffic leaves by the
//   VPC): an in-cluster client in a pod would not reach the API server.
//
// The kubelet rewrites a few kernel sysctls; they are saved first and put
// back by stop() and by `sandbox down` (from cluster.json).

import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { exec } from "../../lib/exec.js";
import { ipBatch, ipJson, writeProcSys } from "../../lib/ip.js";
import type { Logger } from "../../lib/log.js";
import { cidrsOverlap, formatCidr, intToIp, ipToInt, isIpv4, NETNS_NAME, parseCidr } from "../../lib/net.js";
import { endOf, findTool, hasExited, logTail, pidAlive, pidRunning, spawnLogged } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";
import { PAUSE } from "../image/build.js";
import { DUAL_STACK_GATE, kubeBinDir, kubeconfigYaml } from "./controlplane.js";
import { CLUSTER_DNS_IP } from "./dns.js";
import { StartFailed } from "./failure.js";

/** The sysctls the kubelet writes (and a node's runc may), saved and restored. */
export const KUBELET_SYSCTLS = [
  "vm.overcommit_memory",
  "vm.panic_on_oom",
  "kernel.panic",
  "kernel.panic_on_oops",
  "kernel.keys.root_maxkeys",
  "kernel.keys.root_maxbytes",
];

/** Host paths each node owns privately: its own folder is bind-mounted over each in its mount namespace. */
export const NODE_PATHS: Record<string, string> = {
  "/var/lib/kubelet/device-plugins": "device-plugins",
  "/var/log/pods": "pods",
  "/var/log/containers": "containers",
  "/opt/cni/bin": "cni-bin",
  "/etc/cni/net.d": "cni-conf",
  "/run/eniway": "eniway-run",
  "/var/lib/eniway": "eniway-state",
};

/** The reference plugins a node's CNI bin folder starts with, as a distribution's package installs them. */
const REFERENCE_PLUGINS = ["loopback", "portmap", "bandwidth", "bridge", "host-local"];
const REFERENCE_DIR = "/usr/lib/cni";
const TOOLS: Record<string, string> = {
  containerd: "containerd",
  "containerd-shim-runc-v2": "containerd",
  ctr: "containerd",
  runc: "runc",
  nsenter: "util-linux",
  unshare: "util-linux",
  iptables: "iptables",
  busybox: "busybox-static",
  named: "bind9",
};
/** What a dual-stack node needs besides: kube-proxy writes the IPv6 Services' rules with it. */
const DUAL_STACK_TOOLS: Record<string, string> = { ip6tables: "iptables" };

export interface ClusterNodeSpec {
  name: string;
  netns: string;
  /** The primary private IP (eth0): the node's InternalIP and its metadata identity. */
  primaryIp: string;
}

export interface ClusterNode extends ClusterNodeSpec {
  dir: string;
  socket: string;
  /** The mount namespace holder, containerd, kubelet, kube-proxy. */
  pids: { holder: number; containerd: number; kubelet: number; kubeProxy: number };
}

/** What `sandbox down` needs to undo a cluster whose process is gone. */
export interface ClusterRecord {
  host: string;
  /** The root ends of the management links. */
  links: string[];
  /** The control plane's processes (etcd, kube-apiserver, controller-manager, scheduler). */
  pids: number[];
  nodes: ClusterNode[];
  sysctls: Record<string, string>;
  /** Host paths that did not exist before, removed at the end. */
  createdPaths: string[];
  /** cgroup folders containerd makes (`k8s.io` under each hierarchy) that did not exist before. */
  createdCgroups: string[];
}

export interface ClusterLinks {
  /** The root side of the first node's management link: API server and simulator listen here. */
  host: string;
  names: string[];
  /** Moves each node's end into its namespace, with routes both ways (after the simulator made the namespaces). */
  attach(nodes: ClusterNodeSpec[]): Promise<void>;
  /**
   * The control plane reaches the VPC (the API server proxies to pods, as
   * in a cloud's managed cluster): the VPC's CIDR through the first node,
   * which sends it on from its primary IP (SNAT), so that the VPC's source
   * check passes and every pod's reply comes back to it. IPv4 only, also in
   * a dual-stack cluster: the API server reaches a pod at its status.podIP
   * and a Service's endpoints in its Endpoints, both of the primary family
   * (IPv4); no node has an IPv6 address of its own for a source the VPC
   * would accept.
   */
  reachVpc(cidr: string): Promise<void>;
  remove(): Promise<void>;
}

/** The first node's rule for replies to the control plane: before eniway's own (512 and up). */
const CONTROL_PLANE_RULE = 256;

/** Refuses a VPC that overlaps a network this machine already uses (its route would shadow that one). */
async function checkVpcIsFree(cidr: string): Promise<void> {
  const vpc = parseCidr(cidr);
  const routes = await ipJson<{ dst?: string; dev?: string }[]>("", ["route", "show", "table", "main"]);
  for (const r of routes) {
    if (!r.dst || r.dst === "default") continue;
    const dst = r.dst.includes("/") ? r.dst : `${r.dst}/32`;
    let net: ReturnType<typeof parseCidr>;
    try {
      net = parseCidr(dst);
    } catch {
      continue; // a route with host bits (a /32 of ours is fine; anything odd is not ours to judge)
    }
    if (/^ewk[0-9a-f]{4}h\d+$/.test(r.dev ?? "")) continue; // the management links' own routes
    if (cidrsOverlap(vpc, net))
      throw new Error(
        `sandbox --cluster: the VPC ${cidr} overlaps ${dst} (dev ${r.dev ?? "?"}) of this machine; give the world another vpc.cidr`,
      );
  }
}

export function requireClusterTools(dualStack = false): void {
  const tools = { ...TOOLS, ...(dualStack ? DUAL_STACK_TOOLS : {}) };
  const missing = Object.entries(tools).filter(([t]) => findTool(t) === null);
  for (const p of REFERENCE_PLUGINS)
    if (!existsSync(join(REFERENCE_DIR, p)))
      missing.push([join(REFERENCE_DIR, p), "containernetworking-plugins"]);
  if (missing.length > 0)
    throw new Error(
      `sandbox --cluster${dualStack ? " --dual-stack" : ""}: missing ${missing.map(([t]) => t).join(", ")}: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(" ")} (bash test/setup.sh installs everything)`,
    );
  kubeBinDir();
}

const linkName = (kind: "h" | "n", i: number, salt: string): string => `ewk${salt}${kind}${i}`;

/**
 * The management links: one veth pair per node, both ends in the root
 * namespace for now so the API server and the simulator can listen on the
 * first root end before the node namespaces exist. The block is the first
 * 100.100.B.0/24 with no address of the root namespace in it.
 */
export async function createLinks(count: number, salt: string): Promise<ClusterLinks> {
  if (!/^[0-9a-f]{4}$/.test(salt)) throw new Error("link salt must be 4 hex digits");
  if (count < 1 || count > 60) throw new Error("a cluster sandbox has 1 to 60 nodes");
  const used = await ipJson<{ addr_info?: { local?: string; family?: string }[] }[]>("", ["addr", "show"]);
  const taken = new Set(used.flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? "")));
  let block = -1;
  for (let b = 250; b > 0 && block < 0; b--)
    if (![...taken].some((a) => a.startsWith(`100.100.${b}.`))) block = b;
  if (block < 0) throw new Error("no free 100.100.B.0/24 block for the management links");
  const base = ipToInt(`100.100.${block}.0`);
  const rootIp = (i: number): string => intToIp(base + 4 * i + 1);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const h = linkName("h", i, salt);
    lines.push(
      `link add ${h} type veth peer name ${linkName("n", i, salt)}`,
      `addr add ${rootIp(i)}/30 dev ${h}`,
      `link set ${h} up`,
    );
  }
  const remove = (): Promise<void> =>
    removeLinks(Array.from({ length: count }, (_, i) => linkName("h", i, salt)));
  const attached: ClusterNodeSpec[] = [];
  try {
    await ipBatch("", lines);
  } catch (e) {
    await remove();
    throw e;
  }
  return {
    host: rootIp(0),
    names: Array.from({ length: count }, (_, i) => linkName("h", i, salt)),
    async attach(nodes) {
      attached.push(...nodes);
      for (const [i, n] of nodes.entries()) {
        if (!NETNS_NAME.test(n.netns)) throw new Error(`invalid namespace ${n.netns}`);
        const end = linkName("n", i, salt);
        await ipBatch("", [
          `link set ${end} netns ${n.netns}`,
          `route replace ${n.primaryIp}/32 dev ${linkName("h", i, salt)}`,
        ]);
        await ipBatch(`/var/run/netns/${n.netns}`, [
          `link set ${end} up`,
          `link set lo up`,
          // No address of its own: everything the node sends here leaves from its primary IP.
          `route replace ${rootIp(i)}/32 dev ${end} src ${n.primaryIp}`,
          `route replace 100.100.${block}.0/24 via ${rootIp(i)} dev ${end} src ${n.primaryIp}`,
        ]);
      }
    },
    async reachVpc(cidr) {
      const via = attached[0];
      if (!via) throw new Error("reachVpc: attach the nodes first");
      await checkVpcIsFree(cidr);
      if (!isIpv4(via.primaryIp)) throw new Error(`invalid primary IP ${via.primaryIp}`);
      await exec([
        "nsenter",
        `--net=/var/run/netns/${via.netns}`,
        "iptables",
        "-w",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        `100.100.${block}.0/24`,
        "-d",
        formatCidr(parseCidr(cidr)),
        "-j",
        "SNAT",
        "--to-source",
        via.primaryIp,
      ]);
      // A reply from a pod of this node is un-NATed before it is routed: it must find the main
      // table (the way back over this link) before the pod's rule to its ENI's table.
      await ipBatch(`/var/run/netns/${via.netns}`, [
        `rule add to 100.100.${block}.0/24 lookup main priority ${CONTROL_PLANE_RULE}`,
      ]);
      await ipBatch("", [
        `route replace ${formatCidr(parseCidr(cidr))} via ${via.primaryIp} dev ${linkName("h", 0, salt)}`,
      ]);
    },
    remove,
  };
}

/** Deletes links of the root namespace (a veth's peer goes with it); missing ones are fine. */
export async function removeLinks(names: string[]): Promise<void> {
  await ipBatch(
    "",
    names.filter((n) => /^ewk[0-9a-f]{4}h\d+$/.test(n)).map((n) => `link del ${n}`),
    true,
  );
}

/** Node processes outlive this one (the sandbox's `down` stops them). */
const spawnDetached = (argv: string[], log: string): Promise<ChildProcess> =>
  spawnLogged(argv, log, { detached: true });

async function waitFor(
  what: string,
  child: ChildProcess,
  log: string,
  ok: () => Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (hasExited(child))
      throw new StartFailed(
        `${what} ended (${endOf(child)}): ${await logTail(log, 10)}\n(its log is kept at ${log})`,
        [log],
      );
    if (Date.now() > deadline)
      throw new StartFailed(`${what} not ready after ${ms / 1000} s; its log is kept at ${log}`, [log]);
    await sleep(100);
  }
}

const containerdConfig = (dir: string, socket: string): string => `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = "${socket}.debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${dir}/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`;

const kubeletConfig = (address: string): string => `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${address}
port: 10250
readOnlyPort: 0
healthzPort: 10248
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
clusterDNS: [${CLUSTER_DNS_IP}]
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
makeIPTablesUtilChains: false
`;

/** Saves what the kubelet changes on the host, and makes the bind-mount targets (remembering the new ones). */
export async function prepareHost(): Promise<
  Pick<ClusterRecord, "sysctls" | "createdPaths" | "createdCgroups">
> {
  const sysctls: Record<string, string> = {};
  for (const s of KUBELET_SYSCTLS)
    sysctls[s] = (await readFile(`/proc/sys/${s.replaceAll(".", "/")}`, "utf8")).trim();
  const createdPaths: string[] = [];
  for (const p of Object.keys(NODE_PATHS)) {
    let top = p;
    while (!existsSync(dirname(top))) top = dirname(top);
    if (!existsSync(p)) {
      createdPaths.push(top);
      await mkdir(p, { recursive: true });
    }
  }
  const createdCgroups = readdirSync("/sys/fs/cgroup")
    .map((h) => join("/sys/fs/cgroup", h, "k8s.io"))
    .filter((d) => existsSync(dirname(d)) && !existsSync(d));
  return { sysctls, createdPaths, createdCgroups };
}

/** Starts one node: its mount namespace, containerd (images imported), kubelet and kube-proxy. */
export async function startNode(o: {
  spec: ClusterNodeSpec;
  dir: string;
  server: string;
  adminToken: string;
  images: string;
  /** The IPv6DualStack gate on the kubelet and kube-proxy, and the node's IPv6 forwarding on. */
  dualStack?: boolean;
  log: Logger;
}): Promise<ClusterNode> {
  const { spec, dir } = o;
  const bin = kubeBinDir();
  await mkdir(join(dir, "containerd"), { recursive: true });
  await mkdir(join(dir, "logs"), { recursive: true });
  const socket = join(dir, "containerd", "containerd.sock");
  const holder = await spawnDetached(
    ["unshare", "--mount", "--uts", "--propagation", "slave", "--", "sleep", "2147483647"],
    join(dir, "logs", "holder.log"),
  );
  const pid = holder.pid!;
  // What has started so far, so a failure half-way stops it again.
  const node: ClusterNode = {
    ...spec,
    dir,
    socket,
    pids: { holder: pid, containerd: 0, kubelet: 0, kubeProxy: 0 },
  };
  try {
    const inMount = (argv: string[]): string[] => ["nsenter", `--target=${pid}`, "--mount", "--uts", ...argv];
    const inNode = (argv: string[]): string[] =>
      inMount([`--net=/var/run/netns/${spec.netns}`, "--", ...argv]);
    await waitFor("mount namespace", holder, join(dir, "logs", "holder.log"), async () =>
      readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("sleep"),
    );
    // Its own host name, as a machine has: hostNetwork pods (which share the node's) answer with it.
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(spec.name))
      throw new Error(`invalid node name ${spec.name}`);
    await exec(inMount(["--", "busybox", "hostname", spec.name]));
    await exec(inMount(["--", "mount", "--make-rshared", "/"]));
    for (const [target, name] of Object.entries(NODE_PATHS)) {
      const own = join(dir, "host", name);
      await mkdir(own, { recursive: true });
      await exec(inMount(["--", "mount", "--bind", own, target]));
    }
    for (const p of REFERENCE_PLUGINS)
      await copyFile(join(REFERENCE_DIR, p), join(dir, "host", "cni-bin", p));
    if (o.dualStack) await enableIpv6(spec.netns);
    const gates = o.dualStack ? [DUAL_STACK_GATE] : [];
    await writeFile(join(dir, "containerd.toml"), containerdConfig(dir, socket));
    const containerd = await spawnDetached(
      inNode(["containerd", "--config", join(dir, "containerd.toml")]),
      join(dir, "logs", "containerd.log"),
    );
    node.pids.containerd = containerd.pid ?? 0;
    await waitFor("containerd", containerd, join(dir, "logs", "containerd.log"), () =>
      exec(["ctr", "-a", socket, "version"]).then(
        () => true,
        () => false,
      ),
    );
    await exec(["ctr", "-n", "k8s.io", "-a", socket, "images", "import", o.images]);
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, kubeconfigYaml(o.server, "admin", o.adminToken), { mode: 0o600 });
    await writeFile(join(dir, "kubelet.yaml"), kubeletConfig(spec.primaryIp));
    const kubelet = await spawnDetached(
      inNode([
        join(bin, "kubelet"),
        `--config=${join(dir, "kubelet.yaml")}`,
        `--kubeconfig=${kubeconfig}`,
        "--container-runtime=remote",
        `--container-runtime-endpoint=unix://${socket}`,
        `--image-service-endpoint=unix://${socket}`,
        "--runtime-request-timeout=5m",
        `--pod-infra-container-image=${PAUSE}`,
        `--hostname-override=${spec.name}`,
        `--node-ip=${spec.primaryIp}`,
        `--root-dir=${join(dir, "kubelet")}`,
        `--cert-dir=${join(dir, "kubelet", "pki")}`,
        "--register-node=true",
        `--node-labels=eniway.io/sandbox-node=${spec.name}`,
        // containerd passes every IP of the CNI result, and the kubelet reports them all in
        // status.podIPs whatever its gate (the API server's keeps both); with it, a dual
        // --node-ip and both addresses of a hostNetwork pod, as upstream runs dual stack.
        ...gates,
        "--v=1",
      ]),
      join(dir, "logs", "kubelet.log"),
    );
    node.pids.kubelet = kubelet.pid ?? 0;
    const kubeProxy = await spawnDetached(
      inNode([
        join(bin, "kube-proxy"),
        `--kubeconfig=${kubeconfig}`,
        `--hostname-override=${spec.name}`,
        "--proxy-mode=iptables",
        `--bind-address=${spec.primaryIp}`,
        "--healthz-bind-address=127.0.0.1:10256",
        "--metrics-bind-address=127.0.0.1:10249",
        // Leave the host's conntrack table alone: 0 keeps the kernel's settings.
        "--conntrack-max-per-core=0",
        "--conntrack-min=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
        // With the gate, one proxier per family: iptables for IPv4 Services, ip6tables for IPv6.
        ...gates,
        "--v=1",
      ]),
      join(dir, "logs", "kube-proxy.log"),
    );
    node.pids.kubeProxy = kubeProxy.pid ?? 0;
    o.log.info("node started", { node: spec.name, netns: spec.netns });
    return node;
  } catch (e) {
    await stopNode(node);
    throw e;
  }
}

/**
 * IPv6 on in a dual-stack node's namespace, forwarding included: kube-proxy's
 * ip6tables rules send a pod's IPv6 Service traffic on to a pod of another
 * node. (The simulator turns forwarding on in an IPv6 world already; a node
 * must not depend on it.)
 */
async function enableIpv6(netns: string): Promise<void> {
  if (!existsSync("/proc/sys/net/ipv6"))
    throw new Error(
      "sandbox --cluster --dual-stack: this kernel has no IPv6 (/proc/sys/net/ipv6 is missing)",
    );
  await writeProcSys(`/var/run/netns/${netns}`, {
    "net/ipv6/conf/all/disable_ipv6": "0",
    "net/ipv6/conf/default/disable_ipv6": "0",
    "net/ipv6/conf/all/forwarding": "1",
  });
}

/** SIGTERM, SIGKILL after `ms`, and back once the process is gone. */
export async function stopPid(pid: number, ms = 10_000): Promise<void> {
  if (pid <= 0 || !pidRunning(pid)) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + ms;
  while (pidRunning(pid) && Date.now() < deadline) await sleep(50);
  if (pidRunning(pid)) process.kill(pid, "SIGKILL");
  while (pidRunning(pid)) await sleep(20);
}

/** Parent pid of every process, from /proc. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.set(Number(d), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every process below these (not themselves). */
function descendants(roots: number[]): number[] {
  const ppid = parents();
  const found = new Set<number>();
  let frontier = new Set(roots);
  while (frontier.size > 0) {
    const next = new Set<number>();
    for (const [pid, parent] of ppid) if (frontier.has(parent) && !found.has(pid)) next.add(pid);
    for (const p of next) found.add(p);
    frontier = next;
  }
  return [...found];
}

/** SIGKILL to each, then back once all have ended (a zombie has), at most 5 s. */
async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  while (pids.some(pidRunning) && Date.now() < deadline) await sleep(20);
}

/** The shims a node's containerd started: their command line names its socket. */
function shimsOf(socket: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (cmd[0]?.endsWith("containerd-shim-runc-v2") && cmd.includes(socket)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Pod namespaces still mounted in the node's mount namespace (their files show in the root one). */
export async function podNetns(node: ClusterNode): Promise<string[]> {
  if (!pidAlive(node.pids.holder)) return [];
  const out = await exec([
    "nsenter",
    `--target=${node.pids.holder}`,
    "--mount",
    "--",
    "findmnt",
    "-rn",
    "-o",
    "TARGET",
  ]).catch(() => "");
  return out
    .split("\n")
    .map((l) => /^\/run\/netns\/(cni-[0-9a-f-]+)$/.exec(l.trim())?.[1])
    .filter((n): n is string => n !== undefined);
}

/**
 * Stops a node at once, whatever runs on it: the kubelet and kube-proxy
 * (so that nothing starts a container again), then every container process
 * under the node's shims with SIGKILL, containerd, the shims and the mount
 * namespace, whose mounts (pod namespaces, overlays, the node's folders) go
 * with it. Nothing of the node outlives it: its pods' network namespaces
 * are freed with their last process, and their files on /run are removed.
 */
export async function stopNode(node: ClusterNode, log?: Logger): Promise<void> {
  const t0 = performance.now();
  const lap = (what: string): void =>
    log?.debug("node stop", { node: node.name, what, ms: Math.round(performance.now() - t0) });
  const leftovers = await podNetns(node);
  lap("mounts read");
  await Promise.all([stopPid(node.pids.kubelet, 2000), stopPid(node.pids.kubeProxy, 2000)]);
  lap("kubelet and kube-proxy gone");
  const shims = shimsOf(node.socket);
  // A container may fork while it is killed: look again until nothing is left below the shims.
  for (let round = 0; round < 10; round++) {
    const below = descendants(shims);
    if (below.length === 0) break;
    await killAll(below);
  }
  lap("containers gone");
  await stopPid(node.pids.containerd, 2000);
  lap("containerd gone");
  await killAll(shimsOf(node.socket));
  await stopPid(node.pids.holder, 1000);
  lap("shims and mount namespace gone");
  // The mounts went with the mount namespace; the files stayed on /run's tmpfs.
  for (const ns of leftovers) await rm(join("/run/netns", ns), { force: true });
}

/** Puts back the sysctls, removes the host paths and cgroups that were new. */
export async function restoreHost(
  r: Pick<ClusterRecord, "sysctls" | "createdPaths" | "createdCgroups">,
): Promise<void> {
  for (const [k, v] of Object.entries(r.sysctls))
    await writeFile(`/proc/sys/${k.replaceAll(".", "/")}`, `${v}\n`).catch(() => {});
  for (const p of r.createdPaths) await rm(p, { recursive: true, force: true });
  await Promise.all(r.createdCgroups.map(removeCgroup));
}

/**
 * Removes a cgroup folder bottom-up: cgroup folders go with rmdir(2) alone
 * (their files cannot be unlinked), so never with rm -r; one system call
 * each, not a process (a cluster of 60 pods leaves a thousand of them).
 */
async function removeCgroup(dir: string): Promise<void> {
  const children = await readdir(dir, { withFileTypes: true }).catch(() => []);
  await Promise.all(children.filter((e) => e.isDirectory()).map((e) => removeCgroup(join(dir, e.name))));
  await rmdir(dir).catch(() => {});
}
