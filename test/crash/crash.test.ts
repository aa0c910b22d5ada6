// kill -9 the daemon at random points (including inside Create, Attach and
// Assign) during 200 allocate/release cycles, restart it each time, and check
// that nothing is lost, leaked or handed out twice.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { checkInvariants } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import type { CloudAction } from "../../cloud/types.js";
import {
  call,
  type DaemonProcess,
  kill9,
  spawnDaemon,
  waitReady,
  writeDaemonConfig,
} from "../daemon-harness.js";
import { prng } from "../helpers/prng.js";

const NODE = "i-crash-node";
const CLUSTER = "crash-test";
const CYCLES = Number(process.env.ENIWAY_CRASH_CYCLES ?? 200);
const MIN_KILLS = Number(process.env.ENIWAY_CRASH_KILLS ?? 30);
const SEED = Number(process.env.ENIWAY_CRASH_SEED ?? 7);

const world = parseWorld({
  regionId: "cn-hangzhou",
  credentials: [{ accessKeyId: "AK", accessKeySecret: "SK-crash-secret" }],
  vpc: { vpcId: "vpc-crash", cidr: "10.20.0.0/16" },
  vSwitches: [{ vSwitchId: "vsw-crash", zoneId: "z1", cidr: "10.20.1.0/24" }],
  securityGroups: ["sg-crash"],
  instanceTypes: [{ instanceTypeId: "ecs.crash", eniQuantity: 4, eniPrivateIpAddressQuantity: 6 }],
  instances: [{ instanceId: NODE, instanceType: "ecs.crash", zoneId: "z1", vSwitchId: "vsw-crash" }],
  latencyMs: {
    CreateNetworkInterface: [40, 160],
    AttachNetworkInterface: [200, 600],
    DetachNetworkInterface: [100, 300],
    AssignPrivateIpAddresses: [40, 160],
    UnassignPrivateIpAddresses: [20, 80],
    DeleteNetworkInterface: [20, 60],
  },
});

type Trigger =
  | "time"
  | "CreateNetworkInterface"
  | "AttachNetworkInterface"
  | "AssignPrivateIpAddresses"
  | "UnassignPrivateIpAddresses";

