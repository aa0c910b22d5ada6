// The crash tests' shared harness: a simulator on a small world, a real
// `eniway daemon` (the pool alone) run against it and killed with -9 at a chosen
// cloud call or at a random time, the allocate/release traffic and what it was
// told, the kill loop (kill, restart, check), and the checks that nothing was
// lost, leaked or handed out twice.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { checkInvariants, type SimEni } from "../../cloud/simulator/state.js";
import { parseWorld, type World } from "../../cloud/simulator/world.js";
import type { CloudAction, SimAction } from "../../cloud/types.js";
import {
  call,
  type DaemonProcess,
  kill9,
  spawnDaemon,
  waitReady,
  writeDaemonConfig,
} from "../daemon-harness.js";

/** What a kill is put down to: the cloud call it was aimed inside, or a random time. */
export type Kill = CloudAction | "time";

/** One address of the pool, as /v1/ips lists it. */
export interface PoolIp {
  ip: string;
  eniId: string;
  phase: string;
  prefix?: string;
  /** Dual stack: the IPv6 address paired with it. */
  ipv6?: string;
}

/** One pod's allocation, as /v1/allocations lists it. */
export interface Allocation {
  containerId: string;
  ifname: string;
  ip: string;
  eniId: string;
  ipv6?: string;
}

export interface CrashRig {
  sim: Simulator;
  dir: string;
  socket: string;
  config: string;
  cluster: string;
  daemon: DaemonProcess | null;
  /** The kill waiting for a cloud call, if any. */
  armed: { action: CloudAction; fire: () => void } | null;
  /** How many calls of each action the simulator has served. */
  calls: Map<SimAction, number>;
}

/** What the test was told: acknowledged allocations, unanswered requests, kills so far. */
export interface Ledger {
  acked: Map<string, string>; // key → IP, acknowledged and not released
  maybe: Set<string>; // keys whose last request got no answer
  kills: Kill[];
}

export const newLedger = (): Ledger => ({ acked: new Map(), maybe: new Set(), kills: [] });

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RigOptions {
  /** The world: one node (instance type ecs.crash, six IPs an ENI) on one vSwitch. */
  node: string;
  vpc: { vpcId: string; cidr: string; ipv6Cidr?: string };
  vSwitch: { vSwitchId: string; zoneId: string; cidr: string; reservations?: string[]; ipv6Cidr?: string };
  eniQuantity: number;
  attachMs: [number, number];
  /** The daemon: its cluster, where its files go, its pool settings (beside the fast timers all share). */
  cluster: string;
  tmpPrefix: string;
  pool: object;
  /** More of the daemon's configuration (top-level keys, e.g. ipStack). */
  daemon?: object;
}

/** The world of RigOptions, with the cloud's latencies the crash tests aim into. */
function crashWorld(w: RigOptions): World {
  return parseWorld({
    regionId: "cn-hangzhou",
    credentials: [{ accessKeyId: "AK", accessKeySecret: "SK-crash-secret" }],
    vpc: w.vpc,
    vSwitches: [w.vSwitch],
    securityGroups: ["sg-crash"],
    instanceTypes: [
      {
        instanceTypeId: "ecs.crash",
        eniQuantity: w.eniQuantity,
        eniPrivateIpAddressQuantity: 6,
        eniIpv6AddressQuantity: w.vSwitch.ipv6Cidr ? 6 : 0,
      },
    ],
    instances: [
      { instanceId: w.node, instanceType: "ecs.crash", zoneId: "z1", vSwitchId: w.vSwitch.vSwitchId },
    ],
    latencyMs: {
      CreateNetworkInterface: [40, 160],
      AttachNetworkInterface: w.attachMs,
      DetachNetworkInterface: [100, 300],
      AssignPrivateIpAddresses: [40, 160],
      UnassignPrivateIpAddresses: [20, 80],
      AssignIpv6Addresses: [40, 160],
      UnassignIpv6Addresses: [20, 80],
      DeleteNetworkInterface: [20, 60],
    },
  });
}

