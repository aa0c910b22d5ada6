// `eniway daemon`: reads the node from the metadata service and its quotas
// from the cloud, builds the node (node.ts), serves the socket API and the
// HTTP endpoints, then reconciles and becomes ready. A failed start undoes
// what it started: no socket, listener or store lock is left behind.

import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { type CloudApi, createCloudApi } from "../../cloud/api.js";
import {
  type CredentialsProvider,
  jsonFileCredentialsProvider,
  ramRoleCredentialsProvider,
  staticCredentialsProvider,
} from "../../cloud/credentials.js";
import { createMetadataClient, type MetadataClient } from "../../cloud/metadata.js";
import { hostVethName } from "../../cni/datapath/names.js";
import { closeServer, listen, parseListen } from "../../lib/http.js";
import type { Logger } from "../../lib/log.js";
import { packageRoot } from "../../lib/process.js";
import { withTimeout } from "../../lib/time.js";
import { type DashboardData, dashboardData, serveDashboard } from "../dashboard/dashboard.js";
import { createKubeApi, type KubeApi } from "../kubernetes/api.js";
import {
  fromKubeconfig,
  inCluster,
  type KubeConnection,
  SERVICE_ACCOUNT_DIR,
} from "../kubernetes/connection.js";
import { createKubernetes, type Kubernetes, type NodePort } from "../kubernetes/kubernetes.js";
import { createMetrics, type Metrics, type NodeView } from "../metrics/metrics.js";
import { type ApiServer, startApi } from "./api.js";
import { type CniCommand, type CniDone, type CniExecDeps, type CniInvocation, runCni } from "./cni-exec.js";
import { type Config, ConfigError } from "./config.js";
import { conflist, writeConflist } from "./conflist.js";
import { type DelQueue, delQueueDir, startDelQueue } from "./del-queue.js";
import { gatherMapping } from "./mapping.js";
import { createNode, type Node, type NodeSpec } from "./node.js";
import { nodePolicy } from "./policy.js";

export interface Daemon {
  node: Node;
  kubernetes: Kubernetes | null;
  stop(): Promise<void>;
}

const VERSION = (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string })
  .version;

