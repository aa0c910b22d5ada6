// Fixtures for the pool, store and daemon tests: the real simulator over real
// HTTP, the real cloud client and metadata client, a store in a temp dir, and
// the node built by the daemon's own wiring (src/daemon/node.ts). Nothing of
// the cloud is mocked.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect } from "vitest";
import { type CloudApi, createCloudApi } from "../../cloud/api.js";
import { staticCredentialsProvider } from "../../cloud/credentials.js";
import { createMetadataClient } from "../../cloud/metadata.js";
import { type Simulator, type SimulatorOptions, startSimulator } from "../../cloud/simulator/server.js";
import { checkInvariants, type SimEni } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { sleep, withTimeout } from "../../lib/time.js";
import type { ExecutorConfig } from "../../pool/executor.js";
import type { PoolTargets } from "../../pool/pool.js";
import type { ReconcileReport } from "../../pool/reconcile.js";
import type { StoreDoc } from "../../pool/store.js";
import {
  createNode,
  type Node,
  OWN_TAG_CREATOR,
  OWN_TAG_CREATOR_VALUE,
  ownTags,
} from "../../src/daemon/node.js";
import { client as popClient, VPC_VERSION } from "../helpers/sim.js";
import { readSimStats, type SimStats } from "../helpers/sim-stats.js";

export type { Simulator };
export { sleep };

export const REGION = "cn-hangzhou";
export const ZONE = "cn-hangzhou-k";
export const AK = "LTAIpoolTestKey";
export const SK = "pool-test-secret-9f3c";
export const NODE = "i-node-a";
export const OTHER_NODE = "i-node-b";
export const VSW = "vsw-a";
/** A /29: four usable addresses (.1-.4). */
export const VSW_TINY = "vsw-tiny";
export const SG = "sg-sim";
export const CLUSTER = "test-cluster";
export const OWN_TAGS = ownTags(CLUSTER);
export const ENI_QUANTITY = 3;
export const IPS_PER_ENI = 6;
/** Fast client retries: the tests never wait out production backoffs. */
export const FAST_RETRY = { baseMs: 10, capMs: 50, maxElapsedMs: 2000 };

/** The world of these tests: one instance type (3 ENIs × 6 IPs), attach takes 100-200 ms. */
export function worldJson(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    regionId: REGION,
    credentials: [{ accessKeyId: AK, accessKeySecret: SK }],
    vpc: { vpcId: "vpc-pool", cidr: "10.0.0.0/16" },
    vSwitches: [
      { vSwitchId: VSW, zoneId: ZONE, cidr: "10.0.1.0/24" },
      { vSwitchId: VSW_TINY, zoneId: ZONE, cidr: "10.0.9.0/29" },
    ],
    securityGroups: [SG],
    instanceTypes: [
      {
        instanceTypeId: "ecs.g7.large",
        eniQuantity: ENI_QUANTITY,
        eniPrivateIpAddressQuantity: IPS_PER_ENI,
        eniIpv6AddressQuantity: 6,
      },
    ],
    instances: [
      {
        instanceId: NODE,
        instanceType: "ecs.g7.large",
        zoneId: ZONE,
        vSwitchId: VSW,
        securityGroupIds: [SG],
      },
      {
        instanceId: OTHER_NODE,
        instanceType: "ecs.g7.large",
        zoneId: ZONE,
        vSwitchId: VSW,
        securityGroupIds: [SG],
      },
    ],
    latencyMs: { AttachNetworkInterface: [100, 200], DetachNetworkInterface: [30, 60] },
    ...over,
  };
}

/** Polls until fn returns something truthy; fails with `what` after timeoutMs. */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 5000,
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${String(last)})` : ""}`,
      );
    await sleep(intervalMs);
  }
}

