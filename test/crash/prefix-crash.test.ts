// kill -9 the daemon in prefix mode at random points, most of them inside
// the AssignPrivateIpAddresses that brings IPv4 prefixes (and inside the
// Create that brings an ENI's first ones, and the Unassign that gives one
// back), restart it each time, and check that no prefix is leaked (held by
// the cloud for an ENI of ours, unknown to the pool) or lost (believed by
// the pool, gone from the cloud), and that no acknowledged pod lost its IP.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { checkInvariants } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import type { CloudAction } from "../../cloud/types.js";
import { cidrContains, ipToInt, ipv4PrefixAddresses, parseCidr } from "../../lib/net.js";
import {
  call,
  type DaemonProcess,
  kill9,
  spawnDaemon,
  waitReady,
  writeDaemonConfig,
} from "../daemon-harness.js";
import { prng } from "../helpers/prng.js";

const NODE = "i-prefix-crash";
const CLUSTER = "prefix-crash";
const VSW = "vsw-prefix-crash";
const CYCLES = Number(process.env.ENIWAY_PREFIX_CRASH_CYCLES ?? 240);
const MIN_KILLS = Number(process.env.ENIWAY_PREFIX_CRASH_KILLS ?? 16);
const SEED = Number(process.env.ENIWAY_CRASH_SEED ?? 11);

const world = parseWorld({
  regionId: "cn-hangzhou",
  credentials: [{ accessKeyId: "AK", accessKeySecret: "SK-crash-secret" }],
  vpc: { vpcId: "vpc-prefix-crash", cidr: "10.40.0.0/16" },
  // The operator's part: CIDR blocks of the vSwitch reserved for prefixes (eight /28s).
  vSwitches: [
    { vSwitchId: VSW, zoneId: "z1", cidr: "10.40.1.0/24", reservations: ["10.40.1.64/26", "10.40.1.128/26"] },
  ],
  securityGroups: ["sg-crash"],
  instanceTypes: [{ instanceTypeId: "ecs.crash", eniQuantity: 3, eniPrivateIpAddressQuantity: 6 }],
  instances: [{ instanceId: NODE, instanceType: "ecs.crash", zoneId: "z1", vSwitchId: VSW }],
  latencyMs: {
    CreateNetworkInterface: [40, 160],
    AttachNetworkInterface: [200, 500],
    DetachNetworkInterface: [100, 300],
    AssignPrivateIpAddresses: [40, 160],
    UnassignPrivateIpAddresses: [20, 80],
    DeleteNetworkInterface: [20, 60],
  },
});

type Trigger = "time" | "AssignPrivateIpAddresses" | "CreateNetworkInterface" | "UnassignPrivateIpAddresses";
const TRIGGERS: Trigger[] = [
  "AssignPrivateIpAddresses",
  "AssignPrivateIpAddresses",
  "AssignPrivateIpAddresses",
  "AssignPrivateIpAddresses",
  "CreateNetworkInterface",
  "UnassignPrivateIpAddresses",
  "time",
];

interface PoolIp {
  ip: string;
  eniId: string;
  phase: string;
  prefix?: string;
}

