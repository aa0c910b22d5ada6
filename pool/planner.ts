// The pool's decisions, as a pure function of its state, the limits, the
// targets and the time. It returns the cloud actions to take now; the
// executor runs them. Nothing here talks to the cloud, the disk or a clock.

import { byText } from "../lib/order.js";

export type IpPhase = "idle" | "assigned" | "cooling" | "releasing";
export type EniPhase = "creating" | "attaching" | "ready" | "deleting";

export interface IpView {
  ip: string;
  phase: IpPhase;
  /** When the IP last became idle (ms). */
  idleSince: number;
}

export interface EniView {
  eniId: string;
  vSwitchId: string;
  phase: EniPhase;
  primaryIp: string;
  /** The IPs the pool knows on this ENI, the primary included. */
  ips: IpView[];
  /** IPs being added by an Assign in flight (or by the Create of a creating ENI). */
  pendingIps: number;
  /** A cloud call on this ENI is in flight; one at a time per ENI. */
  busy: boolean;
}

export interface PlanInput {
  now: number;
  enis: EniView[];
  limits: {
    /** eniQuantity − 1: the primary ENI is the node's own. */
    maxSecondaryEnis: number;
    /** eniPrivateIpAddressQuantity: IPs per ENI including its primary IP. */
    ipsPerEni: number;
  };
  targets: {
    minIdle: number;
    maxIdle: number;
    maxIpsPerCall: number;
    idleReclaimMs: number;
  };
  /** Candidate vSwitches with their free addresses (DescribeVSwitches). */
  vSwitches: { vSwitchId: string; available: number }[];
  /** vSwitch id → time until which it is not used (after IpNotEnough). */
  blockedVSwitches: Record<string, number>;
  /** No CreateNetworkInterface before this time (after EniPerInstanceLimitExceeded). */
  createBackoffUntil: number;
  /** Allocations waiting for an IP right now. */
  waiting: number;
}

export type PlanAction =
  | { kind: "assign"; eniId: string; count: number }
  | { kind: "create"; vSwitchId: string; ipCount: number }
  | { kind: "unassign"; eniId: string; ips: string[] }
  | { kind: "delete"; eniId: string };

export interface PlanSummary {
  idle: number;
  pending: number;
  wanted: number;
  deficit: number;
}

export function summarize(input: PlanInput): PlanSummary {
  let idle = 0;
  let pending = 0;
  for (const e of input.enis) {
    pending += e.pendingIps;
    if (e.phase === "ready") idle += e.ips.filter((i) => i.phase === "idle").length;
    else if (e.phase !== "deleting") pending += e.ips.length;
  }
  const wanted = input.targets.minIdle + input.waiting;
  return { idle, pending, wanted, deficit: wanted - idle - pending };
}

const isBlocked = (input: PlanInput, vSwitchId: string): boolean =>
  (input.blockedVSwitches[vSwitchId] ?? 0) > input.now;

export function plan(input: PlanInput): PlanAction[] {
  const s = summarize(input);
  if (s.deficit > 0) return grow(input, s.deficit);
  return shrink(input, s);
}

function grow(input: PlanInput, deficit: number): PlanAction[] {
  const { ipsPerEni } = input.limits;
  const actions: PlanAction[] = [];
  let need = deficit;
  // Fill the ready ENI with the most free slots first, one call per ENI.
  const ready = input.enis
    .filter((e) => e.phase === "ready" && !e.busy && !isBlocked(input, e.vSwitchId))
    .map((e) => ({ e, free: ipsPerEni - e.ips.length - e.pendingIps }))
    .filter((x) => x.free > 0)
    .sort((a, b) => b.free - a.free || byText(a.e.eniId, b.e.eniId));
  for (const { e, free } of ready) {
    if (need <= 0) break;
    const count = Math.min(need, free, input.targets.maxIpsPerCall);
    actions.push({ kind: "assign", eniId: e.eniId, count });
    need -= count;
  }
  if (need <= 0 || input.now < input.createBackoffUntil) return actions;
  // Then new ENIs, each created with its first IPs, in the vSwitch with the most free addresses.
  // An ENI costs a Create and a slow Attach, so a new one brings up to maxIdle − minIdle IPs of
  // headroom besides what is needed now; the pool still ends at or below maxIdle idle IPs.
  let headroom = Math.max(0, input.targets.maxIdle - input.targets.minIdle);
  const vsws = input.vSwitches
    .filter((v) => !isBlocked(input, v.vSwitchId) && v.available > 0)
    .map((v) => ({ ...v }));
  let enis = input.enis.length;
  while (need > 0 && enis < input.limits.maxSecondaryEnis) {
    vsws.sort((a, b) => b.available - a.available);
    const v = vsws[0];
    if (!v || v.available <= 0) break;
    const ipCount = Math.min(need + headroom, ipsPerEni, v.available);
    actions.push({ kind: "create", vSwitchId: v.vSwitchId, ipCount });
    v.available -= ipCount;
    headroom -= Math.max(0, ipCount - need);
    need -= ipCount;
    enis++;
  }
  return actions;
}

function shrink(input: PlanInput, s: PlanSummary): PlanAction[] {
  const { now } = input;
  const { maxIdle, idleReclaimMs, maxIpsPerCall } = input.targets;
  // Only IPs idle for longer than the reclaim delay count; nothing shrinks while IPs are in flight.
  if (s.pending > 0 || input.waiting > 0) return [];
  let excess = s.idle - Math.max(maxIdle, s.wanted);
  if (excess <= 0) return [];
  const aged = (i: IpView): boolean => i.phase === "idle" && now - i.idleSince >= idleReclaimMs;
  const actions: PlanAction[] = [];
  const candidates = input.enis.filter((e) => e.phase === "ready" && !e.busy);
  // Whole ENIs first, the smallest that fit: an ENI is deleted only when all its IPs are free.
  const empty = candidates
    .filter((e) => e.ips.every(aged))
    .sort((a, b) => a.ips.length - b.ips.length || byText(a.eniId, b.eniId));
  const deleted = new Set<string>();
  for (const e of empty) {
    if (e.ips.length > excess) continue;
    actions.push({ kind: "delete", eniId: e.eniId });
    deleted.add(e.eniId);
    excess -= e.ips.length;
  }
  // Then secondary IPs, from the ENIs with the fewest pods first so they drain.
  const assigned = (e: EniView): number => e.ips.filter((i) => i.phase !== "idle").length;
  const rest = candidates
    .filter((e) => !deleted.has(e.eniId))
    .sort((a, b) => assigned(a) - assigned(b) || byText(a.eniId, b.eniId));
  for (const e of rest) {
    if (excess <= 0) break;
    const ips = e.ips
      .filter((i) => aged(i) && i.ip !== e.primaryIp)
      .sort((a, b) => a.idleSince - b.idleSince)
      .slice(0, Math.min(excess, maxIpsPerCall))
      .map((i) => i.ip);
    if (ips.length === 0) continue;
    actions.push({ kind: "unassign", eniId: e.eniId, ips });
    excess -= ips.length;
  }
  return actions;
}