/** The Kubernetes client, or null when `kubernetes.enabled` (auto: in a cluster or given a kubeconfig) says off. */
export function kubeClientOf(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): { api: KubeApi; nodeName: string } | null {
  const k = config.kubernetes;
  const inPod = Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(join(SERVICE_ACCOUNT_DIR, "token"));
  const on = k.enabled === "auto" ? Boolean(k.kubeconfig) || inPod : k.enabled;
  if (!on) return null;
  if (!k.kubeconfig && !inPod)
    throw new ConfigError(
      "kubernetes.kubeconfig: is required when kubernetes.enabled is true outside a cluster (no ServiceAccount token)",
    );
  const nodeName = k.nodeName || env.NODE_NAME || "";
  if (!nodeName)
    throw new ConfigError("kubernetes.nodeName: is required (or set the environment variable NODE_NAME)");
  let conn: KubeConnection;
  try {
    conn = k.kubeconfig ? fromKubeconfig(k.kubeconfig) : inCluster(env);
  } catch (e) {
    throw new ConfigError(
      // The first line only: a parser's excerpt of the file could hold its token.
      `kubernetes.kubeconfig: cannot load ${k.kubeconfig ?? "the in-cluster config"}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  return { api: createKubeApi(conn), nodeName };
}

/** What the Kubernetes side needs of the node. */
function nodePort(node: Node, found: Discovered, kube: Kubernetes): NodePort {
  return {
    limits: found.limits,
    mode: node.targets.mode,
    allocations: () => node.pool.allocations(),
    release: async (a) => {
      if (node.cni) await node.cni.del({ containerId: a.containerId, ifname: a.ifname });
      else await node.pool.release(a.containerId, a.ifname, { hold: kube.holdsIp(a.pod) });
    },
    health: () => {
      const s = node.pool.summary();
      return {
        vSwitchIds: found.vSwitchIds,
        blockedVSwitches: s.blockedVSwitches,
        createBackoffUntil: s.createBackoffUntil,
        enis: s.enis.length,
        maxEnis: found.limits.maxSecondaryEnis,
      };
    },
  };
}

function credentialsFor(config: Config, metadata: MetadataClient, log: Logger): CredentialsProvider {
  const c = config.cloud;
  if (c.accessKeyId)
    return staticCredentialsProvider({ accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret });
  if (c.credentialsFile) return jsonFileCredentialsProvider(c.credentialsFile);
  return ramRoleCredentialsProvider({ metadata, ...(c.ramRole ? { roleName: c.ramRole } : {}), logger: log });
}

type Discovered = Pick<NodeSpec, "instanceId" | "cloud" | "limits" | "vSwitchIds" | "securityGroupIds">;

/** The node as the cloud describes it: identity, quotas, vSwitches and security groups. */
async function discover(
  config: Config,
  metadata: MetadataClient,
  metrics: Metrics,
  log: Logger,
): Promise<Discovered> {
  const instanceId = config.node.instanceId || (await metadata.instanceId());
  const regionId = config.cloud.regionId || (await metadata.regionId());
  const instanceType = await metadata.instanceType();
  const cloud = createCloudApi({
    observer: metrics.cloud,
    regionId,
    ecsEndpoint: config.cloud.endpoint || `https://ecs.${regionId}.aliyuncs.com`,
    vpcEndpoint: config.cloud.vpcEndpoint || config.cloud.endpoint || `https://vpc.${regionId}.aliyuncs.com`,
    credentials: credentialsFor(config, metadata, log.child({ instanceId })),
    rateLimits: config.cloud.rateLimits,
    timeoutMs: config.cloud.timeoutSeconds * 1000,
    logger: log.child({ instanceId }),
  });
  try {
    const [type] = await cloud.describeInstanceTypes([instanceType]);
    if (!type) throw new Error(`instance type ${instanceType} is unknown to DescribeInstanceTypes`);
    const vSwitchIds = config.eni.vSwitchIds.length ? config.eni.vSwitchIds : [await metadata.vSwitchId()];
    let securityGroupIds = config.eni.securityGroupIds;
    if (securityGroupIds.length === 0) {
      const [primary] = await cloud.describeNetworkInterfaces({ instanceId, type: "Primary" });
      securityGroupIds = primary?.securityGroupIds ?? [];
      if (securityGroupIds.length === 0) throw new Error("no security group: set eni.securityGroupIds");
    }
    if (config.ipStack === "dual" && type.eniIpv6AddressQuantity === 0)
      throw new Error(
        `ipStack dual: instance type ${instanceType} takes no IPv6 address on an ENI (EniIpv6AddressQuantity 0)`,
      );
    const limits = {
      maxSecondaryEnis: Math.max(0, type.eniQuantity - 1),
      // Dual stack pairs each IPv4 with an IPv6: an ENI serves as many pods as the smaller quota.
      ipsPerEni:
        config.ipStack === "dual"
          ? Math.min(type.eniPrivateIpAddressQuantity, type.eniIpv6AddressQuantity)
          : type.eniPrivateIpAddressQuantity,
      cpuCount: type.cpuCoreCount,
      ...(config.ipStack === "dual" ? { ipv6PerEni: type.eniIpv6AddressQuantity } : {}),
    };
    if (config.ipStack === "dual") await requireIpv6VSwitches(cloud, vSwitchIds);
    return { instanceId, cloud, limits, vSwitchIds, securityGroupIds };
  } catch (e) {
    await cloud.close();
    throw e;
  }
}

/** Dual stack: every vSwitch the pool creates ENIs in must have an IPv6 CIDR block, or its pods get no IPv6. */
async function requireIpv6VSwitches(cloud: CloudApi, vSwitchIds: string[]): Promise<void> {
  const found = await cloud.describeVSwitches({ vSwitchIds });
  const without = vSwitchIds.filter((id) => !found.find((v) => v.vSwitchId === id)?.ipv6CidrBlock);
  if (without.length > 0)
    throw new Error(
      `ipStack dual: vSwitch ${without.join(", ")} has no IPv6 CIDR block (enable IPv6 on it, or set eni.vSwitchIds to vSwitches that have one)`,
    );
}

