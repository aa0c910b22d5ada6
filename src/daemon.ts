// `eniway daemon`: discovers the node from metadata, opens the pool's store,
// reconciles with the cloud, then serves the API while the pool keeps itself
// between minIdle and maxIdle and resyncs periodically.

import { createServer, type Server } from "node:http";
import { type CloudApi, createCloudApi } from "../cloud/api.js";
import {
  type CredentialsProvider,
  jsonFileCredentialsProvider,
  ramRoleCredentialsProvider,
  staticCredentialsProvider,
} from "../cloud/credentials.js";
import { createMetadataClient, type MetadataClient } from "../cloud/metadata.js";
import { createDatapath } from "../cni/datapath/datapath.js";
import { createExecutor } from "../pool/executor.js";
import { createPool, type Pool, TryAgainError } from "../pool/pool.js";
import { type ReconcileDeps, type ReconcileReport, reconcile } from "../pool/reconcile.js";
import { openStore } from "../pool/store.js";
import { createVSwitchCache } from "../pool/vswitches.js";
import { type ApiServer, startApi } from "./api.js";
import { createCniHandlers } from "./cni.js";
import type { Config } from "./config.js";
import { parseListen } from "./flags.js";
import type { Logger } from "./log.js";

export const OWN_TAG_CREATOR = "creator";
export const OWN_TAG_CREATOR_VALUE = "eniway";
export const OWN_TAG_CLUSTER = "eniway.io/cluster";
export const OWN_TAG_NODE = "eniway.io/node";

export interface Daemon {
  pool: Pool;
  instanceId: string;
  stop(): Promise<void>;
}

