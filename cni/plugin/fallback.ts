// DEL without a daemon: remove the pod's host side in the node network
// namespace, best effort, and only what eniway made for this attachment: the
// host veth of the name the datapath derives from the attachment (never an
// interface prevResult merely names: another plugin's, the bandwidth
// plugin's ifb, a node device), and for the pod's IPs from prevResult the
// rules at eniway's priorities and the /32 route through that veth. The
// daemon releases the IP when it is back (a GC, or the pod's namespace gone).
//
// Programs run with an argument vector, never through a shell, and every
// identifier is validated before it reaches one.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { isObject } from "../../lib/json.js";
import { isIfname, isIpv4, netnsNameOf } from "../../lib/net.js";
import { RULE_FROM_POD, RULE_TO_POD } from "../facts.js";
import { hostVethName } from "../veth.js";

const MAX_RULE_REPEATS = 32;

export interface CleanupTargets {
  /** The host veth eniway made for this attachment. */
  hostIfname: string;
  /** The pod's IPv4 addresses. */
  ips: string[];
}

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

/**
 * What to clean for an attachment: its host veth by name, and the IPv4
 * addresses prevResult gives the pod's interface (CNI_IFNAME, with a
 * sandbox), or every IPv4 address when none names an interface. hostCleanup
 * adds the addresses the node routes through that veth.
 */
export function cleanupTargets(containerId: string, ifname: string, prevResult: unknown): CleanupTargets {
  const hostIfname = hostVethName(containerId, ifname);
  if (!isObject(prevResult)) return { hostIfname, ips: [] };
  const ifaces = Array.isArray(prevResult.interfaces) ? prevResult.interfaces : [];
  const ipList = Array.isArray(prevResult.ips) ? prevResult.ips.filter(isObject) : [];
  const pod = ifaces.findIndex(
    (i) => isObject(i) && i.name === ifname && typeof i.sandbox === "string" && i.sandbox !== "",
  );
  const named = ipList.some((ip) => typeof ip.interface === "number");
  const addrs = ipList
    .filter((ip) => (named ? ip.interface === pod && pod >= 0 : true))
    .map((ip) => ip.address)
    .filter((a): a is string => typeof a === "string")
    .map((a) => a.split("/")[0] ?? "")
    .filter(isIpv4);
  return { hostIfname, ips: [...new Set(addrs)] };
}

function findProgram(name: string): string {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    const p = `${dir}/${name}`;
    if (existsSync(p)) return p;
  }
  return name;
}

/**
 * How to run `ip` in the node namespace: as is (the plugin's own namespace),
 * `ip -n NAME` for /var/run/netns/NAME and /run/netns/NAME, else
 * `nsenter --net=PATH ip`.
 */
export function ipInvocation(nodeNetns: string): (args: string[]) => [string, string[]] {
  const ip = findProgram("ip");
  if (nodeNetns === "") return (args) => [ip, args];
  const name = netnsNameOf(nodeNetns);
  if (name) return (args) => [ip, ["-n", name, ...args]];
  const nsenter = findProgram("nsenter");
  return (args) => [nsenter, [`--net=${nodeNetns}`, ip, ...args]];
}

interface RunResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Removes the host side of the targets; never throws. */
export function hostCleanup(targets: CleanupTargets, nodeNetns: string, log: Log): void {
  const invoke = ipInvocation(nodeNetns);
  const run = (args: string[]): RunResult => {
    const [file, argv] = invoke(args);
    const r = spawnSync(file, argv, { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "pipe"] });
    const res = {
      ok: r.status === 0,
      stdout: r.stdout ?? "",
      stderr: (r.stderr ?? "").trim() || (r.error ? r.error.message : ""),
    };
    log("ran", { argv: [file, ...argv], ok: res.ok, stderr: res.stderr || undefined });
    return res;
  };
  const host = targets.hostIfname;
  if (!isIfname(host)) return;
  // The pod's address is also where the node routes through its veth: without prevResult too.
  const routed = run(["-o", "route", "show", "dev", host]);
  const viaHost = routed.ok
    ? routed.stdout
        .split("\n")
        .map((line) => /^(\S+?)(?:\/32)?\s/.exec(line)?.[1] ?? "")
        .filter(isIpv4)
    : [];

  for (const ip of new Set([...targets.ips, ...viaHost])) {
    // Whose is the /32 route now? If it leads to another interface, the
    // address belongs to someone else already: leave its route and rules alone.
    const shown = run(["-o", "route", "show", "exact", `${ip}/32`]);
    if (!shown.ok) {
      log("cannot read the node's routes; skipping", { ip });
      continue;
    }
    const devs = shown.stdout
      .split("\n")
      .map((line) => /\bdev (\S+)/.exec(line)?.[1])
      .filter((d): d is string => d !== undefined);
    if (devs.some((d) => d !== host)) {
      log("route leads elsewhere; leaving the address alone", { ip, devs });
      continue;
    }
    for (const [prio, dir] of [
      [RULE_TO_POD, "to"],
      [RULE_FROM_POD, "from"],
    ] as const) {
      for (let i = 0; i < MAX_RULE_REPEATS; i++) {
        if (!run(["rule", "del", "priority", String(prio), dir, `${ip}/32`]).ok) break;
      }
    }
    if (devs.length > 0) run(["route", "del", `${ip}/32`, "dev", host]);
  }
  run(["link", "del", host]);
}
