// The pool's decisions, as a pure function of its state, the limits, the
// targets and the time. It returns the cloud actions to take now; the
// executor runs them. Nothing here talks to the cloud, the disk or a clock.
//
// The mode says what the pool asks the cloud for: single secondary IPs (ip)
// or IPv4 prefixes, /28s of 16 addresses (prefix). Either way the targets
// count addresses, and an ENI's quota counts slots: its primary IP, each
// single IP and each prefix take one. What the other mode left behind keeps
// serving and goes back first once idle: single IPs one by one, prefixes
// only whole.

import { MAX_IPV6_PER_CALL } from "../cloud/validate.js";
import { IPV4_PREFIX_SIZE } from "../lib/net.js";
import { byText } from "../lib/order.js";
import { perCallOf, shrink } from "./shrink.js";
import type { VSwitchFree } from "./vswitches.js";

export type PoolMode = "ip" | "prefix";
export type IpPhase = "idle" | "assigned" | "cooling" | "releasing";
export type EniPhase = "creating" | "attaching" | "ready" | "deleting";

export interface IpView {
  ip: string;
  phase: IpPhase;
  /** When the IP last became idle (ms). */
  idleSince: number;
  /** The IPv4 prefix the address belongs to; none for a single IP. */
  prefix?: string;
  /** Dual stack: an IPv6 address of the ENI is paired with it. */
  paired?: boolean;
}

export interface EniView {
  eniId: string;
  vSwitchId: string;
  phase: EniPhase;
  primaryIp: string;
  /** The addresses the pool knows on this ENI: the primary, single IPs and each prefix's 16. */
  ips: IpView[];
  /** Single IPs being added by an Assign in flight (or by the Create of a creating ENI). */
  pendingIps: number;
  /** Prefixes being added by an Assign in flight (or by the Create of a creating ENI). */
  pendingPrefixes: number;
  /** A cloud call on this ENI is in flight; one at a time per ENI. */
  busy: boolean;
  /** Dual stack: the ENI's IPv6 gateway is known (its vSwitch has IPv6): its IPv4s can get partners. */
  ipv6?: boolean;
}

export interface PlanInput {
  now: number;
  /** What the pool grows by: single IPs or IPv4 prefixes. */
  mode: PoolMode;
  /**
   * Dual stack: an IPv4 serves a pod only once an IPv6 of its ENI is paired
   * with it; until then it counts as pending, and its ENI gets IPv6 addresses first.
   */
  dual?: boolean;
  enis: EniView[];
  limits: {
    /** eniQuantity − 1: the primary ENI is the node's own. */
    maxSecondaryEnis: number;
    /** eniPrivateIpAddressQuantity: slots per ENI including its primary IP (a prefix takes one). */
    ipsPerEni: number;
    /** Dual stack: EniIpv6AddressQuantity, the IPv6 addresses an ENI may carry. */
    ipv6PerEni?: number;
  };
  targets: {
    minIdle: number;
    maxIdle: number;
    /** IPs, or prefixes, per Assign, Unassign and (prefixes) Create call; prefixes at most the API's 10. */
    maxIpsPerCall: number;
    idleReclaimMs: number;
  };
  /**
   * Candidate vSwitches with their free addresses (DescribeVSwitches) and,
   * in prefix mode when known, the prefixes their reserved blocks can still give.
   */
  vSwitches: VSwitchFree[];
  /** vSwitch id → time until which it is not used (after IpNotEnough). */
  blockedVSwitches: Record<string, number>;
  /** No CreateNetworkInterface before this time (after EniPerInstanceLimitExceeded). */
  createBackoffUntil: number;
  /** Allocations waiting for an IP right now. */
  waiting: number;
}

export type PlanAction =
  | { kind: "assign"; eniId: string; count: number }
  | { kind: "assignPrefixes"; eniId: string; count: number }
  /** Dual stack: IPv6 addresses for the ENI's IPv4s that have none. */
  | { kind: "assignIpv6"; eniId: string; count: number }
  /** `prefixCount` (prefix mode only): the ENI comes with its primary IP (`ipCount` 1) and these prefixes. */
  | { kind: "create"; vSwitchId: string; ipCount: number; prefixCount?: number }
  | { kind: "unassign"; eniId: string; ips: string[] }
  | { kind: "unassignPrefixes"; eniId: string; prefixes: string[] }
  | { kind: "delete"; eniId: string };