export interface LogRecord {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export interface NodeOptions {
  /** Reuse a state dir (a restart); default a fresh temp dir. */
  stateDir?: string;
  targets?: Partial<PoolTargets>;
  executor?: Partial<ExecutorConfig>;
  vSwitchIds?: string[];
  leakGraceMs?: number;
  /** Intents older than this are resumed by a periodic resync (default 20 s). */
  staleIntentMs?: number;
}

/** A node built by the daemon's own wiring (src/daemon/node.ts), with the test's numbers. */
export interface TestNode extends Node {
  sim: Simulator;
  stateDir: string;
  logs: LogRecord[];
  /** What the start-up reconcile reported. */
  startup: ReconcileReport;
}

export interface Harness {
  sim(over?: Record<string, unknown>, opts?: SimulatorOptions): Promise<Simulator>;
  node(sim: Simulator, opts?: NodeOptions): Promise<TestNode>;
  tempDir(): Promise<string>;
  /** A separate client, for doing things behind the pool's back; closed after the test. */
  client(sim: Simulator): CloudApi;
}

export const DEFAULT_TARGETS: PoolTargets = {
  mode: "ip",
  minIdle: 2,
  maxIdle: 8,
  cooldownMs: 200,
  maxIpsPerCall: 10,
  idleReclaimMs: 300_000,
  allocateTimeoutMs: 5000,
  statefulHoldMs: 300_000,
};

export const DEFAULT_EXECUTOR: ExecutorConfig = {
  attachTimeoutMs: 10_000,
  vSwitchBlockMs: 600_000,
  eniLimitBackoffMs: 60_000,
  maxConcurrentAttaches: 5,
};

/** The client eniway uses, pointed at the simulator. */
export function cloudFor(sim: Simulator, logger?: Logger): CloudApi {
  return createCloudApi({
    regionId: REGION,
    ecsEndpoint: sim.url,
    vpcEndpoint: sim.url,
    credentials: staticCredentialsProvider({ accessKeyId: AK, accessKeySecret: SK }),
    retry: FAST_RETRY,
    timeoutMs: 5000,
    ...(logger ? { logger } : {}),
  });
}

/**
 * Registers an afterEach that stops every node (pool, cloud client), checks
 * the simulator's invariants, stops every simulator and removes every temp
 * dir the test made. Call once per file.
 */
export function harness(): Harness {
  const sims: Simulator[] = [];
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  const extraClouds: CloudApi[] = [];

  afterEach(async () => {
    const ns = nodes.splice(0);
    const ss = sims.splice(0);
    const ds = dirs.splice(0);
    try {
      for (const n of ns) await n.stop();
      for (const c of extraClouds.splice(0)) await c.close();
      for (const s of ss) {
        await withTimeout(s.settle(), 2000);
        expect(checkInvariants(s.state), "the simulated VPC's invariants").toEqual([]);
      }
    } finally {
      await Promise.all(ss.map((s) => s.stop()));
      await Promise.all(ds.map((d) => rm(d, { recursive: true, force: true })));
    }
  });

  const tempDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), "eniway-pool-test-"));
    dirs.push(d);
    return d;
  };

  return {
    tempDir,
    client(sim) {
      const c = cloudFor(sim);
      extraClouds.push(c);
      return c;
    },
    async sim(over = {}, opts = {}) {
      const s = await startSimulator(parseWorld(worldJson(over)), opts);
      sims.push(s);
      return s;
    },
    async node(sim, opts = {}) {
      const logs: LogRecord[] = [];
      const log = createLogger({
        level: "debug",
        write: (line) => logs.push(JSON.parse(line) as LogRecord),
      });
      const stateDir = opts.stateDir ?? (await tempDir());
      const node = await createNode({
        instanceId: NODE,
        cloud: cloudFor(sim, log),
        metadata: createMetadataClient({
          endpoint: `${sim.url}/meta/${NODE}`,
          backoff: { baseMs: 10, capMs: 50, maxElapsedMs: 1000 },
        }),
        log,
        stateDir,
        clusterId: CLUSTER,
        limits: { maxSecondaryEnis: ENI_QUANTITY - 1, ipsPerEni: IPS_PER_ENI },
        vSwitchIds: opts.vSwitchIds ?? [VSW],
        securityGroupIds: [SG],
        tags: {},
        targets: { ...DEFAULT_TARGETS, ...opts.targets },
        executor: { ...DEFAULT_EXECUTOR, ...opts.executor },
        leakGraceMs: opts.leakGraceMs ?? 600_000,
        staleIntentMs: opts.staleIntentMs ?? 20_000,
        // The daemon ticks every second and resyncs every minute; tests tick fast and resync by hand.
        timers: { tickMs: 50, resyncMs: 0, repairMs: 0 },
        datapath: null,
        cni: { gcMinAgeMs: 0, netnsGoneGraceMs: 30_000 },
      });
      const t: TestNode = Object.assign(node, { sim, stateDir, logs, startup: await node.start() });
      nodes.push(t);
      return t;
    },
  };
}

/** The secondary ENIs carrying our tags, as the simulator holds them. */
export function ourEnis(sim: Simulator): SimEni[] {
  return [...sim.state.enis.values()].filter(
    (e) =>
      e.type === "Secondary" && e.tags.some(([k, v]) => k === OWN_TAG_CREATOR && v === OWN_TAG_CREATOR_VALUE),
  );
}

/** ENIs (the primary included) attached or attaching to an instance, as the simulator holds them. */
export function enisOn(sim: Simulator, instanceId = NODE): SimEni[] {
  return [...sim.state.enis.values()].filter((e) => e.instanceId === instanceId);
}

export { calls, errors, errorTotal, type SimStats } from "../helpers/sim-stats.js";

export const simStats = (sim: Simulator): Promise<SimStats> => readSimStats(sim.url);

export async function setKnob(
  sim: Simulator,
  knob: "faults" | "latency" | "throttle",
  body: unknown,
): Promise<void> {
  const r = await fetch(`${sim.url}/admin/${knob}`, { method: "PUT", body: JSON.stringify(body) });
  expect(r.status, await r.text()).toBe(200);
}

/** The store file as it is on disk now. */
export async function storeOnDisk(stateDir: string): Promise<StoreDoc> {
  return JSON.parse(await readFile(join(stateDir, "pool.json"), "utf8")) as StoreDoc;
}

export const pod = (name: string): { namespace: string; name: string; uid: string } => ({
  namespace: "default",
  name,
  uid: `uid-${name}`,
});

/** An allocation request for container `c<n>` on eth0. */
export const req = (n: number | string, ifname = "eth0") => ({
  containerId: `c${n}`,
  ifname,
  pod: pod(`p${n}`),
});

/**
 * Reserves IPv4 CIDR blocks of a vSwitch for prefixes (the VPC's
 * CreateVSwitchCidrReservation, through pop-core as an operator would), and
 * waits until they are Assigned: the pool takes prefixes only from them.
 */
export async function reservePrefixes(sim: Simulator, cidrs: string[], vSwitchId = VSW): Promise<void> {
  const vpc = popClient(sim.url, VPC_VERSION, { accessKeyId: AK, accessKeySecret: SK });
  for (const cidr of cidrs)
    await vpc.request(
      "CreateVSwitchCidrReservation",
      { RegionId: REGION, VSwitchId: vSwitchId, VSwitchCidrReservationCidr: cidr },
      { method: "POST", formatParams: false },
    );
  await sim.settle();
}

/** The IPv4 prefixes of our ENIs, as the simulator holds them. */
export const cloudPrefixes = (sim: Simulator): string[] =>
  ourEnis(sim)
    .flatMap((e) => e.ipv4Prefixes)
    .sort();
