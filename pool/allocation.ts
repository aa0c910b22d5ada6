// An allocation as the pool answers it: an IP of an ENI for one attachment
// (container and interface) of a pod, built from the datastore's records.

import type { EniRecord, IpRecord } from "./datastore/datastore.js";
import type { Owner, PodRef } from "./store.js";

export interface Allocation {
  containerId: string;
  ifname: string;
  pod: PodRef;
  /** The CNI network whose ADD made it, and the pod's namespace path; "" when unknown (store.ts, Owner). */
  network: string;
  netns: string;
  ip: string;
  eniId: string;
  mac: string;
  vSwitchId: string;
  gateway: string;
  cidr: string;
  /** Dual stack: the pod's IPv6 address, of the same ENI, and the ENI's IPv6 gateway. */
  ipv6?: string;
  gateway6?: string;
  assignedAt: number;
}

/** What an allocation is for: the attachment, its pod, and for a CNI ADD its network and namespace path. */
export interface AllocateRequest {
  containerId: string;
  ifname: string;
  pod: PodRef;
  network?: string;
  netns?: string;
}

/** ok: served from the warm pool; waited: the pool was empty and a refill served it; try_again: it was not. */
export type AllocateResult = "ok" | "waited" | "try_again";

/** The pool is empty and the refill did not land in time: the caller should retry. */
export class TryAgainError extends Error {
  readonly code = "TryAgainLater";
  constructor(message: string) {
    super(message);
    this.name = "TryAgainError";
  }
}

/** An attachment's key: "containerId/ifname". */
export const keyOf = (containerId: string, ifname: string): string => `${containerId}/${ifname}`;

export const ownerOf = (req: AllocateRequest): Owner => ({
  containerId: req.containerId,
  ifname: req.ifname,
  pod: req.pod,
  network: req.network ?? "",
  netns: req.netns ?? "",
});

/** The allocation an IP record stands for; null when no pod owns the IP. */
export function toAllocation(ip: IpRecord, eni: EniRecord | undefined): Allocation | null {
  if (!ip.owner) return null;
  return {
    containerId: ip.owner.containerId,
    ifname: ip.owner.ifname,
    pod: { ...ip.owner.pod },
    network: ip.owner.network,
    netns: ip.owner.netns,
    ip: ip.ip,
    eniId: ip.eniId,
    mac: eni?.mac ?? "",
    vSwitchId: eni?.vSwitchId ?? "",
    gateway: eni?.gateway ?? "",
    cidr: eni?.cidr ?? "",
    ...(ip.owner.ipv6 ? { ipv6: ip.owner.ipv6, gateway6: eni?.gateway6 ?? "" } : {}),
    assignedAt: ip.assignedAt ?? 0,
  };
}
