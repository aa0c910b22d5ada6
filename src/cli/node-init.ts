// `eniway node-init`: the chart's privileged init container (src/daemon/conflist.ts).

import { BUILT } from "../../lib/process.js";
import { nodeInit } from "../daemon/conflist.js";

/** The node's sysctls, and the plugin into the CNI bin folder; says what it did. */
export async function runNodeInit(f: { "cni-bin-dir": string; ipv6?: boolean }): Promise<number> {
  process.stdout.write(`${await nodeInit(BUILT.plugin, f["cni-bin-dir"], f.ipv6 === true)}\n`);
  return 0;
}
