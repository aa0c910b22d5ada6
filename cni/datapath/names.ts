// Names and addresses the datapath derives, so the same attachment always
// gets the same host interface and MAC.

import { digest } from "../veth.js";

export { hostVethName } from "../veth.js";

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