/** Starts the simulator (counting calls, firing an armed kill) and writes a daemon config with fast timers. */
export async function startRig(o: RigOptions): Promise<CrashRig> {
  const calls = new Map<SimAction, number>();
  let rig: CrashRig | null = null;
  const sim = await startSimulator(crashWorld(o), {
    onAction: (a) => {
      calls.set(a, (calls.get(a) ?? 0) + 1);
      const armed = rig?.armed;
      if (rig && armed && armed.action === a) {
        rig.armed = null;
        armed.fire();
      }
    },
  });
  const dir = await mkdtemp(join(tmpdir(), o.tmpPrefix));
  const config = await writeDaemonConfig(dir, sim.url, o.node, {
    ...o.daemon,
    clusterId: o.cluster,
    pool: {
      ...o.pool,
      cooldownSeconds: 0.2,
      idleReclaimSeconds: 0.3,
      allocateTimeoutSeconds: 8,
      leakGraceSeconds: 1,
      resyncSeconds: 1,
      attachTimeoutSeconds: 10,
    },
  });
  rig = {
    sim,
    dir,
    socket: join(dir, "eniway.sock"),
    config,
    cluster: o.cluster,
    daemon: null,
    armed: null,
    calls,
  };
  return rig;
}

/** Kills the daemon, stops the simulator, removes the files; nothing to do if the rig never started. */
export async function stopRig(rig: CrashRig | undefined): Promise<void> {
  if (!rig) return;
  if (rig.daemon) await kill9(rig.daemon);
  await rig.sim.stop();
  await rm(rig.dir, { recursive: true, force: true });
}

/** Spawns the daemon on the rig's config and waits until it is ready. */
export async function startDaemon(rig: CrashRig): Promise<void> {
  rig.daemon = spawnDaemon(rig.config);
  await waitReady(rig.socket, rig.daemon);
}

/** The cloud's secondary ENIs tagged with the rig's cluster. */
export const ourEnis = (rig: CrashRig): SimEni[] =>
  [...rig.sim.state.enis.values()].filter(
    (e) => e.type === "Secondary" && e.tags.some(([k, v]) => k === "eniway.io/cluster" && v === rig.cluster),
  );

