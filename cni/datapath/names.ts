// Names and addresses the datapath derives, so the same attachment always
// gets the same host interface and MAC.

import { createHash } from "node:crypto";

/** The pod's gateway: a link-local address the host veth answers for. */
export const POD_GATEWAY = "169.254.1.1";
export const RULE_TO_POD = 512;
export const RULE_FROM_POD = 2048;
export const ENI_TABLE_BASE = 1000;
export const HOST_VETH_PREFIX = "eni";

const digest = (s: string): string => createHash("sha256").update(s).digest("hex");

/** `eni` + 11 hex chars of the attachment's hash: 14 characters, under IFNAMSIZ. */
export function hostVethName(containerId: string, ifname: string): string {
  return `${HOST_VETH_PREFIX}${digest(`${containerId}/${ifname}`).slice(0, 11)}`;
}

/** A locally administered unicast MAC from the attachment and a role. */
export function derivedMac(containerId: string, ifname: string, role: "host" | "pod"): string {
  const h = digest(`${role}:${containerId}/${ifname}`);
  const bytes = [0x02, ...[0, 1, 2, 3, 4].map((i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16))];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

export const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function check(value: string, re: RegExp, what: string): string {
  if (!re.test(value)) throw new Error(`invalid ${what}: ${JSON.stringify(value)}`);
  return value;
}