export interface PlanSummary {
  idle: number;
  pending: number;
  wanted: number;
  deficit: number;
}

/** Addresses on their way to an ENI. */
const pendingOf = (e: EniView): number => e.pendingIps + e.pendingPrefixes * IPV4_PREFIX_SIZE;

/** Dual stack: the ENI's single IPv4s that wait for an IPv6 (idle or cooling ones; a pod's keeps what it has). */
const unpairedOf = (e: EniView): IpView[] =>
  e.ips.filter((i) => i.prefix === undefined && !i.paired && (i.phase === "idle" || i.phase === "cooling"));

/**
 * Dual stack: how many of the ENI's unpaired IPv4s can still get an IPv6:
 * none on an ENI without IPv6, at most what its IPv6 quota leaves. The
 * others (and a prefix's addresses) never serve a dual-stack pod: they count
 * neither as idle nor as pending, so the pool grows past them.
 */
function pairable(input: PlanInput, e: EniView): number {
  if (!e.ipv6) return 0;
  const paired = e.ips.filter((i) => i.paired).length;
  const room = Math.max(0, (input.limits.ipv6PerEni ?? Number.POSITIVE_INFINITY) - paired);
  return Math.min(unpairedOf(e).length, room);
}

export function summarize(input: PlanInput): PlanSummary {
  let idle = 0;
  let pending = 0;
  for (const e of input.enis) {
    pending += pendingOf(e);
    if (e.phase === "ready") {
      idle += e.ips.filter((i) => i.phase === "idle" && (!input.dual || i.paired)).length;
      if (input.dual) pending += pairable(input, e);
    } else if (e.phase !== "deleting") pending += e.ips.length;
  }
  const wanted = input.targets.minIdle + input.waiting;
  return { idle, pending, wanted, deficit: wanted - idle - pending };
}

/** The ENI's prefixes, each once. */
const prefixesOf = (e: EniView): string[] => [
  ...new Set(e.ips.flatMap((i) => (i.prefix === undefined ? [] : [i.prefix]))),
];

/** Quota slots the ENI uses: its single IPs (the primary included), its prefixes and what is on its way. */
const slotsUsed = (e: EniView): number =>
  e.ips.filter((i) => i.prefix === undefined).length +
  prefixesOf(e).length +
  e.pendingIps +
  e.pendingPrefixes;

const isBlocked = (input: PlanInput, vSwitchId: string): boolean =>
  (input.blockedVSwitches[vSwitchId] ?? 0) > input.now;

export function plan(input: PlanInput): PlanAction[] {
  const ipv6 = input.dual ? pairing(input) : [];
  const busy = new Set(ipv6.map((a) => a.eniId));
  const rest =
    busy.size === 0
      ? input
      : { ...input, enis: input.enis.map((e) => (busy.has(e.eniId) ? { ...e, busy: true } : e)) };
  const s = summarize(rest);
  return [...ipv6, ...(s.deficit > 0 ? grow(rest, s.deficit) : shrink(rest, s))];
}

/** Dual stack: one AssignIpv6Addresses per ready ENI whose IPv4s wait for IPv6 (one call per ENI at a time). */
function pairing(input: PlanInput): Extract<PlanAction, { kind: "assignIpv6" }>[] {
  const perCall = Math.min(input.targets.maxIpsPerCall, MAX_IPV6_PER_CALL);
  return input.enis
    .filter((e) => e.phase === "ready" && !e.busy)
    .map((e) => ({ e, count: Math.min(pairable(input, e), perCall) }))
    .filter((x) => x.count > 0)
    .map(({ e, count }) => ({ kind: "assignIpv6" as const, eniId: e.eniId, count }));
}

