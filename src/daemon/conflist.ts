// The conflist the daemon writes into `cni.confDir` once it is ready, as the
// AWS VPC CNI and Terway do: the kubelet marks a node Ready only when a CNI
// config exists, so writing it any earlier sends pods to a node whose daemon
// cannot serve them yet. eniway is chained with the reference plugins
// portmap (hostPort) and bandwidth (the pod's bandwidth annotations).
// The plugin binary itself is installed by the chart's init container
// (`eniway node-init`), also atomically and durably: a runtime never runs half a copy.

import { join } from "node:path";
import { nodeSysctls } from "../../cni/datapath/datapath.js";
import { copyDurably, writeDurably } from "../../lib/durable.js";
import { writeProcSys } from "../../lib/ip.js";

export const CONFLIST_NAME = "10-eniway.conflist";

export function conflist(opts: { socket: string }): Record<string, unknown> {
  return {
    // 1.0.0: libcni before 1.2 (containerd 1.6/1.7) rejects a 1.1.0 result.
    cniVersion: "1.0.0",
    cniVersions: ["1.0.0", "1.1.0"],
    name: "eniway",
    plugins: [
      { type: "eniway", socket: opts.socket },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
      { type: "bandwidth", capabilities: { bandwidth: true } },
    ],
  };
}

/**
 * Write DIR/10-eniway.conflist atomically and durably, as the pool's store
 * is written: a runtime never reads half of it, and a node that loses power
 * right after never comes back with an empty one. Returns its path.
 */
export async function writeConflist(dir: string, content: Record<string, unknown>): Promise<string> {
  const file = join(dir, CONFLIST_NAME);
  await writeDurably(file, `${JSON.stringify(content, null, 2)}\n`, 0o644);
  return file;
}

/**
 * The chart's privileged init container: the node's sysctls (a container's
 * /proc/sys is read-only to the daemon), then the plugin binary copied to
 * DIR/eniway through a temporary file renamed over it (lib/durable.ts). Says what it did.
 */
export async function nodeInit(from: string, dir: string, ipv6 = false): Promise<string> {
  const sysctls = nodeSysctls(ipv6);
  await writeProcSys("", sysctls);
  const file = await installPlugin(from, dir);
  return `installed ${file}; set ${Object.entries(sysctls)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`;
}

async function installPlugin(from: string, dir: string): Promise<string> {
  const file = join(dir, "eniway");
  await copyDurably(from, file, 0o755);
  return file;
}