function credentialsFor(config: Config, metadata: MetadataClient, log: Logger): CredentialsProvider {
  const c = config.cloud;
  if (c.accessKeyId)
    return staticCredentialsProvider({ accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret });
  if (c.credentialsFile) return jsonFileCredentialsProvider(c.credentialsFile);
  return ramRoleCredentialsProvider({ metadata, ...(c.ramRole ? { roleName: c.ramRole } : {}), logger: log });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  const metadata = createMetadataClient({ endpoint: config.cloud.metadataEndpoint, logger: log });
  const instanceId = config.node.instanceId || (await metadata.instanceId());
  const regionId = config.cloud.regionId || (await metadata.regionId());
  const instanceType = await metadata.instanceType();
  const nodeLog = log.child({ instanceId });
  const cloud: CloudApi = createCloudApi({
    regionId,
    ecsEndpoint: config.cloud.endpoint || `https://ecs.${regionId}.aliyuncs.com`,
    vpcEndpoint: config.cloud.vpcEndpoint || config.cloud.endpoint || `https://vpc.${regionId}.aliyuncs.com`,
    credentials: credentialsFor(config, metadata, nodeLog),
    rateLimits: config.cloud.rateLimits,
    timeoutMs: config.cloud.timeoutSeconds * 1000,
    logger: nodeLog,
  });

  const [type] = await cloud.describeInstanceTypes([instanceType]);
  if (!type) throw new Error(`instance type ${instanceType} is unknown to DescribeInstanceTypes`);
  const limits = {
    maxSecondaryEnis: Math.max(0, type.eniQuantity - 1),
    ipsPerEni: type.eniPrivateIpAddressQuantity,
  };
  const vSwitchIds = config.eni.vSwitchIds.length ? config.eni.vSwitchIds : [await metadata.vSwitchId()];
  let securityGroupIds = config.eni.securityGroupIds;
  if (securityGroupIds.length === 0) {
    const [primary] = await cloud.describeNetworkInterfaces({ instanceId, type: "Primary" });
    securityGroupIds = primary?.securityGroupIds ?? [];
    if (securityGroupIds.length === 0) throw new Error("no security group: set eni.securityGroupIds");
  }
  const ownTags = { [OWN_TAG_CREATOR]: OWN_TAG_CREATOR_VALUE, [OWN_TAG_CLUSTER]: config.clusterId };
  const tags = { ...config.eni.tags, ...ownTags, [OWN_TAG_NODE]: instanceId };

  const store = await openStore(config.stateDir, instanceId);
  const now = (): number => Date.now();
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const executor = createExecutor({
    cloud,
    metadata,
    store,
    log: nodeLog.child({ component: "executor" }),
    now,
    sleep,
    instanceId,
    securityGroupIds,
    tags,
    config: {
      attachTimeoutMs: config.pool.attachTimeoutSeconds * 1000,
      vSwitchBlockMs: config.pool.vSwitchBlockSeconds * 1000,
      eniLimitBackoffMs: config.pool.eniLimitBackoffSeconds * 1000,
      maxConcurrentAttaches: config.pool.maxConcurrentAttaches,
    },
  });

  const vSwitchCache = createVSwitchCache(cloud, vSwitchIds);
  await vSwitchCache.refresh();

  const pool = createPool({
    store,
    executor,
    log: nodeLog.child({ component: "pool" }),
    now,
    limits,
    targets: {
      minIdle: config.pool.minIdle,
      maxIdle: config.pool.maxIdle,
      cooldownMs: config.pool.cooldownSeconds * 1000,
      maxIpsPerCall: config.pool.maxIpsPerCall,
      idleReclaimMs: config.pool.idleReclaimSeconds * 1000,
      allocateTimeoutMs: config.pool.allocateTimeoutSeconds * 1000,
    },
    vSwitches: () => vSwitchCache.list(),
  });
  const reconcileDeps: ReconcileDeps = {
    cloud,
    metadata,
    store,
    executor,
    pool,
    log: nodeLog.child({ component: "reconcile" }),
    now,
    instanceId,
    ownTags,
    leakGraceMs: config.pool.leakGraceSeconds * 1000,
    staleIntentMs: config.pool.attachTimeoutSeconds * 2000,
  };

  let ready = false;
  let resyncNow: (startup: boolean) => Promise<ReconcileReport> = () =>
    Promise.reject(new Error("not started"));
  // Allocations wait for the start-up reconcile: until then the store may list
  // IPs the cloud no longer has. Releases and reads are served at once.
  let reconciled!: () => void;
  const startedUp = new Promise<void>((r) => {
    reconciled = r;
  });
  const allocateTimeoutMs = config.pool.allocateTimeoutSeconds * 1000;
  const gatedPool: Pool = {
    ...pool,
    async allocate(req) {
      if (!ready) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new TryAgainError("the daemon is still starting; try again")),
            allocateTimeoutMs,
          );
        });
        try {
          await Promise.race([startedUp, late]);
        } finally {
          clearTimeout(timer);
        }
      }
      return pool.allocate(req);
    },
  };
  const datapath = config.datapath.enabled
    ? createDatapath({
        nodeNetns: config.node.netns,
        mtu: config.datapath.mtu,
        log: nodeLog.child({ component: "datapath" }),
      })
    : null;
  const cni = datapath
    ? createCniHandlers({ pool: gatedPool, datapath, log: nodeLog.child({ component: "cni" }) })
    : undefined;
  const api: ApiServer = await startApi(config.socket, {
    pool: gatedPool,
    ...(cni ? { cni } : {}),
    log: nodeLog.child({ component: "api" }),
    ready: () => ready,
    resync: () => resyncNow(false),
  });
  const http = config.http.listen ? await startHttp(config.http.listen, pool, () => ready) : null;

  let resyncing: Promise<ReconcileReport> | null = null;
  resyncNow = (startup: boolean): Promise<ReconcileReport> => {
    resyncing ??= (async () => {
      try {
        await vSwitchCache
          .refresh()
          .catch((e: unknown) => nodeLog.warn("DescribeVSwitches failed", { error: String(e) }));
        const report = await reconcile(reconcileDeps, startup);
        nodeLog.info(startup ? "start-up reconcile done" : "resync done", { ...report });
        return report;
      } finally {
        resyncing = null;
      }
    })();
    return resyncing;
  };
  const resync = (startup: boolean): Promise<ReconcileReport> => resyncNow(startup);
  await resync(true);
  ready = true;
  reconciled();
  nodeLog.info("daemon ready", { socket: config.socket, limits, vSwitchIds, summary: pool.summary() });
  pool.kick();
  const tick = setInterval(() => pool.kick(), 1000);
  const resyncTimer = setInterval(() => {
    resync(false).catch((e: unknown) =>
      nodeLog.warn("resync failed", { error: e instanceof Error ? e.message : String(e) }),
    );
  }, config.pool.resyncSeconds * 1000);
  let repairing = false;
  const repairTimer = datapath
    ? setInterval(() => {
        if (repairing || !ready) return;
        repairing = true;
        const s = pool.summary();
        const enis = s.enis
          .filter((e) => e.phase === "ready")
          .map((e) => ({ eniId: e.eniId, mac: e.mac, gateway: e.gateway }));
        const attachments = () =>
          pool.allocations().map((a) => ({
            containerId: a.containerId,
            ifname: a.ifname,
            ip: a.ip,
            eni: { eniId: a.eniId, mac: a.mac, gateway: a.gateway },
          }));
        datapath
          .repair(attachments, enis)
          .catch((e: unknown) =>
            nodeLog.warn("datapath repair failed", { error: e instanceof Error ? e.message : String(e) }),
          )
          .finally(() => {
            repairing = false;
          });
      }, config.datapath.repairSeconds * 1000)
    : null;

  return {
    pool,
    instanceId,
    async stop() {
      clearInterval(tick);
      clearInterval(resyncTimer);
      if (repairTimer) clearInterval(repairTimer);
      ready = false;
      const closing = api.close();
      // In-flight work gets most of the 10 s budget; intents make an early exit safe anyway.
      await withTimeout(closing, 3000);
      await withTimeout(pool.stop(), 5000);
      await store.flush();
      if (http) await new Promise<void>((r) => http.close(() => r()));
      await cloud.close();
    },
  };
}

async function startHttp(listen: string, pool: Pool, ready: () => boolean): Promise<Server> {
  const { host, port } = parseListen(listen);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/healthz") return void res.writeHead(200).end("ok\n");
    if (path === "/readyz")
      return void res.writeHead(ready() ? 200 : 503).end(ready() ? "ready\n" : "not ready\n");
    if (path === "/metrics") {
      const s = pool.summary();
      const lines = [
        "# HELP eniway_pool_ips IPs in the pool by state.",
        "# TYPE eniway_pool_ips gauge",
        ...(["idle", "assigned", "cooling", "releasing", "pending"] as const).map(
          (k) => `eniway_pool_ips{state="${k}"} ${s[k]}`,
        ),
        "# HELP eniway_pool_enis Secondary ENIs in the pool.",
        "# TYPE eniway_pool_enis gauge",
        `eniway_pool_enis ${s.enis.length}`,
        "# HELP eniway_pool_waiting Allocations waiting for an IP.",
        "# TYPE eniway_pool_waiting gauge",
        `eniway_pool_waiting ${s.waiting}`,
        "",
      ];
      return void res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(lines.join("\n"));
    }
    res.writeHead(404).end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
