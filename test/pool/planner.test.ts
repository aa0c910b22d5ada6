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
    pendingPrefixes: 0,
    busy: false,
    ...extra,
  };
}

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    now: T0,
    mode: "ip",
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

/**
 * An ENI in prefix mode: its primary IP (`primary`: a letter as in `ips`), then
 * a prefix per spec, each of 16 addresses written as runs, e.g. "a3i13".
 */
function pfxEni(
  id: string,
  primary: string,
  prefixes: string[],
  extra: Partial<EniView> = {},
  idleSince = T0,
): EniView {
  const e = eni(id, primary, extra, idleSince);
  prefixes.forEach((spec, n) => {
    const letters = spec.replace(/([a-z])(\d+)/g, (_, ch: string, k: string) => ch.repeat(Number(k)));
    if (letters.length !== 16) throw new Error(`a prefix has 16 addresses: ${spec}`);
    const prefix = `${id}/p${n}`;
    for (const [i, ip] of ips(`${prefix}`, letters, idleSince).entries())
      e.ips.push({ ...ip, ip: `${prefix}.${i}`, prefix });
  });
  return e;
}

describe("planner in prefix mode", () => {
  const pin = (over: Partial<PlanInput> = {}): PlanInput => input({ mode: "prefix", ...over });
  const zero = { minIdle: 0, maxIdle: 0, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN };
  const cases: { name: string; in: PlanInput; out: ReturnType<typeof plan> }[] = [
    {
      name: "cold pool: one ENI with its primary IP and one prefix",
      in: pin(),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 1 }],
    },
    {
      name: "a cold burst of 60: one ENI with the four prefixes they need",
      in: pin({ waiting: 60 }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 4 }],
    },
    {
      name: "a larger burst: ENIs up to the quota, each with at most ipsPerEni − 1 prefixes",
      in: pin({ waiting: 200 }),
      out: [
        { kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 5 },
        { kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 5 },
      ],
    },
    {
      name: "a new ENI brings the whole prefixes that fit in the headroom up to maxIdle",
      in: pin({ targets: { minIdle: 2, maxIdle: 40, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN } }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 2 }],
    },
    {
      name: "grows a ready ENI by the prefixes the need takes",
      in: pin({ enis: [pfxEni("e1", "a", ["a16"])], waiting: 5 }),
      out: [{ kind: "assignPrefixes", eniId: "e1", count: 1 }],
    },
    {
      name: "a slot is a single IP or a prefix: an ENI with the primary, 2 IPs and 3 prefixes is full",
      in: pin({ enis: [pfxEni("e1", "aaa", ["a16", "a16", "a16"])], waiting: 1 }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 1 }],
    },
    {
      name: "prefixes in flight count as their 16 addresses and as slots",
      in: pin({ enis: [pfxEni("e1", "a", ["a16"], { pendingPrefixes: 1, busy: true })], waiting: 3 }),
      out: [],
    },
    {
      name: "at most maxIpsPerCall prefixes in one Assign",
      in: pin({
        limits: { maxSecondaryEnis: 1, ipsPerEni: 30 },
        targets: { minIdle: 2, maxIdle: 8, maxIpsPerCall: 3, idleReclaimMs: 5 * MIN },
        enis: [pfxEni("e1", "a", [])],
        waiting: 100,
      }),
      out: [{ kind: "assignPrefixes", eniId: "e1", count: 3 }],
    },
    {
      name: "never more than the API's 10 prefixes in one call",
      in: pin({
        limits: { maxSecondaryEnis: 1, ipsPerEni: 30 },
        targets: { minIdle: 2, maxIdle: 8, maxIpsPerCall: 30, idleReclaimMs: 5 * MIN },
        waiting: 400,
      }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 10 }],
    },
    {
      name: "a blocked vSwitch gets no prefix; a new ENI goes to another",
      in: pin({
        enis: [pfxEni("e1", "a", ["a16"], { vSwitchId: "vsw-b" })],
        blockedVSwitches: { "vsw-b": T0 + 1 },
      }),
      out: [{ kind: "create", vSwitchId: "vsw-a", ipCount: 1, prefixCount: 1 }],
    },
    {
      name: "a new ENI needs one free address in its vSwitch, for its primary IP",
      in: pin({ vSwitches: [{ vSwitchId: "vsw-a", available: 0 }] }),
      out: [],
    },
    {
      name: "known free prefixes choose the vSwitch: not one whose reserved blocks are used up, however many addresses it has",
      in: pin({
        vSwitches: [
          { vSwitchId: "vsw-a", available: 100, prefixes: 3 },
          { vSwitchId: "vsw-b", available: 200, prefixes: 0 },
        ],
      }),
      out: [{ kind: "create", vSwitchId: "vsw-a", ipCount: 1, prefixCount: 1 }],
    },
    {
      name: "a new ENI takes no more prefixes than its vSwitch's blocks can give; the next ENI goes to another",
      in: pin({
        waiting: 60,
        vSwitches: [
          { vSwitchId: "vsw-a", available: 100, prefixes: 2 },
          { vSwitchId: "vsw-b", available: 200, prefixes: 1 },
        ],
      }),
      out: [
        { kind: "create", vSwitchId: "vsw-a", ipCount: 1, prefixCount: 2 },
        { kind: "create", vSwitchId: "vsw-b", ipCount: 1, prefixCount: 1 },
      ],
    },
    {
      name: "no prefix asked of a ready ENI whose vSwitch's blocks are used up: a new ENI in a vSwitch with some",
      in: pin({
        enis: [pfxEni("e1", "a", ["a16"], { vSwitchId: "vsw-b" })],
        waiting: 5,
        vSwitches: [
          { vSwitchId: "vsw-a", available: 100, prefixes: 4 },
          { vSwitchId: "vsw-b", available: 200, prefixes: 0 },
        ],
      }),
      out: [{ kind: "create", vSwitchId: "vsw-a", ipCount: 1, prefixCount: 1 }],
    },
    {
      name: "gives back a whole prefix whose 16 addresses are idle and aged, not one in use",
      in: pin({ now: T0 + 6 * MIN, targets: zero, enis: [pfxEni("e1", "a", ["a1i15", "i16"])] }),
      out: [{ kind: "unassignPrefixes", eniId: "e1", prefixes: ["e1/p1"] }],
    },
    {
      name: "a prefix with a cooling address stays",
      in: pin({ now: T0 + 6 * MIN, targets: zero, enis: [pfxEni("e1", "a", ["c1i15"])] }),
      out: [],
    },
    {
      name: "an idle prefix younger than the reclaim delay stays",
      in: pin({ now: T0 + 4 * MIN, targets: zero, enis: [pfxEni("e1", "a", ["i16"])] }),
      out: [],
    },
    {
      name: "above maxIdle, a prefix goes only while the pool keeps minIdle",
      in: pin({ now: T0 + 6 * MIN, enis: [pfxEni("e1", "a", ["i16", "i16", "a16"])] }),
      out: [{ kind: "unassignPrefixes", eniId: "e1", prefixes: ["e1/p0"] }],
    },
    {
      name: "one idle prefix above maxIdle stays when giving it back would leave less than minIdle",
      in: pin({ now: T0 + 6 * MIN, enis: [pfxEni("e1", "a", ["i16", "a16"])] }),
      out: [],
    },
    {
      name: "single IPs that ip mode left go back first (one call per ENI); prefixes of other ENIs too",
      in: pin({
        now: T0 + 6 * MIN,
        targets: zero,
        enis: [pfxEni("e1", "aii", ["i16"]), pfxEni("e2", "a", ["i16"])],
      }),
      out: [
        { kind: "unassign", eniId: "e1", ips: ["e1.1", "e1.2"] },
        { kind: "unassignPrefixes", eniId: "e2", prefixes: ["e2/p0"] },
      ],
    },
    {
      name: "an ENI whose addresses are all idle and aged is deleted whole",
      in: pin({
        now: T0 + 6 * MIN,
        targets: zero,
        enis: [pfxEni("e1", "a", ["a16"]), pfxEni("e2", "i", ["i16"])],
      }),
      out: [{ kind: "delete", eniId: "e2" }],
    },
    {
      name: "nothing shrinks while prefixes are in flight",
      in: pin({
        now: T0 + 6 * MIN,
        targets: zero,
        enis: [pfxEni("e1", "a", ["i16"]), pfxEni("e2", "a", [], { pendingPrefixes: 1, busy: true })],
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

describe("planner in ip mode with what prefix mode left", () => {
  const cases: { name: string; in: PlanInput; out: ReturnType<typeof plan> }[] = [
    {
      name: "a prefix takes one slot: the ENI still has room for single IPs",
      in: input({ enis: [pfxEni("e1", "a", ["a16"])], waiting: 1 }),
      out: [{ kind: "assign", eniId: "e1", count: 3 }],
    },
    {
      name: "an idle prefix goes back whole, before single IPs",
      in: input({
        now: T0 + 6 * MIN,
        targets: { minIdle: 0, maxIdle: 0, maxIpsPerCall: 10, idleReclaimMs: 5 * MIN },
        enis: [pfxEni("e1", "ai", ["i16"])],
      }),
      out: [{ kind: "unassignPrefixes", eniId: "e1", prefixes: ["e1/p0"] }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(plan(c.in)).toEqual(c.out);
    });
  }
});

describe("planner in dual stack", () => {
  const din = (over: Partial<PlanInput> = {}): PlanInput =>
    input({ dual: true, limits: { maxSecondaryEnis: 2, ipsPerEni: 6, ipv6PerEni: 6 }, ...over });
  /** An ENI with IPv6 whose IPv4s (spec as in `ips`) are paired where `paired` says "p". */
  const dualEni = (id: string, spec: string, paired: string, extra: Partial<EniView> = {}): EniView => {
    const e = eni(id, spec, { ipv6: true, ...extra });
    e.ips = e.ips.map((ip, n) => (paired[n] === "p" ? { ...ip, paired: true } : ip));
    return e;
  };
  const cases: { name: string; in: PlanInput; out: ReturnType<typeof plan> }[] = [
    {
      name: "IPv4s without a partner get IPv6 first; they count as pending, so nothing else is asked",
      in: din({ enis: [dualEni("e1", "iiii", "----")] }),
      out: [{ kind: "assignIpv6", eniId: "e1", count: 4 }],
    },
    {
      name: "paired idle IPv4s serve: nothing to do",
      in: din({ enis: [dualEni("e1", "ii", "pp")] }),
      out: [],
    },
    {
      name: "at most what the ENI's IPv6 quota leaves; the IPv4s beyond it never serve, so the pool grows past them",
      in: din({
        limits: { maxSecondaryEnis: 2, ipsPerEni: 6, ipv6PerEni: 2 },
        enis: [dualEni("e1", "aiii", "p---")],
      }),
      out: [
        { kind: "assignIpv6", eniId: "e1", count: 1 },
        { kind: "create", vSwitchId: "vsw-b", ipCount: 6 },
      ],
    },
    {
      name: "an ENI without IPv6 pairs nothing and gets no IPv4 more: a new ENI instead",
      in: din({ enis: [eni("e1", "ai")], waiting: 1 }),
      out: [{ kind: "create", vSwitchId: "vsw-b", ipCount: 6 }],
    },
    {
      name: "a pod's IPv4 keeps what it has: an assigned IPv4 without a partner gets none",
      in: din({ enis: [dualEni("e1", "aaii", "--pp")] }),
      out: [],
    },
  ];
  for (const c of cases) it(c.name, () => expect(plan(c.in)).toEqual(c.out));
});
