// What the daemon asks the netlink helper, and what it answers: one JSON line
// each way. Checked on both sides: the helper hands these values to the kernel.

import { isIfname, isIpv4, isIpv6, isMac, NETNS_PATH } from "../../lib/net.js";

/** Wire the pod's side of a veth pair, as pod.ts's `ip -batch` lines would. */
export interface PodSideRequest {
  id: number;
  /** The pod's namespace path. */
  netns: string;
  /** The node's namespace path; "" is the helper's own. */
  nodeNetns: string;
  ifname: string;
  podMac: string;
  hostIfname: string;
  hostMac: string;
  mtu: number;
  ip: string;
  gateway: string;
  /** Dual stack: the pod's IPv6 address (a /128) and its link-local gateway. */
  ip6?: string;
  gateway6?: string;
}

export type HelperReply = { id: number; ok: true } | { id: number; ok: false; errno: number; error: string };

export function validRequest(v: unknown): PodSideRequest {
  const r = v as Partial<Record<keyof PodSideRequest, unknown>>;
  const str = (k: keyof PodSideRequest, ok: (s: string) => boolean): void => {
    if (typeof r[k] !== "string" || !ok(r[k] as string))
      throw new Error(`invalid ${k}: ${JSON.stringify(r[k])}`);
  };
  if (typeof v !== "object" || v === null) throw new Error("request is not an object");
  if (!Number.isSafeInteger(r.id)) throw new Error("invalid id");
  str("netns", (s) => NETNS_PATH.test(s));
  str("nodeNetns", (s) => s === "" || NETNS_PATH.test(s));
  str("ifname", isIfname);
  str("hostIfname", isIfname);
  str("podMac", isMac);
  str("hostMac", isMac);
  str("ip", isIpv4);
  str("gateway", isIpv4);
  if (r.ip6 !== undefined || r.gateway6 !== undefined) {
    str("ip6", isIpv6);
    str("gateway6", isIpv6);
  }
  if (!Number.isInteger(r.mtu) || (r.mtu as number) < 68 || (r.mtu as number) > 65535)
    throw new Error(`invalid mtu: ${JSON.stringify(r.mtu)}`);
  return r as PodSideRequest;
}
