// kill -9 the daemon in prefix mode at random points, most of them inside
// the AssignPrivateIpAddresses that brings IPv4 prefixes (and inside the
// Create that brings an ENI's first ones, and the Unassign that gives one
// back), restart it each time, and check that no prefix is leaked (held by
// the cloud for an ENI of ours, unknown to the pool) or lost (believed by
// the pool, gone from the cloud), and that no acknowledged pod lost its IP.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cidrContains, ipToInt, ipv4PrefixAddresses, parseCidr } from "../../lib/net.js";
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
  startRig,
  stopRig,
} from "./harness.js";

const NODE = "i-prefix-crash";
const CLUSTER = "prefix-crash";
const CYCLES = Number(process.env.ENIWAY_PREFIX_CRASH_CYCLES ?? 240);
const MIN_KILLS = Number(process.env.ENIWAY_PREFIX_CRASH_KILLS ?? 16);
const SEED = Number(process.env.ENIWAY_CRASH_SEED ?? 11);

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

describe("prefix mode under kill -9", () => {
  let rig: CrashRig;

  beforeAll(async () => {
    rig = await startRig({
      node: NODE,
      vpc: { vpcId: "vpc-prefix-crash", cidr: "10.40.0.0/16" },
      // The operator's part: CIDR blocks of the vSwitch reserved for prefixes (eight /28s).
      vSwitch: {
        vSwitchId: "vsw-prefix-crash",
        zoneId: "z1",
        cidr: "10.40.1.0/24",
        reservations: ["10.40.1.64/26", "10.40.1.128/26"],
      },
      eniQuantity: 3,
      attachMs: [200, 500],
      cluster: CLUSTER,
      tmpPrefix: "eniway-prefix-crash-",
      // Nothing kept idle: every 16th pod waits for an Assign, and a prefix that empties goes back.
      pool: { mode: "prefix", minIdle: 0, maxIdle: 2 },
    });
  });

  afterAll(() => stopRig(rig));

  /** What is wrong between the cloud's prefixes and the pool's, once nothing is in flight; "" when nothing. */
  const prefixProblems = (pool: PoolIp[]): string => {
    const problems: string[] = [];
    const inPool = new Map<string, PoolIp[]>();
    for (const r of pool) if (r.prefix) inPool.set(r.prefix, [...(inPool.get(r.prefix) ?? []), r]);
    const inCloud = new Map<string, string>(); // prefix → ENI
    for (const e of ourEnis(rig)) for (const p of e.ipv4Prefixes) inCloud.set(p, e.id);
    for (const e of ourEnis(rig)) {
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

  it(`keeps every prefix known and every pod's IP through ${MIN_KILLS}+ kills in ${CYCLES} cycles`, async () => {
    const rnd = prng(SEED);
    const ledger = newLedger();
    const { acked, maybe, kills } = ledger;
    let serial = 0;
    let filling = true;
    let aiming = "time" as Trigger;

    const arm = (): Promise<void> => {
      const trigger = TRIGGERS[Math.floor(rnd() * TRIGGERS.length)]!;
      aiming = trigger;
      return armKill(rig, kills, {
        on: trigger === "time" ? null : { action: trigger, delayMs: () => rnd() * 160 },
        fallbackMs: trigger === "time" ? Math.floor(rnd() * 300) : 6000,
      });
    };

    const cycle = async (): Promise<void> => {
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
      await Promise.all(requests.map(([key, release]) => send(rig, ledger, key, release)));
    };

    // Every pod's IP is its ENI's in the cloud: a single IP of it, or in one of its prefixes.
    const onTheirEnis = (list: { ip: string; eniId: string }[]): void => {
      for (const a of list) {
        const e = rig.sim.state.enis.get(a.eniId);
        const own =
          e?.ips.includes(a.ip) || e?.ipv4Prefixes.some((p) => cidrContains(parseCidr(p), ipToInt(a.ip)));
        expect(own, `${a.ip} is not on ${a.eniId} in the cloud`).toBe(true);
      }
    };

    await killLoop(rig, ledger, {
      cycles: CYCLES,
      minKills: MIN_KILLS,
      arm,
      cycle,
      problems: prefixProblems,
      more: onTheirEnis,
    });

    expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    const inAssign = kills.filter((k) => k === "AssignPrivateIpAddresses").length;
    expect(inAssign, "kills inside a prefix Assign").toBeGreaterThanOrEqual(MIN_KILLS / 4);
    // After the leak grace: every ENI of ours is attached and the pool's; the reservation holds
    // exactly the prefixes on them.
    await checkAfterGrace(rig, prefixProblems);
    const held = [...rig.sim.state.enis.values()].flatMap((e) => e.ipv4Prefixes).sort();
    expect(held).toEqual(
      ourEnis(rig)
        .flatMap((e) => e.ipv4Prefixes)
        .sort(),
    );
    console.log(
      `prefix crash test: ${killSummary(kills)}, ${acked.size} live allocations, ${held.length} prefixes held`,
    );
  }, 300_000);
});