describe("crash safety under kill -9", () => {
  let sim: Simulator;
  let dir: string;
  let config: string;
  let socket: string;
  let daemon: DaemonProcess | null = null;
  let armed: { action: CloudAction; fire: () => void } | null = null;
  let attachCalls = 0;

  beforeAll(async () => {
    sim = await startSimulator(world, {
      onAction: (a) => {
        if (a === "AttachNetworkInterface") attachCalls++;
        if (armed && armed.action === a) {
          const f = armed.fire;
          armed = null;
          f();
        }
      },
    });
    dir = await mkdtemp(join(tmpdir(), "eniway-crash-"));
    socket = join(dir, "eniway.sock");
    config = await writeDaemonConfig(dir, sim.url, NODE, {
      clusterId: CLUSTER,
      pool: {
        minIdle: 2,
        maxIdle: 5,
        cooldownSeconds: 0.2,
        idleReclaimSeconds: 0.3,
        allocateTimeoutSeconds: 8,
        leakGraceSeconds: 1,
        resyncSeconds: 1,
        attachTimeoutSeconds: 10,
      },
    });
  });

  afterAll(async () => {
    if (daemon) await kill9(daemon);
    await sim?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const ourEnis = () =>
    [...sim.state.enis.values()].filter(
      (e) => e.type === "Secondary" && e.tags.some(([k, v]) => k === "eniway.io/cluster" && v === CLUSTER),
    );

  /** Wait until the pool has nothing in flight, then compare the cloud with the pool. */
  async function checkCloudKnown(): Promise<void> {
    let lastProblem = "";
    for (let attempt = 0; attempt < 100; attempt++) {
      const summary = (await call(socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
      if (summary.intents === 0 && summary.pending === 0) {
        await sim.settle();
        const pool = (await call(socket, "GET", "/v1/ips")).body.ips as { ip: string; eniId: string }[];
        const summary2 = (await call(socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
        if (summary2.intents !== 0 || summary2.pending !== 0) continue;
        const known = new Set(pool.map((p) => p.ip));
        const missing: string[] = [];
        for (const e of ourEnis()) {
          if (e.instanceId !== NODE || e.status !== "InUse") continue;
          for (const ip of e.ips) if (!known.has(ip)) missing.push(`${ip}@${e.id}`);
        }
        if (missing.length === 0) return;
        lastProblem = `cloud IPs unknown to the pool: ${missing.join(", ")}`;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(lastProblem || "the pool never settled");
  }

  it(`survives ${MIN_KILLS}+ kills in ${CYCLES} cycles`, async () => {
    const rnd = prng(SEED);
    const acked = new Map<string, string>(); // key → IP, acknowledged and not released
    const maybe = new Set<string>(); // keys whose last request got no answer
    const kills: Trigger[] = [];
    let aiming = "time" as Trigger;
    let draining = false;
    let serial = 0;

    const start = async (): Promise<void> => {
      daemon = spawnDaemon(config);
      await waitReady(socket, daemon);
    };

    /** After a restart: every acknowledged allocation is there, with its IP; no IP twice. */
    const verify = async (): Promise<void> => {
      const list = (await call(socket, "GET", "/v1/allocations")).body.allocations as {
        containerId: string;
        ifname: string;
        ip: string;
      }[];
      const byKey = new Map(list.map((a) => [`${a.containerId}/${a.ifname}`, a.ip]));
      const ips = list.map((a) => a.ip);
      expect(new Set(ips).size, `an IP is allocated twice: ${ips.sort().join(",")}`).toBe(ips.length);
      for (const [key, ip] of acked) {
        if (maybe.has(key)) continue;
        expect(byKey.get(key), `acknowledged allocation ${key} lost`).toBe(ip);
      }
      for (const key of maybe) {
        const ip = byKey.get(key);
        if (ip) acked.set(key, ip);
        else acked.delete(key);
      }
      maybe.clear();
      await checkCloudKnown();
      expect(checkInvariants(sim.state)).toEqual([]);
    };

    const armKill = (): Promise<void> => {
      const triggers: Trigger[] = [
        "time",
        "CreateNetworkInterface",
        "AttachNetworkInterface",
        "AssignPrivateIpAddresses",
        "UnassignPrivateIpAddresses",
      ];
      // Until each of Create, Attach and Assign has been hit, aim for it; then choose at random.
      const required = triggers.slice(1, 4).find((t) => !kills.includes(t));
      const trigger = required ?? triggers[Math.floor(rnd() * triggers.length)]!;
      aiming = trigger;
      const victim = daemon!;
      return new Promise<void>((resolveKill) => {
        let done = false;
        const fire = (how: Trigger, delay: number): void => {
          if (done) return;
          done = true;
          armed = null;
          const attachesBefore = attachCalls;
          setTimeout(() => {
            // Aiming at Attach, the kill follows a Create by long enough to land in the attach.
            const label =
              how === "CreateNetworkInterface" && attachCalls > attachesBefore
                ? "AttachNetworkInterface"
                : how;
            kills.push(label);
            kill9(victim).then(resolveKill);
          }, delay);
        };
        if (trigger === "AttachNetworkInterface")
          armed = {
            action: "CreateNetworkInterface",
            fire: () => fire("CreateNetworkInterface", 200 + rnd() * 300),
          };
        else if (trigger !== "time") armed = { action: trigger, fire: () => fire(trigger, rnd() * 120) };
        setTimeout(() => fire("time", 0), trigger === "time" ? Math.floor(rnd() * 300) : 2000);
      });
    };

    await start();
    let killing: Promise<void> | null = null;
    const windowSize = Math.floor(CYCLES / (MIN_KILLS + 2));
    const restart = async (): Promise<void> => {
      killing = null;
      await start();
      await verify();
    };
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      if (cycle % windowSize === 0 && !killing) killing = armKill();
      const keys = [...acked.keys()].filter((k) => !maybe.has(k));
      // Aiming at Create or Attach needs new ENIs: fill the node, then drain it so the pool
      // deletes ENIs, then fill again.
      const growing = aiming === "CreateNetworkInterface" || aiming === "AttachNetworkInterface";
      if (growing && keys.length >= 14) draining = true;
      if (keys.length === 0) draining = false;
      const release = growing ? draining : keys.length > 8 || (keys.length > 2 && rnd() < 0.45);
      if (growing) await new Promise((r) => setTimeout(r, 40));
      const key = release ? keys[Math.floor(rnd() * keys.length)]! : `ctr-${SEED}-${serial++}/eth0`;
      const [containerId, ifname] = key.split("/") as [string, string];
      try {
        const r = await call(
          socket,
          "POST",
          release ? "/v1/release" : "/v1/allocate",
          { containerId, ifname },
          12_000,
        );
        if (r.status === 200) {
          if (release) acked.delete(key);
          else acked.set(key, r.body.ip as string);
        } else {
          expect(r.status, JSON.stringify(r.body)).toBe(503);
          expect((r.body.error as { code: string }).code).toBe("TryAgainLater");
        }
      } catch {
        maybe.add(key); // the daemon died under this request
      }
      if (!killing) continue;
      // The kill fires within its window: at the window's end, wait for it.
      const fired =
        cycle % windowSize === windowSize - 1 ||
        (await Promise.race([
          (killing as Promise<void>).then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5)),
        ]));
      if (fired) {
        await killing;
        await restart();
      }
    }
    if (killing) {
      await killing;
      await restart();
    }

    expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    for (const t of ["CreateNetworkInterface", "AttachNetworkInterface", "AssignPrivateIpAddresses"] as const)
      expect(kills, `no kill inside ${t}`).toContain(t);

    // After the grace period, no ENI of ours has leaked: each is attached to the node and known to the pool.
    await new Promise((r) => setTimeout(r, 2500));
    await checkCloudKnown();
    const summary = (await call(socket, "GET", "/v1/pool")).body as { enis: { eniId: string }[] };
    const poolEnis = new Set(summary.enis.map((e) => e.eniId));
    for (const e of ourEnis()) {
      expect(e.status, `${e.id} leaked`).toBe("InUse");
      expect(poolEnis.has(e.id), `${e.id} is not in the pool`).toBe(true);
    }
    console.log(
      `crash test: ${kills.length} kills (${[...new Set(kills)].map((k) => `${k}×${kills.filter((x) => x === k).length}`).join(", ")}), ${acked.size} live allocations`,
    );
  }, 300_000);
});