describe("prefix mode under kill -9", () => {
  let sim: Simulator;
  let dir: string;
  let config: string;
  let socket: string;
  let daemon: DaemonProcess | null = null;
  let armed: { action: CloudAction; fire: () => void } | null = null;

  beforeAll(async () => {
    sim = await startSimulator(world, {
      onAction: (a) => {
        if (armed && armed.action === a) {
          const f = armed.fire;
          armed = null;
          f();
        }
      },
    });
    dir = await mkdtemp(join(tmpdir(), "eniway-prefix-crash-"));
    socket = join(dir, "eniway.sock");
    config = await writeDaemonConfig(dir, sim.url, NODE, {
      clusterId: CLUSTER,
      pool: {
        mode: "prefix",
        // Nothing kept idle: every 16th pod waits for an Assign, and a prefix that empties goes back.
        minIdle: 0,
        maxIdle: 2,
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

  /** What is wrong between the cloud's prefixes and the pool's, once nothing is in flight; "" when nothing. */
  const prefixProblems = (pool: PoolIp[]): string => {
    const problems: string[] = [];
    const inPool = new Map<string, PoolIp[]>();
    for (const r of pool) if (r.prefix) inPool.set(r.prefix, [...(inPool.get(r.prefix) ?? []), r]);
    const inCloud = new Map<string, string>(); // prefix → ENI
    for (const e of ourEnis()) for (const p of e.ipv4Prefixes) inCloud.set(p, e.id);
    for (const e of ourEnis()) {
      if (e.instanceId !== NODE || e.status !== "InUse") continue;
      for (const p of e.ipv4Prefixes) {
        const known = inPool.get(p) ?? [];
        if (known.length !== 16 || known.some((r) => r.eniId !== e.id))
          problems.push(`leaked: ${p}@${e.id} (the pool knows ${known.length} of its addresses)`);
      }
    }
    for (const [p, recs] of inPool) {
      if (inCloud.get(p) !== recs[0]!.eniId) problems.push(`lost: ${p} is in the pool on ${recs[0]!.eniId}`);
      const all = new Set(ipv4PrefixAddresses(p));
      if (recs.length !== 16 || !recs.every((r) => all.has(r.ip))) problems.push(`torn: ${p}`);
    }
    return problems.join("; ");
  };

  /** Wait until the pool has nothing in flight, then compare the cloud's prefixes with the pool's. */
  async function checkPrefixes(): Promise<void> {
    let last = "";
    for (let attempt = 0; attempt < 100; attempt++) {
      const summary = (await call(socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
      if (summary.intents === 0 && summary.pending === 0) {
        await sim.settle();
        const pool = (await call(socket, "GET", "/v1/ips")).body.ips as PoolIp[];
        const again = (await call(socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
        if (again.intents !== 0 || again.pending !== 0) continue;
        last = prefixProblems(pool);
        if (last === "") return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(last || "the pool never settled");
  }

  it(`keeps every prefix known and every pod's IP through ${MIN_KILLS}+ kills in ${CYCLES} cycles`, async () => {
    const rnd = prng(SEED);
    const acked = new Map<string, string>();
    const maybe = new Set<string>();
    const kills: Trigger[] = [];
    let serial = 0;
    let filling = true;
    let aiming = "time" as Trigger;

    const start = async (): Promise<void> => {
      daemon = spawnDaemon(config);
      await waitReady(socket, daemon);
    };

    const verify = async (): Promise<void> => {
      const list = (await call(socket, "GET", "/v1/allocations")).body.allocations as {
        containerId: string;
        ifname: string;
        ip: string;
        eniId: string;
      }[];
      const byKey = new Map(list.map((a) => [`${a.containerId}/${a.ifname}`, a]));
      const ips = list.map((a) => a.ip);
      expect(new Set(ips).size, `an IP is allocated twice: ${ips.sort().join(",")}`).toBe(ips.length);
      for (const [key, ip] of acked) {
        if (maybe.has(key)) continue;
        expect(byKey.get(key)?.ip, `acknowledged allocation ${key} lost`).toBe(ip);
      }
      for (const key of maybe) {
        const a = byKey.get(key);
        if (a) acked.set(key, a.ip);
        else acked.delete(key);
      }
      maybe.clear();
      // Every pod's IP is its ENI's in the cloud: a single IP of it, or in one of its prefixes.
      for (const a of list) {
        const e = sim.state.enis.get(a.eniId);
        const own =
          e?.ips.includes(a.ip) || e?.ipv4Prefixes.some((p) => cidrContains(parseCidr(p), ipToInt(a.ip)));
        expect(own, `${a.ip} is not on ${a.eniId} in the cloud`).toBe(true);
      }
      await checkPrefixes();
      expect(checkInvariants(sim.state)).toEqual([]);
    };

    const armKill = (): Promise<void> => {
      const trigger = TRIGGERS[Math.floor(rnd() * TRIGGERS.length)]!;
      aiming = trigger;
      const victim = daemon!;
      return new Promise<void>((resolveKill) => {
        let done = false;
        const fire = (how: Trigger, delay: number): void => {
          if (done) return;
          done = true;
          armed = null;
          setTimeout(() => {
            kills.push(how);
            kill9(victim).then(resolveKill);
          }, delay);
        };
        if (trigger !== "time") armed = { action: trigger, fire: () => fire(trigger, rnd() * 160) };
        setTimeout(() => fire("time", 0), trigger === "time" ? Math.floor(rnd() * 300) : 6000);
      });
    };

    const send = async (key: string, release: boolean): Promise<void> => {
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
        }
      } catch {
        maybe.add(key);
      }
    };

    await start();
    let killing: Promise<void> | null = null;
    const windowSize = Math.floor(CYCLES / (MIN_KILLS + 2));
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      if (cycle % windowSize === 0 && !killing) killing = armKill();
      const keys = [...acked.keys()].filter((k) => !maybe.has(k));
      // Aiming at an Assign (or a Create): fill, a few pods at once, so the window crosses a
      // prefix's 16 addresses; past 70 pods drain to 4 (prefixes empty and go back). Aiming at an
      // Unassign: drain. Otherwise: either.
      if (keys.length >= 70) filling = false;
      if (keys.length <= 4) filling = aiming !== "UnassignPrivateIpAddresses" || keys.length === 0;
      if (aiming === "UnassignPrivateIpAddresses" && keys.length > 4) filling = false;
      const batch = 1 + Math.floor(rnd() * (filling ? 4 : 8));
      const requests: [key: string, release: boolean][] = [];
      for (let i = 0; i < batch; i++) {
        const release = keys.length > 0 && (filling ? rnd() < 0.1 : rnd() < 0.9);
        const key = release
          ? keys.splice(Math.floor(rnd() * keys.length), 1)[0]!
          : `ctr-${SEED}-${serial++}/eth0`;
        requests.push([key, release]);
      }
      await Promise.all(requests.map(([key, release]) => send(key, release)));
      if (!killing) continue;
      const fired =
        cycle % windowSize === windowSize - 1 ||
        (await Promise.race([
          (killing as Promise<void>).then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5)),
        ]));
      if (fired) {
        await killing;
        killing = null;
        await start();
        await verify();
      }
    }
    if (killing) {
      await killing;
      await start();
      await verify();
    }

    expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    const inAssign = kills.filter((k) => k === "AssignPrivateIpAddresses").length;
    expect(inAssign, "kills inside a prefix Assign").toBeGreaterThanOrEqual(MIN_KILLS / 4);
    // After the leak grace: every ENI of ours is attached and the pool's; the reservation holds
    // exactly the prefixes on them.
    await new Promise((r) => setTimeout(r, 2500));
    await checkPrefixes();
    const summary = (await call(socket, "GET", "/v1/pool")).body as { enis: { eniId: string }[] };
    const poolEnis = new Set(summary.enis.map((e) => e.eniId));
    for (const e of ourEnis()) {
      expect(e.status, `${e.id} leaked`).toBe("InUse");
      expect(poolEnis.has(e.id), `${e.id} is not in the pool`).toBe(true);
    }
    const held = [...sim.state.enis.values()].flatMap((e) => e.ipv4Prefixes).sort();
    expect(held).toEqual(
      ourEnis()
        .flatMap((e) => e.ipv4Prefixes)
        .sort(),
    );
    console.log(
      `prefix crash test: ${kills.length} kills (${[...new Set(kills)].map((k) => `${k}×${kills.filter((x) => x === k).length}`).join(", ")}), ${acked.size} live allocations, ${held.length} prefixes held`,
    );
  }, 300_000);
});
