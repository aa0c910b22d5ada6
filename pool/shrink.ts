// The planner's other half: what to give back when the pool holds more idle
// addresses than maxIdle. Pure, like the planner. Only addresses idle for
// longer than the reclaim delay count, nothing shrinks while IPs are in
// flight or allocations wait, and the pool never goes below minIdle.

import { MAX_IPV4_PREFIXES_PER_CALL } from "../cloud/validate.js";
import { byText } from "../lib/order.js";
import type { EniView, IpView, PlanAction, PlanInput, PlanSummary } from "./planner.js";

/** IPs, or prefixes, one call may carry. */
export const perCallOf = (input: PlanInput): number =>
  input.mode === "prefix"
    ? Math.min(input.targets.maxIpsPerCall, MAX_IPV4_PREFIXES_PER_CALL)
    : input.targets.maxIpsPerCall;

/** What may still go: `excess` over max(maxIdle, wanted), `room` over wanted (the floor). */
interface Budget {
  excess: number;
  room: number;
}

const spend = (b: Budget, n: number): void => {
  b.excess -= n;
  b.room -= n;
};

/** The ENI's prefixes whose every address is idle and aged, idle longest first. */
function agedPrefixes(e: EniView, aged: (i: IpView) => boolean): string[] {
  const groups = new Map<string, IpView[]>();
  for (const i of e.ips)
    if (i.prefix !== undefined) groups.set(i.prefix, [...(groups.get(i.prefix) ?? []), i]);
  const lastIdle = (ips: IpView[]): number => Math.max(...ips.map((i) => i.idleSince));
  return [...groups]
    .filter(([, ips]) => ips.every(aged))
    .sort(([a, x], [b, y]) => lastIdle(x) - lastIdle(y) || byText(a, b))
    .map(([p]) => p);
}

/**
 * Single IPs (never the primary), as many as the excess allows, idle longest
 * first. In prefix mode they are what ip mode left.
 */
function singlesToGo(
  e: EniView,
  aged: (i: IpView) => boolean,
  b: Budget,
  perCall: number,
): PlanAction | null {
  if (b.excess <= 0) return null;
  const ips = e.ips
    .filter((i) => i.prefix === undefined && aged(i) && i.ip !== e.primaryIp)
    .sort((x, y) => x.idleSince - y.idleSince)
    .slice(0, Math.min(b.excess, perCall))
    .map((i) => i.ip);
  if (ips.length === 0) return null;
  spend(b, ips.length);
  return { kind: "unassign", eniId: e.eniId, ips };
}

/** Whole prefixes, while there is excess and the pool stays at or above the floor. */
function prefixesToGo(
  e: EniView,
  aged: (i: IpView) => boolean,
  b: Budget,
  perCall: number,
): PlanAction | null {
  const prefixes: string[] = [];
  for (const p of agedPrefixes(e, aged)) {
    const size = e.ips.filter((i) => i.prefix === p).length;
    if (b.excess <= 0 || size > b.room || prefixes.length >= perCall) break;
    prefixes.push(p);
    spend(b, size);
  }
  return prefixes.length > 0 ? { kind: "unassignPrefixes", eniId: e.eniId, prefixes } : null;
}

export function shrink(input: PlanInput, s: PlanSummary): PlanAction[] {
  const { now } = input;
  const { maxIdle, idleReclaimMs } = input.targets;
  const perCall = perCallOf(input);
  if (s.pending > 0 || input.waiting > 0) return [];
  const b: Budget = { excess: s.idle - Math.max(maxIdle, s.wanted), room: s.idle - s.wanted };
  if (b.excess <= 0) return [];
  const prefixMode = input.mode === "prefix";
  const aged = (i: IpView): boolean => i.phase === "idle" && now - i.idleSince >= idleReclaimMs;
  const actions: PlanAction[] = [];
  const candidates = input.enis.filter((e) => e.phase === "ready" && !e.busy);
  // Whole ENIs first, the smallest that fit: an ENI is deleted only when all its IPs are free.
  // In ip mode one fits within the excess; in prefix mode, whose units are large, above the floor.
  const empty = candidates
    .filter((e) => e.ips.every(aged))
    .sort((x, y) => x.ips.length - y.ips.length || byText(x.eniId, y.eniId));
  const done = new Set<string>();
  for (const e of empty) {
    if (b.excess <= 0 || e.ips.length > (prefixMode ? b.room : b.excess)) continue;
    actions.push({ kind: "delete", eniId: e.eniId });
    done.add(e.eniId);
    spend(b, e.ips.length);
  }
  // Then what the other mode left, then the mode's own unit; one call per ENI, from the ENIs
  // with the fewest pods first so they drain.
  const assigned = (e: EniView): number => e.ips.filter((i) => i.phase !== "idle").length;
  const rest = candidates
    .filter((e) => !done.has(e.eniId))
    .sort((x, y) => assigned(x) - assigned(y) || byText(x.eniId, y.eniId));
  const steps = prefixMode ? [singlesToGo, prefixesToGo] : [prefixesToGo, singlesToGo];
  for (const step of steps)
    for (const e of rest) {
      if (done.has(e.eniId)) continue;
      const a = step(e, aged, b, perCall);
      if (!a) continue;
      actions.push(a);
      done.add(e.eniId);
    }
  return actions;
}