function grow(input: PlanInput, deficit: number): PlanAction[] {
  const prefixes = input.mode === "prefix";
  const unit = prefixes ? IPV4_PREFIX_SIZE : 1;
  const actions: PlanAction[] = [];
  let need = deficit;
  // Fill the ready ENI with the most free slots first, one call per ENI.
  // Prefix mode: not on an ENI whose vSwitch's reserved blocks are known to be used up.
  const noPrefixes = new Set(input.vSwitches.filter((v) => v.prefixes === 0).map((v) => v.vSwitchId));
  const ready = input.enis
    .filter(
      (e) =>
        e.phase === "ready" &&
        !e.busy &&
        !isBlocked(input, e.vSwitchId) &&
        !(prefixes && noPrefixes.has(e.vSwitchId)) &&
        // Dual stack: an IPv4 on an ENI without IPv6 would never serve.
        !(input.dual && !e.ipv6),
    )
    .map((e) => ({ e, free: input.limits.ipsPerEni - slotsUsed(e) }))
    .filter((x) => x.free > 0)
    .sort((a, b) => b.free - a.free || byText(a.e.eniId, b.e.eniId));
  const perCall = perCallOf(input);
  for (const { e, free } of ready) {
    if (need <= 0) break;
    const count = Math.min(Math.ceil(need / unit), free, perCall);
    actions.push({ kind: prefixes ? "assignPrefixes" : "assign", eniId: e.eniId, count });
    need -= count * unit;
  }
  if (need <= 0 || input.now < input.createBackoffUntil) return actions;
  return [...actions, ...(prefixes ? createWithPrefixes(input, need) : createWithIps(input, need))];
}

/**
 * Usable vSwitches (copies, their free addresses counted down as creates take
 * them); in prefix mode not those whose reserved blocks are known to be used up.
 */
const freeVSwitches = (input: PlanInput): VSwitchFree[] =>
  input.vSwitches
    .filter(
      (v) =>
        !isBlocked(input, v.vSwitchId) &&
        v.available > 0 &&
        (input.mode !== "prefix" || v.prefixes === undefined || v.prefixes > 0),
    )
    .map((v) => ({ ...v }));

/**
 * New ENIs, each created with its first IPs, in the vSwitch with the most free addresses.
 * An ENI costs a Create and a slow Attach, so a new one brings up to maxIdle − minIdle IPs of
 * headroom besides what is needed now; the pool still ends at or below maxIdle idle IPs.
 */
function createWithIps(input: PlanInput, deficit: number): PlanAction[] {
  const actions: PlanAction[] = [];
  let need = deficit;
  let headroom = Math.max(0, input.targets.maxIdle - input.targets.minIdle);
  const vsws = freeVSwitches(input);
  let enis = input.enis.length;
  while (need > 0 && enis < input.limits.maxSecondaryEnis) {
    vsws.sort((a, b) => b.available - a.available);
    const v = vsws[0];
    if (!v || v.available <= 0) break;
    const ipCount = Math.min(need + headroom, input.limits.ipsPerEni, v.available);
    actions.push({ kind: "create", vSwitchId: v.vSwitchId, ipCount });
    v.available -= ipCount;
    headroom -= Math.max(0, ipCount - need);
    need -= ipCount;
    enis++;
  }
  return actions;
}

/**
 * New ENIs with prefixes: each its primary IP (from the vSwitch's free
 * addresses) and the prefixes the need takes, plus whole prefixes that fit
 * in the headroom up to maxIdle, at most maxIpsPerCall and its quota.
 */
function createWithPrefixes(input: PlanInput, deficit: number): PlanAction[] {
  const actions: PlanAction[] = [];
  let need = deficit;
  let headroom = Math.max(0, input.targets.maxIdle - input.targets.minIdle);
  const most = Math.min(input.limits.ipsPerEni - 1, perCallOf(input));
  const vsws = freeVSwitches(input);
  let enis = input.enis.length;
  // The vSwitch with the most free prefixes (where known), then the most free addresses.
  const byFree = (a: VSwitchFree, b: VSwitchFree): number =>
    (b.prefixes ?? 0) - (a.prefixes ?? 0) || b.available - a.available;
  while (need > 0 && enis < input.limits.maxSecondaryEnis && most > 0) {
    vsws.sort(byFree);
    const v = vsws[0];
    if (!v || v.available <= 0 || v.prefixes === 0) break;
    // The primary IP serves too: the prefixes cover the rest of the need.
    const needed = Math.max(1, Math.ceil((need - 1) / IPV4_PREFIX_SIZE));
    const surplus = 1 + needed * IPV4_PREFIX_SIZE - need;
    const extra = Math.max(0, Math.floor((headroom - surplus) / IPV4_PREFIX_SIZE));
    const prefixCount = Math.min(needed + extra, most, v.prefixes ?? most);
    actions.push({ kind: "create", vSwitchId: v.vSwitchId, ipCount: 1, prefixCount });
    if (v.prefixes !== undefined) v.prefixes -= prefixCount;
    const brought = 1 + prefixCount * IPV4_PREFIX_SIZE;
    v.available -= 1;
    headroom -= Math.max(0, brought - need);
    need -= brought;
    enis++;
  }
  return actions;
}
