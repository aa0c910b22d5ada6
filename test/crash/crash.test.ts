// kill -9 the daemon at random points (including inside Create, Attach and
// Assign) during 200 allocate/release cycles, restart it each time, and check
// that nothing is lost, leaked or handed out twice.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/prng.js";
import {
  armKill,
  type CrashRig,
  checkAfterGrace,
  killLoop,
  killSummary,
  newLedger,
  ourEnis,
  type PoolIp,
  send,
  sleep,
  startRig,
  stopRig,
} from "./harness.js";

const NODE = "i-crash-node";
const CLUSTER = "crash-test";
const CYCLES = Number(process.env.ENIWAY_CRASH_CYCLES ?? 200);
const MIN_KILLS = Number(process.env.ENIWAY_CRASH_KILLS ?? 30);
const SEED = Number(process.env.ENIWAY_CRASH_SEED ?? 7);

type Trigger =
  | "time"
  | "CreateNetworkInterface"
  | "AttachNetworkInterface"
  | "AssignPrivateIpAddresses"
  | "UnassignPrivateIpAddresses";

describe("crash safety under kill -9", () => {
  let rig: CrashRig;

  beforeAll(async () => {
    rig = await startRig({
      node: NODE,
      vpc: { vpcId: "vpc-crash", cidr: "10.20.0.0/16" },
      vSwitch: { vSwitchId: "vsw-crash", zoneId: "z1", cidr: "10.20.1.0/24" },
      eniQuantity: 4,
      attachMs: [200, 600],
      cluster: CLUSTER,
      tmpPrefix: "eniway-crash-",
      pool: { minIdle: 2, maxIdle: 5 },
    });
  });

  afterAll(() => stopRig(rig));

  /** Every IP the cloud has on the node's ENIs of ours is known to the pool. */
  const unknownIps = (pool: PoolIp[]): string => {
    const known = new Set(pool.map((p) => p.ip));
    const missing: string[] = [];
    for (const e of ourEnis(rig)) {
      if (e.instanceId !== NODE || e.status !== "InUse") continue;
      for (const ip of e.ips) if (!known.has(ip)) missing.push(`${ip}@${e.id}`);
    }
    return missing.length === 0 ? "" : `cloud IPs unknown to the pool: ${missing.join(", ")}`;
  };

  it(`survives ${MIN_KILLS}+ kills in ${CYCLES} cycles`, async () => {
    const rnd = prng(SEED);
    const ledger = newLedger();
    const { acked, maybe, kills } = ledger;
    let aiming = "time" as Trigger;
    let draining = false;
    let serial = 0;

    const arm = (): Promise<void> => {
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
      const on =
        trigger === "time"
          ? null
          : trigger === "AttachNetworkInterface"
            ? { action: "CreateNetworkInterface" as const, delayMs: () => 200 + rnd() * 300 }
            : { action: trigger, delayMs: () => rnd() * 120 };
      return armKill(rig, kills, {
        on,
        fallbackMs: trigger === "time" ? Math.floor(rnd() * 300) : 2000,
        // Aiming at Attach, the kill follows a Create by long enough to land in the attach.
        relabel: (how, callsSince) =>
          how === "CreateNetworkInterface" && callsSince("AttachNetworkInterface") > 0
            ? "AttachNetworkInterface"
            : how,
      });
    };

    const cycle = async (): Promise<void> => {
      const keys = [...acked.keys()].filter((k) => !maybe.has(k));
      // Aiming at Create or Attach needs new ENIs: fill the node, then drain it so the pool
      // deletes ENIs, then fill again.
      const growing = aiming === "CreateNetworkInterface" || aiming === "AttachNetworkInterface";
      if (growing && keys.length >= 14) draining = true;
      if (keys.length === 0) draining = false;
      const release = growing ? draining : keys.length > 8 || (keys.length > 2 && rnd() < 0.45);
      if (growing) await sleep(40);
      const key = release ? keys[Math.floor(rnd() * keys.length)]! : `ctr-${SEED}-${serial++}/eth0`;
      await send(rig, ledger, key, release, "TryAgainLater");
    };

    await killLoop(rig, ledger, { cycles: CYCLES, minKills: MIN_KILLS, arm, cycle, problems: unknownIps });

    expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    for (const t of ["CreateNetworkInterface", "AttachNetworkInterface", "AssignPrivateIpAddresses"] as const)
      expect(kills, `no kill inside ${t}`).toContain(t);

    // After the grace period, no ENI of ours has leaked: each is attached to the node and known to the pool.
    await checkAfterGrace(rig, unknownIps);
    console.log(`crash test: ${killSummary(kills)}, ${acked.size} live allocations`);
  }, 300_000);
});
