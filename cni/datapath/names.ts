// Names and addresses the datapath derives, so the same attachment always
// gets the same host interface and MAC.

import { createHash } from "node:crypto";
import { HOST_VETH_HASH_DIGITS, HOST_VETH_PREFIX } from "../facts.js";

const digest = (s: string): string => createHash("sha256").update(s).digest("hex");

/** The host veth: `eni` + 11 hex chars of the attachment's hash, 14 characters, under IFNAMSIZ. */
export function hostVethName(containerId: string, ifname: string): string {
  return `${HOST_VETH_PREFIX}${digest(`${containerId}/${ifname}`).slice(0, HOST_VETH_HASH_DIGITS)}`;
}

/** A locally administered unicast MAC from the attachment and a role. */
export function derivedMac(containerId: string, ifname: string, role: "host" | "pod"): string {
  const h = digest(`${role}:${containerId}/${ifname}`);
  const bytes = [0x02, ...[0, 1, 2, 3, 4].map((i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16))];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The value, if it matches; else an error naming what it is. */
export function check(value: string, valid: (s: string) => boolean, what: string): string {
  if (!valid(value)) throw new Error(`invalid ${what}: ${JSON.stringify(value)}`);
  return value;
}
