// The host veth's name, derived from the attachment: the daemon's datapath
// names the veth it makes with it, and the plugin's DEL fallback deletes
// only the veth of that name. Built-ins only: the plugin compiles it.

import { createHash } from "node:crypto";
import { HOST_VETH_HASH_DIGITS, HOST_VETH_PREFIX } from "./facts.js";

export const digest = (s: string): string => createHash("sha256").update(s).digest("hex");

/** `eni` + 11 hex chars of the attachment's hash: 14 characters, under IFNAMSIZ. */
export function hostVethName(containerId: string, ifname: string): string {
  return `${HOST_VETH_PREFIX}${digest(`${containerId}/${ifname}`).slice(0, HOST_VETH_HASH_DIGITS)}`;
}
