// With 20 % injected 5xx and throttling (and some lost replies), every
// allocate either succeeds or says "try again later", and nothing leaks.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { checkInvariants } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import { call, type DaemonProcess, spawnDaemon, waitReady, writeDaemonConfig } from "../daemon-harness.js";
import { errorTotal, readSimStats } from "../helpers/sim-stats.js";

const NODE = "i-fault-node";
const CLUSTER = "fault-test";

const world = parseWorld({
  regionId: "cn-hangzhou",
  credentials: [{ accessKeyId: "AK", accessKeySecret: "SK-crash-secret" }],
  vpc: { vpcId: "vpc-fault", cidr: "10.30.0.0/16" },
  vSwitches: [{ vSwitchId: "vsw-fault", zoneId: "z1", cidr: "10.30.1.0/24" }],
  securityGroups: ["sg-fault"],
  instanceTypes: [{ instanceTypeId: "ecs.fault", eniQuantity: 4, eniPrivateIpAddressQuantity: 8 }],
  instances: [{ instanceId: NODE, instanceType: "ecs.fault", zoneId: "z1", vSwitchId: "vsw-fault" }],
  latencyMs: { "*": [5, 30], AttachNetworkInterface: [100, 300], DetachNetworkInterface: [50, 150] },
  throttle: { "*": { qps: 20, burst: 10 } },
  faults: {
    errorRate: 0.2,
    errorCodes: ["InternalError", "ServiceUnavailable", "Throttling"],
    // Some replies are lost after the action took effect: retries must not duplicate work.
    actions: { "*": { code: "ServiceUnavailable", rate: 0.05, afterEffect: true } },
  },
});

describe("allocation under injected cloud faults", () => {
  let sim: Simulator;
  let dir: string;
  let socket: string;
  let daemon: DaemonProcess;

  beforeAll(async () => {
    sim = await startSimulator(world);
    dir = await mkdtemp(join(tmpdir(), "eniway-faults-"));
    socket = join(dir, "eniway.sock");
    const config = await writeDaemonConfig(dir, sim.url, NODE, {
      clusterId: CLUSTER,
      pool: {
        // A small pool that churns: many creates, assigns, unassigns and deletes go through the faults.
        minIdle: 1,
        maxIdle: 2,
        cooldownSeconds: 0.1,
        idleReclaimSeconds: 0.1,
        allocateTimeoutSeconds: 3,
        leakGraceSeconds: 1,
        resyncSeconds: 1,
        attachTimeoutSeconds: 10,
      },
    });
    daemon = spawnDaemon(config);
    await waitReady(socket, daemon, 60_000);
  });

  afterAll(async () => {
    daemon?.child.kill("SIGTERM");
    await daemon?.exited;
    await sim?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers every allocate with an IP or TryAgainLater, and leaks nothing", async () => {
    const live = new Map<string, string>();
    const outcomes = { ok: 0, tryAgain: 0, released: 0 };
    let n = 0;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const mine = [...live.keys()].filter((k) => k.startsWith(`w${w}-`));
        if (mine.length > 4 || (mine.length > 0 && i % 3 === 2)) {
          const key = mine[0]!;
          const r = await call(socket, "POST", "/v1/release", { containerId: key, ifname: "eth0" });
          expect(r.status, JSON.stringify(r.body)).toBe(200);
          live.delete(key);
          outcomes.released++;
          continue;
        }
        const key = `w${w}-${n++}`;
        const r = await call(socket, "POST", "/v1/allocate", { containerId: key, ifname: "eth0" });
        if (r.status === 200) {
          live.set(key, r.body.ip as string);
          outcomes.ok++;
        } else {
          expect(r.status, JSON.stringify(r.body)).toBe(503);
          expect((r.body.error as { code: string }).code).toBe("TryAgainLater");
          outcomes.tryAgain++;
        }
      }
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    expect(outcomes.ok).toBeGreaterThan(20);
    const ips = [...live.values()];
    expect(new Set(ips).size).toBe(ips.length);

    // Faults off; after a resync and the leak grace period the cloud and the pool agree.
    await fetch(`${sim.url}/admin/faults`, { method: "PUT", body: "{}" });
    const ours = () =>
      [...sim.state.enis.values()].filter((e) =>
        e.tags.some(([k, v]) => k === "eniway.io/cluster" && v === CLUSTER),
      );
    let problems: string[] = [];
    for (let attempt = 0; attempt < 80; attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      await sim.settle();
      const summary = (await call(socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
      const pool = new Set(
        ((await call(socket, "GET", "/v1/ips")).body.ips as { ip: string }[]).map((p) => p.ip),
      );
      problems = [];
      if (summary.intents !== 0 || summary.pending !== 0)
        problems.push(`in flight: ${JSON.stringify(summary)}`);
      for (const e of ours()) {
        if (e.status !== "InUse" || e.instanceId !== NODE) problems.push(`${e.id} is ${e.status} (leaked)`);
        for (const ip of e.ips) if (!pool.has(ip)) problems.push(`${ip} on ${e.id} unknown to the pool`);
      }
      if (problems.length === 0) break;
    }
    expect(problems).toEqual([]);
    const allocations = (await call(socket, "GET", "/v1/allocations")).body.allocations as {
      containerId: string;
      ip: string;
    }[];
    for (const [key, ip] of live) expect(allocations.find((a) => a.containerId === key)?.ip).toBe(ip);
    expect(checkInvariants(sim.state)).toEqual([]);
    const injected = errorTotal(await readSimStats(sim.url));
    expect(injected, "faults were injected").toBeGreaterThan(40);
    console.log(`faults test: ${JSON.stringify(outcomes)}, ${injected} cloud errors injected or returned`);
  }, 180_000);
});
