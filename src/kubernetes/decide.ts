// The Kubernetes side's decisions, as pure functions: which allocations no
// pod holds any more, what the ENIPoolReady condition says, and the node's
// pod IP capacity.

import { podCapacity } from "../../pool/capacity.js";
import type { PoolLimits, PoolMode } from "../../pool/pool.js";
import type { PodInfo } from "./api.js";

export interface HeldIp {
  containerId: string;
  ifname: string;
  ip: string;
  pod: { namespace: string; name: string; uid: string };
  assignedAt: number;
}

/** An allocation's pod is this cached pod (the same UID when both know it). */
export function holds(a: HeldIp, pod: PodInfo | undefined): boolean {
  if (!pod) return false;
  return !a.pod.uid || !pod.uid || a.pod.uid === pod.uid;
}

export const allocationKey = (a: { containerId: string; ifname: string }): string =>
  `${a.containerId}/${a.ifname}`;

/**
 * The first step of the release of IPs whose pod is gone. `missingSince`
 * (allocation key → when it was first seen without its pod) is the caller's
 * memory; this returns its next value and the allocations to verify with a
 * live GET: missing from the cache for the whole grace, and assigned longer
 * ago than the grace. Allocations made outside Kubernetes (no pod name) are
 * never candidates, and nothing is while the cache has not synced.
 */
export function goneCandidates(input: {
  allocations: HeldIp[];
  cached(namespace: string, name: string): PodInfo | undefined;
  synced: boolean;
  now: number;
  graceMs: number;
  missingSince: ReadonlyMap<string, number>;
}): { check: HeldIp[]; missingSince: Map<string, number> } {
  const next = new Map<string, number>();
  const check: HeldIp[] = [];
  if (!input.synced) return { check, missingSince: new Map(input.missingSince) };
  for (const a of input.allocations) {
    if (!a.pod.name || !a.pod.namespace) continue;
    if (holds(a, input.cached(a.pod.namespace, a.pod.name))) continue;
    const key = allocationKey(a);
    const since = input.missingSince.get(key) ?? input.now;
    next.set(key, since);
    if (input.now - since >= input.graceMs && input.now - a.assignedAt >= input.graceMs) check.push(a);
  }
  return { check, missingSince: next };
}

/** The verdict of the live GET: release only on NotFound or another UID. */
export function goneOnLiveGet(a: HeldIp, live: PodInfo | null): boolean {
  return live === null || (a.pod.uid !== "" && live.uid !== a.pod.uid);
}

export type PoolCondition = { status: "True" | "False"; reason: string; message: string };

export interface PoolHealth {
  now: number;
  /** The vSwitches the pool may use, and which are blocked until when. */
  vSwitchIds: string[];
  blockedVSwitches: Record<string, number>;
  createBackoffUntil: number;
  enis: number;
  maxEnis: number;
  /** The last cloud failure the executor reported, if any. */
  lastFailure: { reason: string; message: string; at: number } | null;
}

/** ENIPoolReady: False with a reason while the pool cannot grow. */
export function poolCondition(h: PoolHealth): PoolCondition {
  const blocked = h.vSwitchIds.filter((v) => (h.blockedVSwitches[v] ?? 0) > h.now);
  if (h.vSwitchIds.length > 0 && blocked.length === h.vSwitchIds.length)
    return {
      status: "False",
      reason: "VSwitchIPExhausted",
      message: `every vSwitch of the pool is out of addresses: ${blocked.join(", ")}`,
    };
  const f = h.lastFailure;
  if (h.createBackoffUntil > h.now && h.enis < h.maxEnis && f) {
    const reason = f.reason === "ENIQuotaExceeded" ? "ENIQuotaExceeded" : "CloudAPIErrors";
    return { status: "False", reason, message: `${f.reason}: ${f.message}`.slice(0, 500) };
  }
  return {
    status: "True",
    reason: "PoolReady",
    message: `${h.enis}/${h.maxEnis} secondary ENIs; the pool can grow or is at capacity`,
  };
}

/** The node's pod capacity (pool/capacity.ts): what its max-pods annotation says. */
export function maxPods(limits: PoolLimits, mode: PoolMode = "ip"): number {
  return podCapacity(limits, mode);
}
