// `eniway daemon`: reads the node from the metadata service and its quotas
// from the cloud, builds the node (node.ts), serves the socket API and the
// HTTP endpoints, then reconciles and becomes ready. A failed start undoes
// what it started: no socket, listener or store lock is left behind.

import { createServer, type Server } from "node:http";
import { createCloudApi } from "../../cloud/api.js";
import {
  type CredentialsProvider,
  jsonFileCredentialsProvider,
  ramRoleCredentialsProvider,
  staticCredentialsProvider,
} from "../../cloud/credentials.js";
import { createMetadataClient, type MetadataClient } from "../../cloud/metadata.js";
import { closeServer, listen, parseListen } from "../../lib/http.js";
import type { Logger } from "../../lib/log.js";
import { withTimeout } from "../../lib/time.js";
import type { Pool } from "../../pool/pool.js";
import { type ApiServer, startApi } from "./api.js";
import type { Config } from "./config.js";
import { createNode, type Node, type NodeSpec } from "./node.js";

export interface Daemon {
  node: Node;
  stop(): Promise<void>;
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
async function discover(config: Config, metadata: MetadataClient, log: Logger): Promise<Discovered> {
  const instanceId = config.node.instanceId || (await metadata.instanceId());
  const regionId = config.cloud.regionId || (await metadata.regionId());
  const instanceType = await metadata.instanceType();
  const cloud = createCloudApi({
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
    const limits = {
      maxSecondaryEnis: Math.max(0, type.eniQuantity - 1),
      ipsPerEni: type.eniPrivateIpAddressQuantity,
    };
    return { instanceId, cloud, limits, vSwitchIds, securityGroupIds };
  } catch (e) {
    await cloud.close();
    throw e;
  }
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
      minIdle: p.minIdle,
      maxIdle: p.maxIdle,
      cooldownMs: p.cooldownSeconds * 1000,
      maxIpsPerCall: p.maxIpsPerCall,
      idleReclaimMs: p.idleReclaimSeconds * 1000,
      allocateTimeoutMs: p.allocateTimeoutSeconds * 1000,
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
    datapath: config.datapath.enabled ? { nodeNetns: config.node.netns, mtu: config.datapath.mtu } : null,
  };
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  const metadata = createMetadataClient({ endpoint: config.cloud.metadataEndpoint, logger: log });
  const found = await discover(config, metadata, log);
  let node: Node;
  try {
    node = await createNode(nodeSpecOf(config, found, metadata, log));
  } catch (e) {
    await found.cloud.close();
    throw e;
  }
  const nodeLog = log.child({ instanceId: node.instanceId });
  let api: ApiServer | null = null;
  let http: Server | null = null;
  const stop = async (): Promise<void> => {
    // Not ready, then the socket: no new work. Requests in flight get a few seconds.
    node.drain();
    if (api) await withTimeout(api.close(), 3000);
    await node.stop();
    if (http) await closeServer(http);
  };
  try {
    api = await startApi(config.socket, {
      pool: node.pool,
      ...(node.cni ? { cni: node.cni } : {}),
      log: nodeLog.child({ component: "api" }),
      ready: node.ready,
      resync: () => node.resync(false),
    });
    if (config.http.listen) http = await startHttp(config.http.listen, node.pool, node.ready);
    await node.start();
  } catch (e) {
    await stop().catch((err: unknown) =>
      nodeLog.error("clean-up after a failed start failed", { error: String(err) }),
    );
    throw e;
  }
  nodeLog.info("daemon ready", { socket: config.socket, http: config.http.listen || undefined });
  return { node, stop };
}

async function startHttp(where: string, pool: Pool, ready: () => boolean): Promise<Server> {
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
  await listen(server, parseListen(where));
  return server;
}
