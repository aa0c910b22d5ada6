// What the pool shows of itself, read from the datastore: its summary (for
// the API, the metrics and the dashboard), its allocations and its IPs.

import { type Allocation, toAllocation } from "./allocation.js";
import { podCapacity } from "./capacity.js";
import type { DatastoreView } from "./datastore/datastore.js";
import { type PlanInput, summarize } from "./planner.js";
import type { IpStack, PoolLimits, PoolMode, PoolTargets } from "./targets.js";

export interface PoolSummary {
  enis: {
    eniId: string;
    phase: string;
    vSwitchId: string;
    mac: string;
    gateway: string;
    /** The vSwitch's IPv6 gateway; none without IPv6. */
    gateway6?: string;
    /** Addresses the pool holds on the ENI: single IPs and each prefix's 16. */
    ips: number;
    assigned: number;
    /** The ENI's IPv4 prefixes. */
    prefixes: string[];
    /** Its IPv6 addresses paired with IPv4s (dual stack). */
    ipv6s: number;
  }[];
  idle: number;
  assigned: number;
  cooling: number;
  releasing: number;
  pending: number;
  waiting: number;
  intents: number;
  limits: PoolLimits;
  /** The pods the node can hold as the mode gets their IPs (capacity.ts). */
  capacity: number;
  targets: { mode: PoolMode; ipStack: IpStack; minIdle: number; maxIdle: number };
  blockedVSwitches: Record<string, number>;
  createBackoffUntil: number;
}

/** The summary of the pool that `input` (the planner's view of it now) shows. */
export function poolSummary(
  ds: DatastoreView,
  input: PlanInput,
  limits: PoolLimits,
  targets: PoolTargets,
): PoolSummary {
  const ips = ds.ips();
  const count = (phase: string): number => ips.filter((r) => r.phase === phase).length;
  const s = summarize(input);
  return {
    enis: ds.enis().map((e) => ({
      eniId: e.eniId,
      phase: e.phase,
      vSwitchId: e.vSwitchId,
      mac: e.mac,
      gateway: e.gateway,
      ...(e.gateway6 ? { gateway6: e.gateway6 } : {}),
      ips: ips.filter((r) => r.eniId === e.eniId).length,
      assigned: ips.filter((r) => r.eniId === e.eniId && r.phase === "assigned").length,
      prefixes: [
        ...new Set(ips.flatMap((r) => (r.eniId === e.eniId && r.prefix !== undefined ? [r.prefix] : []))),
      ].sort(),
      ipv6s: ips.filter((r) => r.eniId === e.eniId && r.ipv6 !== undefined).length,
    })),
    idle: s.idle,
    assigned: count("assigned"),
    cooling: count("cooling"),
    releasing: count("releasing"),
    pending: s.pending,
    waiting: input.waiting,
    intents: ds.intents().length,
    limits,
    capacity: podCapacity(limits, targets.mode),
    targets: {
      mode: targets.mode,
      ipStack: targets.ipStack ?? "ipv4",
      minIdle: targets.minIdle,
      maxIdle: targets.maxIdle,
    },
    blockedVSwitches: ds.blockedVSwitches(),
    createBackoffUntil: ds.createBackoffUntil(),
  };
}

export const allocationsOf = (ds: DatastoreView): Allocation[] =>
  ds
    .ips()
    .map((r) => toAllocation(r, ds.eni(r.eniId)))
    .filter((a): a is Allocation => a !== null);

/** Every address with its ENI and phase, and the prefix it belongs to (none for a single IP). */
export const ipsOf = (ds: DatastoreView): PoolIp[] =>
  ds.ips().map((r) => ({
    ip: r.ip,
    eniId: r.eniId,
    phase: r.phase,
    ...(r.prefix === undefined ? {} : { prefix: r.prefix }),
    ...(r.ipv6 === undefined ? {} : { ipv6: r.ipv6 }),
  }));

export interface PoolIp {
  ip: string;
  eniId: string;
  phase: string;
  prefix?: string;
  /** Dual stack: the IPv6 address paired with it. */
  ipv6?: string;
}
