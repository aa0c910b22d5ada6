// The numbers the pool keeps to: the instance type's limits and the
// operator's targets (the daemon's configuration, or a test's).

/** From the instance type. */
export interface PoolLimits {
  /** eniQuantity − 1: the primary ENI is the node's own. */
  maxSecondaryEnis: number;
  /** eniPrivateIpAddressQuantity: IPs per ENI including its primary IP. */
  ipsPerEni: number;
}

export interface PoolTargets {
  minIdle: number;
  maxIdle: number;
  cooldownMs: number;
  maxIpsPerCall: number;
  idleReclaimMs: number;
  allocateTimeoutMs: number;
  /** How long a StatefulSet pod's IP waits for the pod to return under the same name. */
  statefulHoldMs: number;
}