/** Wait until the pool has nothing in flight, then compare the cloud with the pool: `problems` says what is wrong, "" when nothing. */
export async function checkSettled(rig: CrashRig, problems: (pool: PoolIp[]) => string): Promise<void> {
  let last = "";
  for (let attempt = 0; attempt < 100; attempt++) {
    const summary = (await call(rig.socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
    if (summary.intents === 0 && summary.pending === 0) {
      await rig.sim.settle();
      const pool = (await call(rig.socket, "GET", "/v1/ips")).body.ips as PoolIp[];
      const again = (await call(rig.socket, "GET", "/v1/pool")).body as { intents: number; pending: number };
      if (again.intents !== 0 || again.pending !== 0) continue;
      last = problems(pool);
      if (last === "") return;
    }
    await sleep(100);
  }
  throw new Error(last || "the pool never settled");
}

/** Allocates or releases `key` ("containerId/ifname"); a refusal must be a 503 (with the code `refusal`, if given). */
export async function send(
  rig: CrashRig,
  ledger: Ledger,
  key: string,
  release: boolean,
  refusal?: string,
): Promise<void> {
  const [containerId, ifname] = key.split("/") as [string, string];
  let r: Awaited<ReturnType<typeof call>>;
  try {
    r = await call(
      rig.socket,
      "POST",
      release ? "/v1/release" : "/v1/allocate",
      { containerId, ifname },
      12_000,
    );
  } catch {
    ledger.maybe.add(key); // the daemon died under this request
    return;
  }
  if (r.status === 200) {
    if (release) ledger.acked.delete(key);
    else ledger.acked.set(key, r.body.ip as string);
    return;
  }
  // An answer that is not a success is a refusal to try again, never anything else.
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  if (refusal !== undefined) expect((r.body.error as { code: string }).code).toBe(refusal);
}

/**
 * After a restart: every acknowledged allocation is there, with its IP; no IP twice; what got no
 * answer is settled from what the daemon says. Then `more` (the test's own checks on the
 * allocations), the pool against the cloud (`problems`, as in checkSettled), the cloud's invariants.
 */
export async function verify(
  rig: CrashRig,
  ledger: Ledger,
  problems: (pool: PoolIp[]) => string,
  more: (list: Allocation[]) => void = () => {},
): Promise<void> {
  const list = (await call(rig.socket, "GET", "/v1/allocations")).body.allocations as Allocation[];
  const byKey = new Map(list.map((a) => [`${a.containerId}/${a.ifname}`, a]));
  const ips = list.map((a) => a.ip);
  expect(new Set(ips).size, `an IP is allocated twice: ${ips.sort().join(",")}`).toBe(ips.length);
  for (const [key, ip] of ledger.acked) {
    if (ledger.maybe.has(key)) continue;
    expect(byKey.get(key)?.ip, `acknowledged allocation ${key} lost`).toBe(ip);
  }
  for (const key of ledger.maybe) {
    const a = byKey.get(key);
    if (a) ledger.acked.set(key, a.ip);
    else ledger.acked.delete(key);
  }
  ledger.maybe.clear();
  more(list);
  await checkSettled(rig, problems);
  expect(checkInvariants(rig.sim.state)).toEqual([]);
}

export interface KillPlan {
  /** The call that sets the kill off, and its delay after it (drawn as the call comes); null: the fallback alone. */
  on: { action: CloudAction; delayMs: () => number } | null;
  /** When the kill fires anyway (put down to "time"). */
  fallbackMs: number;
  /** What to put a kill down to, given how it fired and how many calls of an action came since. */
  relabel?: (how: Kill, callsSince: (a: CloudAction) => number) => Kill;
}

/** Arms one kill -9 of the running daemon; resolves once it is dead, the kill noted in `kills`. */
export function armKill(rig: CrashRig, kills: Kill[], plan: KillPlan): Promise<void> {
  const victim = rig.daemon!;
  return new Promise<void>((resolveKill) => {
    let done = false;
    const fire = (how: Kill, delay: number): void => {
      if (done) return;
      done = true;
      rig.armed = null;
      const before = new Map(rig.calls);
      const since = (a: CloudAction): number => (rig.calls.get(a) ?? 0) - (before.get(a) ?? 0);
      setTimeout(() => {
        kills.push(plan.relabel ? plan.relabel(how, since) : how);
        kill9(victim).then(resolveKill);
      }, delay);
    };
    const on = plan.on;
    if (on) rig.armed = { action: on.action, fire: () => fire(on.action, on.delayMs()) };
    setTimeout(() => fire("time", 0), plan.fallbackMs);
  });
}

/**
 * Starts the daemon and runs `cycles` cycles of traffic. Each of MIN_KILLS + 2 windows of cycles
 * arms a kill; once it has fired, the daemon starts again and `verify` runs (with `problems` and
 * `more`).
 */
export async function killLoop(
  rig: CrashRig,
  ledger: Ledger,
  loop: {
    cycles: number;
    minKills: number;
    arm: () => Promise<void>;
    cycle: () => Promise<void>;
    problems: (pool: PoolIp[]) => string;
    more?: (list: Allocation[]) => void;
  },
): Promise<void> {
  await startDaemon(rig);
  let killing: Promise<void> | null = null;
  const windowSize = Math.floor(loop.cycles / (loop.minKills + 2));
  const restart = async (): Promise<void> => {
    killing = null;
    await startDaemon(rig);
    await verify(rig, ledger, loop.problems, loop.more);
  };
  for (let cycle = 0; cycle < loop.cycles; cycle++) {
    if (cycle % windowSize === 0 && !killing) killing = loop.arm();
    await loop.cycle();
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
}

/** After the leak grace: the pool settles with no `problems`, and every ENI of ours is attached and the pool's. */
export async function checkAfterGrace(rig: CrashRig, problems: (pool: PoolIp[]) => string): Promise<void> {
  await sleep(2500);
  await checkSettled(rig, problems);
  const summary = (await call(rig.socket, "GET", "/v1/pool")).body as { enis: { eniId: string }[] };
  const poolEnis = new Set(summary.enis.map((e) => e.eniId));
  for (const e of ourEnis(rig)) {
    expect(e.status, `${e.id} leaked`).toBe("InUse");
    expect(poolEnis.has(e.id), `${e.id} is not in the pool`).toBe(true);
  }
}

/** "N kills (Action×n, …)" for the log. */
export const killSummary = (kills: Kill[]): string =>
  `${kills.length} kills (${[...new Set(kills)].map((k) => `${k}×${kills.filter((x) => x === k).length}`).join(", ")})`;