/** The node's settings from the daemon's configuration. */
export function nodeSpecOf(
  config: Config,
  found: Discovered,
  metadata: MetadataClient,
  log: Logger,
): NodeSpec {
  const p = config.pool;
  return {
    ...found,
    metadata,
    log,
    stateDir: config.stateDir,
    clusterId: config.clusterId,
    tags: config.eni.tags,
    targets: {
      mode: p.mode === "prefix" ? "prefix" : "ip",
      ipStack: config.ipStack === "dual" ? "dual" : "ipv4",
      minIdle: p.minIdle,
      maxIdle: p.maxIdle,
      cooldownMs: p.cooldownSeconds * 1000,
      maxIpsPerCall: p.maxIpsPerCall,
      idleReclaimMs: p.idleReclaimSeconds * 1000,
      allocateTimeoutMs: p.allocateTimeoutSeconds * 1000,
      statefulHoldMs: p.statefulHoldSeconds * 1000,
    },
    executor: {
      attachTimeoutMs: p.attachTimeoutSeconds * 1000,
      vSwitchBlockMs: p.vSwitchBlockSeconds * 1000,
      eniLimitBackoffMs: p.eniLimitBackoffSeconds * 1000,
      maxConcurrentAttaches: p.maxConcurrentAttaches,
    },
    leakGraceMs: p.leakGraceSeconds * 1000,
    staleIntentMs: p.attachTimeoutSeconds * 2000,
    timers: {
      tickMs: 1000,
      resyncMs: p.resyncSeconds * 1000,
      repairMs: config.datapath.enabled ? config.datapath.repairSeconds * 1000 : 0,
    },
    datapath: config.datapath.enabled
      ? { nodeNetns: config.node.netns, mtu: config.datapath.mtu, ipv6: config.ipStack === "dual" }
      : null,
    cni: {
      gcMinAgeMs: config.cni.gcMinAgeSeconds * 1000,
      netnsGoneGraceMs: config.cni.netnsGoneGraceSeconds * 1000,
    },
  };
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  const client = kubeClientOf(config);
  const metrics = createMetrics();
  const metadata = createMetadataClient({
    endpoint: config.cloud.metadataEndpoint,
    logger: log,
    observer: (item, seconds, error) => metrics.metadata(item, seconds, error),
  });
  const found = await discover(config, metadata, metrics, log);
  const kube = client
    ? createKubernetes({
        ...client,
        log: log.child({ instanceId: found.instanceId, component: "kubernetes", nodeName: client.nodeName }),
        releaseGraceMs: config.kubernetes.releaseGraceSeconds * 1000,
        checkMs: config.kubernetes.checkSeconds * 1000,
      })
    : null;
  let node: Node | null = null;
  const policy = await nodePolicy({
    config,
    kube: client,
    log: log.child({ instanceId: found.instanceId, component: "policy" }),
    localPods: () =>
      (node?.pool.allocations() ?? []).map((a) => ({
        ...a.pod,
        ip: a.ip,
        ...(a.ipv6 ? { ip6: a.ipv6 } : {}),
        hostIf: hostVethName(a.containerId, a.ifname),
        since: a.assignedAt,
      })),
    observer: {
      ...metrics.policy,
      cannotEnforce: (ref, message) => kube?.policyNotEnforced(ref, message),
      held: (pod, message) => kube?.policyPending(pod, message),
    },
  });
  // The rules follow the pod's ADD or DEL once its answer is on its way.
  const recompile = (): void => void setImmediate(() => void policy?.sync().catch(() => {}));
  const policyHooks = policy
    ? { admitting: () => policy.admitting(), wired: recompile, unwired: recompile }
    : {};
  try {
    node = await createNode({
      ...nodeSpecOf(config, found, metadata, log),
      observer: {
        allocation: (result, seconds) => metrics.allocation(result, seconds),
        storeWrite: (seconds) => metrics.storeWrite(seconds),
        reconciled: (report, startup) => metrics.reconciled(report, startup),
        repaired: (report) => metrics.repaired(report),
        netnsGone: (a) => {
          metrics.released("netns_gone", 1);
          metrics.event({
            kind: "released",
            subject: a.containerId.slice(0, 12),
            detail: `${a.ip} (namespace gone)`,
          });
        },
        ...(kube
          ? {
              cloudFailure: (f) => {
                metrics.event({ kind: "cloud", subject: f.reason, detail: f.message });
                kube.cloudFailure(f);
              },
              allocated: (pod, a) => kube.allocated(pod, a),
              allocationFailed: (pod, e) => kube.allocationFailed(pod, e),
              holdsIp: (pod) => kube.holdsIp(pod),
              ...policyHooks,
            }
          : {
              cloudFailure: (f) => metrics.event({ kind: "cloud", subject: f.reason, detail: f.message }),
            }),
      },
    });
  } catch (e) {
    await found.cloud.close();
    throw e;
  }
  const identity = { instanceId: node.instanceId, nodeName: client?.nodeName ?? "" };
  const view: NodeView = {
    summary: () => node.pool.summary(),
    ips: () => node.pool.ips(),
    vSwitches: () => node.vSwitches(),
    kubernetes: () => kube?.stats() ?? null,
    policy: () => policy,
  };
  metrics.bind(view, { version: VERSION, node: identity.nodeName || identity.instanceId });
  const nodeLog = log.child({ instanceId: node.instanceId });
  let api: ApiServer | null = null;
  let delQueue: DelQueue | null = null;
  // Ready once the node is and the DELs recorded while the daemon was away are done.
  let recordedDelsDone = false;
  const ready = (): boolean => recordedDelsDone && node.ready();
  let http: Server | null = null;
  const stop = async (): Promise<void> => {
    // Not ready, then the socket: no new work. Requests in flight get a few seconds.
    node.drain();
    delQueue?.stop();
    if (api) await withTimeout(api.close(), 3000);
    // Pending Events get a moment; an API server that does not answer gets no more.
    if (kube) await withTimeout(kube.stop(), 3000);
    if (policy) await withTimeout(policy.stop(), 3000);
    await node.stop();
    if (http) await closeServer(http);
  };
  try {
    // The gate before any pod is served: a pod is held until its rules are in.
    await policy?.prepare().catch(() => {}); // logged; each ADD tries again until it works
    const cniDeps: CniExecDeps | null = node.cni
      ? {
          cni: node.cni,
          nodeNetns: config.node.netns,
          ready,
          log: nodeLog.child({ component: "cni" }),
          observe: (command, result, seconds, done) => observeCni(metrics, command, result, seconds, done),
        }
      : null;
    const runCniHere = cniDeps ? (inv: CniInvocation) => runCni(inv, cniDeps) : null;
    api = await startApi(config.socket, {
      pool: node.pool,
      ...(runCniHere ? { cni: { run: runCniHere } } : {}),
      log: nodeLog.child({ component: "api" }),
      ready,
      resync: () => node.resync(false),
      mapping: () => gatherMapping({ pool: node.pool, cloud: node.cloud, kube: client }),
      kubernetes: () => kube?.stats() ?? null,
      ...(policy ? { policy } : {}),
    });
    if (config.http.listen)
      http = await startHttp(config.http.listen, {
        ready,
        metrics,
        dashboard: () => dashboardData(view, metrics, identity),
      });
    await node.start();
    if (runCniHere) {
      delQueue = startDelQueue({
        dir: delQueueDir(config.socket),
        run: runCniHere,
        assignedAt: (containerId, ifname) =>
          node.pool.allocations().find((a) => a.containerId === containerId && a.ifname === ifname)
            ?.assignedAt ?? null,
        log: nodeLog.child({ component: "cni" }),
        everyMs: DEL_QUEUE_MS,
      });
      // Before the node is announced: what was deleted while the daemon was away is released first.
      const completed = await delQueue.drain();
      if (completed > 0) nodeLog.info("completed DELs recorded while the daemon was away", { completed });
    }
    recordedDelsDone = true;
    kube?.start(nodePort(node, found, kube));
    policy?.start();
    if (config.cni.confDir) {
      const file = await writeConflist(config.cni.confDir, conflist({ socket: config.socket }));
      nodeLog.info("CNI config written", { file });
    }
  } catch (e) {
    await stop().catch((err: unknown) =>
      nodeLog.error("clean-up after a failed start failed", { error: String(err) }),
    );
    throw e;
  }
  nodeLog.info("daemon ready", {
    socket: config.socket,
    http: config.http.listen || undefined,
    kubernetes: client ? { server: client.api.server, nodeName: client.nodeName } : false,
  });
  return { node, kubernetes: kube, stop };
}

