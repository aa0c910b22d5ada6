// DEL without a daemon: remove the pod's host side from what the runtime's
// prevResult says (policy rules, the /32 route, the host veth), in the node
// network namespace, best effort. The daemon reconciles the rest (the IP's
// release) when it is back.
//
// Programs run with an argument vector, never through a shell, and every
// identifier is validated before it reaches one.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { isObject } from "../../lib/json.js";
import { isIfname, isIpv4, netnsNameOf } from "../../lib/net.js";
import { RULE_FROM_POD, RULE_TO_POD } from "../facts.js";

const MAX_RULE_REPEATS = 32;

export interface CleanupTargets {
  hostIfnames: string[];
  ips: string[];
}

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

/**
 * Our host veth and pod IPs in a prevResult. Our ADD result lists the host
 * veth right before the pod interface (CNI_IFNAME, with a sandbox), and the
 * pod's IPs point at the pod interface. If that pair is not found, every
 * host-side interface and every IP is taken. Invalid names and non-IPv4
 * addresses are dropped.
 */
export function cleanupTargets(prevResult: unknown, ifname: string): CleanupTargets {
  if (!isObject(prevResult)) return { hostIfnames: [], ips: [] };
  const ifaces = Array.isArray(prevResult.interfaces) ? prevResult.interfaces : [];
  const ipList = Array.isArray(prevResult.ips) ? prevResult.ips.filter(isObject) : [];
  const hasSandbox = (i: unknown): boolean =>
    isObject(i) && typeof i.sandbox === "string" && i.sandbox !== "";
  const podIndex = ifaces.findIndex((i) => isObject(i) && i.name === ifname && hasSandbox(i));

  let hosts: unknown[];
  let ips: unknown[];
  const before = ifaces[podIndex - 1];
  if (podIndex > 0 && !hasSandbox(before)) {
    hosts = [isObject(before) ? before.name : undefined];
    ips = ipList.filter((ip) => ip.interface === podIndex).map((ip) => ip.address);
  } else {
    hosts = ifaces
      .filter((i) => isObject(i) && !hasSandbox(i))
      .map((i) => (i as Record<string, unknown>).name);
    ips = ipList.map((ip) => ip.address);
  }
  const hostIfnames = hosts.filter((n): n is string => typeof n === "string" && isIfname(n));
  const addrs = ips
    .filter((a): a is string => typeof a === "string")
    .map((a) => a.split("/")[0] ?? "")
    .filter(isIpv4);
  return { hostIfnames: [...new Set(hostIfnames)], ips: [...new Set(addrs)] };
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

  for (const ip of targets.ips) {
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
    if (devs.some((d) => !targets.hostIfnames.includes(d))) {
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
    for (const dev of devs) run(["route", "del", `${ip}/32`, "dev", dev]);
  }
  for (const dev of targets.hostIfnames) run(["link", "del", dev]);
}
