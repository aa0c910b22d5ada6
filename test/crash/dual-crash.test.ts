// kill -9 the daemon in dual stack at random points, most of them inside the
// AssignIpv6Addresses that pairs IPv6 addresses with the pool's IPv4s (and
// inside the Unassigns that give both back), restart it each time, and check
// that no IPv6 address is leaked (on an ENI of ours in the cloud, paired with
// no IPv4 of the pool), lost (paired in the pool, gone from the cloud) or
// paired twice, and that no acknowledged pod lost its IPv4 or its IPv6.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/prng.js";
import {
  type Allocation,
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

const NODE = "i-dual-crash";
const CLUSTER = "dual-crash";
const CYCLES = Number(process.env.ENIWAY_DUAL_CRASH_CYCLES ?? 200);
const MIN_KILLS = Number(process.env.ENIWAY_DUAL_CRASH_KILLS ?? 16);
const SEED = Number(process.env.ENIWAY_CRASH_SEED ?? 23);

type Trigger = "time" | "AssignIpv6Addresses" | "UnassignIpv6Addresses" | "AssignPrivateIpAddresses";
const TRIGGERS: Trigger[] = [
  "AssignIpv6Addresses",
  "AssignIpv6Addresses",
  "AssignIpv6Addresses",
  "UnassignIpv6Addresses",
  "AssignPrivateIpAddresses",
  "time",
];

describe("dual stack under kill -9", () => {
  let rig: CrashRig;

  beforeAll(async () => {
    rig = await startRig({
      node: NODE,
      vpc: { vpcId: "vpc-dual-crash", cidr: "10.50.0.0/16", ipv6Cidr: "fd00:50::/56" },
      vSwitch: {
        vSwitchId: "vsw-dual-crash",
        zoneId: "z1",
        cidr: "10.50.1.0/24",
        ipv6Cidr: "fd00:50:0:1::/64",
      },
      eniQuantity: 3,
      attachMs: [200, 500],
      cluster: CLUSTER,
      tmpPrefix: "eniway-dual-crash-",
      // Few kept idle: pods often wait for an Assign and its IPv6, and the pool shrinks as they go.
      pool: { minIdle: 1, maxIdle: 3 },
      daemon: { ipStack: "dual" },
    });
  });

  afterAll(() => stopRig(rig));

  /** What is wrong between the cloud's IPv6 addresses and the pool's pairs, once nothing is in flight; "" when nothing. */
  const ipv6Problems = (pool: PoolIp[]): string => {
    const problems: string[] = [];
    const paired = new Map<string, PoolIp>();
    for (const r of pool) {
      if (!r.ipv6) continue;
      if (paired.has(r.ipv6)) problems.push(`paired twice: ${r.ipv6} (${paired.get(r.ipv6)!.ip}, ${r.ip})`);
      paired.set(r.ipv6, r);
    }
    const inCloud = new Map<string, string>(); // IPv6 → ENI
    for (const e of ourEnis(rig)) for (const v6 of e.ipv6s) inCloud.set(v6, e.id);
    for (const e of ourEnis(rig)) {
      if (e.instanceId !== NODE || e.status !== "InUse") continue;
      for (const v6 of e.ipv6s) {
        const r = paired.get(v6);
        if (!r || r.eniId !== e.id)
          problems.push(`leaked: ${v6}@${e.id} (paired with ${r?.ip ?? "nothing"})`);
      }
    }
    for (const [v6, r] of paired)
      if (inCloud.get(v6) !== r.eniId) problems.push(`lost: ${v6} is paired with ${r.ip} on ${r.eniId}`);
    return problems.join("; ");
  };

  it(`keeps every IPv6 paired and every pod's addresses through ${MIN_KILLS}+ kills in ${CYCLES} cycles`, async () => {
    const rnd = prng(SEED);
    const ledger = newLedger();
    const { acked, maybe, kills } = ledger;
    /** Each acknowledged pod's IPv6 when first seen: it never changes while the pod lives. */
    const v6Of = new Map<string, string>();
    let serial = 0;

    const arm = (): Promise<void> => {
      const trigger = TRIGGERS[Math.floor(rnd() * TRIGGERS.length)]!;
      return armKill(rig, kills, {
        on: trigger === "time" ? null : { action: trigger, delayMs: () => rnd() * 160 },
        fallbackMs: trigger === "time" ? Math.floor(rnd() * 300) : 6000,
      });
    };

    const cycle = async (): Promise<void> => {
      const keys = [...acked.keys()].filter((k) => !maybe.has(k));
      const batch = 1 + Math.floor(rnd() * 4);
      const requests: [key: string, release: boolean][] = [];
      for (let i = 0; i < batch; i++) {
        // Up to 10 pods (the node holds 12): grow and shrink, so IPv6 is assigned and given back.
        const release = keys.length > 0 && (keys.length >= 10 || rnd() < 0.45);
        const key = release
          ? keys.splice(Math.floor(rnd() * keys.length), 1)[0]!
          : `ctr-${SEED}-${serial++}/eth0`;
        requests.push([key, release]);
      }
      await Promise.all(requests.map(([key, release]) => send(rig, ledger, key, release)));
    };

    // Every pod has an IPv6 of its IPv4's ENI in the cloud, the same as when it was first seen.
    const dualOnTheirEnis = (list: Allocation[]): void => {
      const live = new Set(list.map((a) => `${a.containerId}/${a.ifname}`));
      for (const k of v6Of.keys()) if (!live.has(k)) v6Of.delete(k);
      for (const a of list) {
        const key = `${a.containerId}/${a.ifname}`;
        expect(a.ipv6, `${key} has no IPv6`).toBeDefined();
        expect(rig.sim.state.enis.get(a.eniId)?.ipv6s, `${a.ipv6} is not on ${a.eniId}`).toContain(a.ipv6);
        const first = v6Of.get(key);
        if (first) expect(a.ipv6, `${key} changed its IPv6`).toBe(first);
        else v6Of.set(key, a.ipv6!);
      }
    };

    await killLoop(rig, ledger, {
      cycles: CYCLES,
      minKills: MIN_KILLS,
      arm,
      cycle,
      problems: ipv6Problems,
      more: dualOnTheirEnis,
    });

    expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    const inAssign = kills.filter((k) => k === "AssignIpv6Addresses").length;
    expect(inAssign, "kills inside an AssignIpv6Addresses").toBeGreaterThanOrEqual(MIN_KILLS / 4);
    await checkAfterGrace(rig, ipv6Problems);
    const held = ourEnis(rig).flatMap((e) => e.ipv6s);
    const ips = ourEnis(rig).reduce((n, e) => n + e.ips.length, 0);
    expect(held.length, "IPv6 addresses beyond the IPv4s").toBeLessThanOrEqual(ips);
    console.log(
      `dual crash test: ${killSummary(kills)}, ${acked.size} live allocations, ${held.length} IPv6 held`,
    );
  }, 300_000);
});