/** How often recorded DELs are looked for after the start (one that came in a restart's window). */
const DEL_QUEUE_MS = 10_000;

/** A finished CNI request in the metrics and the dashboard's events. */
function observeCni(
  metrics: Metrics,
  command: CniCommand,
  result: string,
  seconds: number,
  done?: CniDone,
): void {
  metrics.cni(command, result, seconds, done?.command === "ADD" ? done.timings : undefined);
  if (done?.command === "ADD")
    metrics.event({ kind: "allocated", subject: done.pod, detail: `${done.ip} on ${done.eniId}` });
  else if (done?.command === "DEL" && done.released)
    metrics.event({ kind: "released", subject: done.containerId.slice(0, 12), detail: done.released });
  else if (done?.command === "GC" && done.released > 0) metrics.released("gc", done.released);
  else if (!done && command === "ADD") metrics.event({ kind: "failed", subject: "ADD", detail: result });
}

/** http.listen: health, readiness, Prometheus metrics and the dashboard. */
async function startHttp(
  where: string,
  deps: { ready(): boolean; metrics: Metrics; dashboard(): Promise<DashboardData> },
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const serve = async (): Promise<void> => {
      if (path === "/healthz") return void res.writeHead(200).end("ok\n");
      if (path === "/readyz")
        return void res.writeHead(deps.ready() ? 200 : 503).end(deps.ready() ? "ready\n" : "not ready\n");
      if (path === "/metrics") {
        const text = await deps.metrics.text();
        return void res.writeHead(200, { "content-type": deps.metrics.contentType }).end(text);
      }
      if (await serveDashboard(path, res, deps.dashboard)) return;
      res.writeHead(404).end("not found\n");
    };
    serve().catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(`internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  });
  await listen(server, parseListen(where));
  return server;
}
