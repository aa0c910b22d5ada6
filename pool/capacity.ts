// How many pods a node can hold: the pod IPs its ENIs can carry as the
// pool's mode gets them, capped as the AWS VPC CNI caps max-pods. Pure; the
// Node's max-pods annotation, the metrics and the dashboard state it from here.

import { IPV4_PREFIX_SIZE } from "../lib/net.js";
import type { PoolLimits, PoolMode } from "./targets.js";

/** The AWS VPC CNI's max-pods ceilings: 110 pods, or 250 on an instance type of more than 30 vCPUs. */
export const MAX_PODS_CEILING = { pods: 110, manyCpusPods: 250, manyCpus: 30 } as const;

/**
 * Secondary ENIs × IPs per ENI (ip mode, uncapped: the ENIs' quota is the
 * limit, as in the AWS VPC CNI without prefix delegation), or secondary
 * ENIs × (the primary IP and a /28 of 16 in each other slot) (prefix mode),
 * then at most the ceiling for the instance type's vCPUs (unknown: the lower
 * one), as the AWS VPC CNI caps prefix delegation's max-pods.
 */
export function podCapacity(limits: PoolLimits, mode: PoolMode): number {
  if (mode === "ip") return limits.maxSecondaryEnis * limits.ipsPerEni;
  const perEni = 1 + Math.max(0, limits.ipsPerEni - 1) * IPV4_PREFIX_SIZE;
  const c = MAX_PODS_CEILING;
  const ceiling = (limits.cpuCount ?? 0) > c.manyCpus ? c.manyCpusPods : c.pods;
  return Math.min(limits.maxSecondaryEnis * perEni, ceiling);
}
