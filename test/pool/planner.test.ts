import { describe, expect, it } from "vitest";
import { type EniView, type IpView, type PlanInput, plan } from "../../pool/planner.js";

const MIN = 60_000;
const T0 = 1_000_000_000;

function ips(eni: string, spec: string, idleSince = T0): IpView[] {
  // spec: one letter per IP: i idle, a assigned, c cooling, r releasing
  const phase = { i: "idle", a: "assigned", c: "cooling", r: "releasing" } as const;
  return [...spec].map((ch, n) => ({
    ip: `${eni}.${n}`,
    phase: phase[ch as keyof typeof phase],
    idleSince,
  }));
}

function eni(id: string, spec: string, extra: Partial<EniView> = {}, idleSince = T0): EniView {
  const list = ips(id, spec, idleSince);
  return {
    eniId: id,
    vSwitchId: "vsw-a",
    phase: "ready",
    primaryIp: list[0]?.ip ?? "",
    ips: list,
    pendingIps: 0,
    busy: false,
    ...extra,
  };
}

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    now: T0,
    enis: [],
    limits: { maxSecondaryEnis: 2, ipsPerEni: 6 },
    targets: { minIdle: 2, maxIdle: 8, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
    vSwitches: [
      { vSwitchId: "vsw-a", available: 100 },
      { vSwitchId: "vsw-b", available: 200 },
    ],
    blockedVSwitches: {},
    createBackoffUntil: 0,
    waiting: 0,
    ...over,
  };
}

describe("planner", () => {
  const cases: { name: string; in: PlanInput; out: ReturnType<typeof plan> }[] = [
    {
      name: "cold pool: one ENI in the vSwitch with most free addresses, filled towards maxIdle within its quota",
      in: input(),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 6 }],
    },
    {
      name: "a new ENI's headroom stops at maxIdle",
      in: input({
        targets: { minIdle: 2, maxIdle: 3, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
        limits: { maxSecondaryEnis: 2, ipsPerEni: 10 },
      }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 3 }],
    },
    {
      name: "at minIdle: nothing to do",
      in: input({ enis: [eni("e1", "aaii")] }),
      out: [],
    },
    {
      name: "cooling IPs count as unavailable",
      in: input({ enis: [eni("e1", "aacc")] }),
      out: [{ kind: "assign", eniId: "e1", count: 2 }],
    },
    {
      name: "in-flight IPs count towards the target",
      in: input({ enis: [eni("e1", "aai", { pendingIps: 1, busy: true })] }),
      out: [],
    },
    {
      name: "IPs of an attaching ENI count as pending",
      in: input({ enis: [eni("e1", "ii", { phase: "attaching" })] }),
      out: [],
    },
    {
      name: "fills the ENI with the most free slots first",
      in: input({ enis: [eni("e1", "aaaaa"), eni("e2", "aa")], waiting: 1 }),
      out: [{ kind: "assign", eniId: "e2", count: 3 }],
    },
    {
      name: "spills to the next ENI, one call per ENI",
      in: input({ enis: [eni("e1", "aaaa"), eni("e2", "aaa")], waiting: 4 }),
      out: [
        { kind: "assign", eniId: "e2", count: 3 },
        { kind: "assign", eniId: "e1", count: 2 },
      ],
    },
    {
      name: "skips an ENI with a call in flight",
      in: input({ enis: [eni("e1", "aa", { busy: true })], waiting: 2 }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 6 }],
    },
    {
      name: "at most maxIpsPerCall IPs in one Assign",
      in: input({ limits: { maxSecondaryEnis: 1, ipsPerEni: 30 }, enis: [eni("e1", "a")], waiting: 25 }),
      out: [{ kind: "assign", eniId: "e1", count: 10 }],
    },
    {
      name: "never more than eniQuantity − 1 secondary ENIs",
      in: input({ enis: [eni("e1", "aaaaaa"), eni("e2", "aaaaaa")], waiting: 3 }),
      out: [],
    },
    {
      name: "a burst creates ENIs up to the quota, each with its first IPs",
      in: input({ waiting: 20, limits: { maxSecondaryEnis: 3, ipsPerEni: 10 } }),
      out: [
        { kind: "create", vSwitchId: "vsw-b", ipCount: 10 },
        { kind: "create", vSwitchId: "vsw-b", ipCount: 10 },
        { kind: "create", vSwitchId: "vsw-b", ipCount: 8 },
      ],
    },
    {
      name: "a blocked vSwitch is not used, neither for create nor for assign",
      in: input({ enis: [eni("e1", "a", { vSwitchId: "vsw-b" })], blockedVSwitches: { "vsw-b": T0 + 1 } }),
      out: [{ kind: "create", vSwitchId: "vsw-a", ipCount: 6 }],
    },
    {
      name: "a vSwitch block expires",
      in: input({ blockedVSwitches: { "vsw-b": T0 } }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 6 }],
    },
    {
      name: "no create during the ENI-limit backoff; assigns still happen",
      in: input({ enis: [eni("e1", "aaaaa")], waiting: 3, createBackoffUntil: T0 + 1 }),
      out: [{ kind: "assign", eniId: "e1", count: 1 }],
    },
    {
      name: "a vSwitch with few addresses caps the create",
      in: input({ vSwitches: [{ vSwitchId: "vsw-a", available: 1 }], waiting: 4 }),
      out: [{ kind: "create", vSwitchId: "vsw-a", ipCount: 1 }],
    },
    {
      name: "no vSwitch with free addresses: nothing to create",
      in: input({ vSwitches: [{ vSwitchId: "vsw-a", available: 0 }] }),
      out: [],
    },
    {
      name: "idle above maxIdle but younger than the reclaim delay: kept",
      in: input({ now: T0 + 4 * MIN, enis: [eni("e1", "aiiiii"), eni("e2", "iiiii")] }),
      out: [],
    },
    {
      name: "idle above maxIdle after the delay: secondaries reclaimed from the emptiest ENI",
      in: input({
        now: T0 + 5 * MIN,
        targets: { minIdle: 2, maxIdle: 3, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
        enis: [eni("e1", "aaiiii"), eni("e2", "aaaii")],
      }),
      out: [{ kind: "unassign", eniId: "e1", ips: ["e1.2", "e1.3", "e1.4"] }],
    },
    {
      name: "an ENI whose IPs are all free is deleted whole",
      in: input({
        now: T0 + 6 * MIN,
        targets: { minIdle: 2, maxIdle: 4, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
        enis: [eni("e1", "aaiiii"), eni("e2", "iiiii")],
      }),
      out: [{ kind: "delete", eniId: "e2" }],
    },
    {
      name: "the primary IP is never unassigned",
      in: input({
        now: T0 + 6 * MIN,
        targets: { minIdle: 0, maxIdle: 0, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
        enis: [eni("e1", "iaa")],
      }),
      out: [],
    },
    {
      name: "an ENI with a cooling IP is not deleted",
      in: input({
        now: T0 + 6 * MIN,
        targets: { minIdle: 0, maxIdle: 0, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
        enis: [eni("e1", "iic")],
      }),
      out: [{ kind: "unassign", eniId: "e1", ips: ["e1.1"] }],
    },
    {
      name: "nothing shrinks while allocations wait or IPs are in flight",
      in: input({
        now: T0 + 6 * MIN,
        enis: [eni("e1", "iiiiii", { pendingIps: 0 }), eni("e2", "iiiiii", { pendingIps: 1, busy: true })],
      }),
      out: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(plan(c.in)).toEqual(c.out);
    });
  }
});
