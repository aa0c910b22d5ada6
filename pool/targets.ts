// The numbers the pool keeps to: the instance type's limits and the
// operator's targets (the daemon's configuration, or a test's).

import type { PoolMode } from "./planner.js";

export type { PoolMode } from "./planner.js";

export type IpStack = "ipv4" | "dual";

/** From the instance type. */
export interface PoolLimits {
  /** eniQuantity − 1: the primary ENI is the node's own. */
  maxSecondaryEnis: number;
  /** eniPrivateIpAddressQuantity: IPs per ENI including its primary IP (an IPv4 prefix counts as one). */
  ipsPerEni: number;
  /** The instance type's vCPUs (CpuCoreCount), which cap its pods; unknown: 0. */
  cpuCount?: number;
  /** Dual stack: EniIpv6AddressQuantity, the IPv6 addresses an ENI may carry. */
  ipv6PerEni?: number;
}

export interface PoolTargets {
  /**
   * What the pool asks the cloud for: single secondary IPs, or IPv4 prefixes
   * (/28s) whose 16 addresses it serves. minIdle and maxIdle count addresses either way.
   */
  mode: PoolMode;
  /**
   * ipv4, or dual: every pod also gets an IPv6 address of the same ENI
   * (the pool pairs one with each IPv4 it serves; ip mode only).
   */
  ipStack?: IpStack;
  minIdle: number;
  maxIdle: number;
  cooldownMs: number;
  maxIpsPerCall: number;
  idleReclaimMs: number;
  allocateTimeoutMs: number;
  /** How long a StatefulSet pod's IP waits for the pod to return under the same name. */
  statefulHoldMs: number;
}
