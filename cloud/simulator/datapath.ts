// The simulator's datapath mode: a real VPC made of network namespaces, strict
// enough that wrong policy routing on a node fails the way it fails on ECS.
//
//   node namespace (one per instance)          router namespace (world.datapath.vpcNetns)
//   eth0  MAC of the primary ENI  ── veth ──   r<hash(eni id)>  up, GW/32
//         primary IP/prefix, up,               /32 route + permanent neighbour
//         default via GW                        (IP → ENI MAC) for each of its IPs
//   ethN  MAC of an attached ENI  ── veth ──   r<hash(eni id)>  up, GW/32, /32 routes
//         DOWN, unconfigured: the eniway daemon finds it by MAC, as on ECS
//
// The router forwards between its devices and holds exactly one /32 route per
// assigned IP (primary IPs included), pointing at the device of the ENI that
// owns the IP. Three kernel settings in the router namespace make it behave
// like the VPC:
// - Policy rules are the VPC's source check: `iif DEV from IP lookup main` at
//   priority 100 for each IP assigned to the ENI behind DEV, and `iif DEV
//   blackhole` at 30000. A packet entering through an ENI with a source that
//   is not that ENI's is dropped; unassigned sources too. Traffic to the
//   router's own addresses (the gateway, ARP) is decided by the local table
//   first, so a node's ARP for the gateway is answered whatever its sender IP,
//   as the VPC does. (rp_filter is off: it would also judge ARP by its sender
//   IP, which on a secondary ENI without an address is eth0's.)
// - proxy_arp=1 (with proxy_delay 0 per device) answers a node's ARP for any
//   assigned address of the VPC with the router device's MAC, as the VPC
//   answers on an ECS instance whose eth0 has the vSwitch prefix; it obeys
//   the source check too (no answer to an ARP whose sender IP is on another
//   ENI). Nodes never need proxy ARP themselves.
// - Every router device carries the vSwitch gateway of its ENI as a /32, so
//   "via GW dev ethN" works on every ENI; arp_ignore=1 answers ARP only for
//   addresses on the receiving device (the gateway is on each of them). The
//   router never ARPs: every IP it routes has a permanent neighbour entry.
//
// Instance namespaces: instances[].netns, or `eniway-node-<suffix>` where the
// suffix is the instance id without a leading "i-" (i-sim-node-a →
// eniway-node-sim-node-a), truncated to the 64-character limit and made unique
// with "-2", "-3"… if it would clash. The names in use are written back to
// the simulator state (SimInstance.netns), so /admin/state shows them.
//
// Setup first removes stale namespaces of the same names (a crashed run), so
// it is idempotent; teardown deletes every veth in the router, then every
// namespace, so nothing survives even when a process still holds a node
// namespace open. `teardownDatapath(world)` does the same from names alone.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { type Logger, silentLogger } from "../../lib/log.js";
import type { Cidr } from "../../lib/net.js";
import {
  ifName,
  ipBatch,
  ipv4,
  line,
  listLinks,
  listNetns,
  macAddress,
  netnsName,
  prefixLength,
  setSysctls,
} from "./netlink.js";
import { type DatapathHooks, gatewayOf, type SimEni, type SimInstance, type SimState } from "./state.js";
import type { World } from "./world.js";

const NODE_PREFIX = "eniway-node-";
/** Router rule priorities of the source check: allowed sources, then the drop. */
const SOURCE_OK = "100";
const SOURCE_DROP = "30000";
const MAX_NETNS = 64;
/** The link group of every router-side device, so teardown deletes them all in one go. */
const ROUTER_GROUP = "25966";

export interface Datapath {
  readonly vpcNetns: string;
  /** The node namespace of each instance, by instance id. */
  readonly nodeNetns: ReadonlyMap<string, string>;
  readonly hooks: DatapathHooks;
  /** The router-side device of an attached ENI, if it is attached. */
  routerDevice(eniId: string): string | undefined;
  /** Removes every namespace and link it made; later hooks do nothing. Safe to call twice. */
  teardown(): Promise<void>;
}

interface Attachment {
  eniId: string;
  netns: string;
  /** Device in the router namespace. */
  dev: string;
  /** Device in the node namespace. */
  nodeIf: string;
  mac: string;
  ips: Set<string>;
}

/** The namespace of every instance: its `netns`, or a name derived from its id (see the header). */
export function nodeNetnsNames(world: World): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<string>(world.instances.map((i) => i.netns).filter((n) => n !== ""));
  if (world.datapath) taken.add(world.datapath.vpcNetns);
  for (const inst of world.instances) {
    if (inst.netns) {
      out.set(inst.instanceId, netnsName(inst.netns));
      continue;
    }
    const suffix = inst.instanceId.replace(/^i-/, "").replace(/[^A-Za-z0-9_.-]/g, "-") || "node";
    const base = `${NODE_PREFIX}${suffix}`.slice(0, MAX_NETNS);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base.slice(0, MAX_NETNS - String(n).length - 1)}-${n}`;
    taken.add(name);
    out.set(inst.instanceId, netnsName(name));
  }
  return out;
}

/** The router-side device of an ENI: "r" + 12 hex digits of SHA-256 of its id (13 characters). */
export function routerDeviceName(eniId: string, salt = 0): string {
  const h = createHash("sha256")
    .update(salt ? `${eniId}#${salt}` : eniId)
    .digest("hex");
  return ifName(`r${h.slice(0, 12)}`);
}

/** The ethN with the lowest N not in use. */
export function lowestFreeEth(names: Iterable<string>): string {
  const used = new Set<number>();
  for (const n of names) {
    const m = /^eth(\d+)$/.exec(n);
    if (m) used.add(Number(m[1]));
  }
  let i = 0;
  while (used.has(i)) i++;
  return `eth${i}`;
}

function routerSysctls(): string[] {
  const keys = [
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.proxy_arp", // the effective value is all OR device
    "net.ipv4.conf.all.arp_ignore", // the effective value is max(all, device)
  ];
  // IPv6 only adds router solicitations and DAD noise to a v4 VPC.
  if (existsSync("/proc/sys/net/ipv6"))
    keys.push("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6");
  return keys;
}

/** Deletes the veths of the router namespace, then the named namespaces (those that exist). */
async function removeAll(vpcNetns: string, nodes: Iterable<string>, log: Logger): Promise<void> {
  const existing = await listNetns();
  if (existing.has(vpcNetns)) {
    // Deleting one end of a veth deletes the other, even in a namespace some
    // process still holds open (whose name alone we could only unlink). One
    // group delete costs one RCU grace period instead of one per link.
    const r = await ipBatch(vpcNetns, [line("link", "del", "group", ROUTER_GROUP)], { force: true });
    if (!r.ok) log.debug("datapath: no router links to delete", { stderr: r.stderr.trim() });
  }
  const names = [vpcNetns, ...nodes].filter((n) => existing.has(n));
  const r = await ipBatch(
    null,
    names.map((n) => line("netns", "del", netnsName(n))),
    { force: true },
  );
  if (!r.ok) log.warn("datapath: could not delete every namespace", { stderr: r.stderr.trim() });
  if (names.length) log.debug("datapath: namespaces deleted", { netns: names });
}

/** Removes what a datapath for this world made, from names alone (e.g. after a crash). */
export async function teardownDatapath(world: World, log?: Logger): Promise<void> {
  if (!world.datapath) return;
  await removeAll(netnsName(world.datapath.vpcNetns), nodeNetnsNames(world).values(), log ?? silentLogger);
}

/**
 * Builds the VPC for the state's instances (each with its InUse ENIs) and
 * returns the hooks that keep it in step with attach, detach, assign and
 * unassign. Stale namespaces of the same names are removed first.
 */
export async function setupDatapath(world: World, state: SimState, log: Logger): Promise<Datapath> {
  if (!world.datapath) throw new Error("the world has no datapath");
  const t0 = performance.now();
  const vpcNetns = netnsName(world.datapath.vpcNetns);
  const nodeNetns = nodeNetnsNames(world);
  for (const [id, ns] of nodeNetns)
    if (ns === vpcNetns) throw new Error(`instance ${id} uses the router's namespace ${ns}`);
  const attached = new Map<string, Attachment>();
  const devices = new Set<string>();
  let closed = false;

  // Every change runs in order: device names and routes depend on what came before.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn);
    chain = p.catch(() => {});
    return p;
  };

  const vswOf = (eni: SimEni): { cidr: Cidr; gw: string } => {
    const vsw = state.vSwitches.get(eni.vSwitchId);
    if (!vsw) throw new Error(`${eni.id} is in unknown vSwitch ${eni.vSwitchId}`);
    return { cidr: vsw.cidr, gw: ipv4(gatewayOf(vsw.cidr)) };
  };

  const netnsOf = (inst: SimInstance): string => {
    const ns = nodeNetns.get(inst.id);
    if (!ns) throw new Error(`instance ${inst.id} has no node namespace`);
    return ns;
  };

  const newDevice = (eniId: string): string => {
    for (let salt = 0; ; salt++) {
      const dev = routerDeviceName(eniId, salt);
      if (!devices.has(dev)) {
        devices.add(dev);
        return dev;
      }
    }
  };

  const routeLines = (dev: string, mac: string, ips: Iterable<string>): string[] => {
    const out: string[] = [];
    for (const ip of ips) {
      out.push(line("route", "replace", `${ipv4(ip)}/32`, "dev", dev));
      out.push(line("neigh", "replace", ipv4(ip), "lladdr", mac, "dev", dev, "nud", "permanent"));
      // The source check: this source may enter the VPC through this ENI only.
      out.push(
        line("rule", "add", "iif", dev, "from", `${ipv4(ip)}/32`, "priority", SOURCE_OK, "lookup", "main"),
      );
    }
    return out;
  };

  /** Router lines for a new ENI link: the veth (node end named nodeIf, with the ENI's MAC), GW, routes. */
  const linkLines = (eni: SimEni, netns: string, nodeIf: string): { lines: string[]; a: Attachment } => {
    const mac = macAddress(eni.mac);
    const { gw } = vswOf(eni);
    const dev = newDevice(eni.id);
    const lines = [
      line(
        "link",
        "add",
        dev,
        "group",
        ROUTER_GROUP,
        "type",
        "veth",
        "peer",
        "name",
        ifName(nodeIf),
        "address",
        mac,
        "netns",
        netns,
      ),
      line("ntable", "change", "name", "arp_cache", "dev", dev, "proxy_delay", "0"),
      line("addr", "add", `${gw}/32`, "dev", dev),
      line("link", "set", dev, "up"),
      // Anything else entering through this ENI is dropped (after the local table: ARP for the gateway still works).
      line("rule", "add", "iif", dev, "priority", SOURCE_DROP, "blackhole"),
      ...routeLines(dev, mac, eni.ips),
    ];
    return { lines, a: { eniId: eni.id, netns, dev, nodeIf, mac, ips: new Set(eni.ips) } };
  };

  const hooks: DatapathHooks = {
    attach: (eni, inst) =>
      serial(async () => {
        if (closed || attached.has(eni.id)) return;
        const t = performance.now();
        const netns = netnsOf(inst);
        const nodeIf = lowestFreeEth((await listLinks(netns)).map((l) => l.ifname));
        const { lines, a } = linkLines(eni, netns, nodeIf);
        try {
          await ipBatch(vpcNetns, lines);
        } catch (e) {
          devices.delete(a.dev);
          log.error("datapath: attach failed", { eniId: eni.id, instanceId: inst.id, error: String(e) });
          throw e;
        }
        attached.set(eni.id, a);
        log.debug("datapath: ENI attached", {
          eniId: eni.id,
          instanceId: inst.id,
          netns,
          ifname: nodeIf,
          routerDevice: a.dev,
          mac: a.mac,
          ips: eni.ips,
          ms: Math.round(performance.now() - t),
        });
      }),

    detach: (eni, inst) =>
      serial(async () => {
        const a = attached.get(eni.id);
        if (closed || !a) return;
        try {
          await ipBatch(vpcNetns, [
            line("link", "del", a.dev),
            ...[...a.ips].map((ip) =>
              line("rule", "del", "iif", a.dev, "from", `${ipv4(ip)}/32`, "priority", SOURCE_OK),
            ),
            line("rule", "del", "iif", a.dev, "priority", SOURCE_DROP),
          ]);
        } catch (e) {
          log.error("datapath: detach failed", { eniId: eni.id, instanceId: inst.id, error: String(e) });
          throw e;
        }
        attached.delete(eni.id);
        devices.delete(a.dev);
        log.debug("datapath: ENI detached", { eniId: eni.id, instanceId: inst.id, routerDevice: a.dev });
      }),

    assign: (eni, ips) =>
      serial(async () => {
        const a = attached.get(eni.id);
        // An unattached ENI has no link; attaching routes every IP it has then.
        if (closed || !a) return;
        try {
          await ipBatch(vpcNetns, routeLines(a.dev, a.mac, ips));
        } catch (e) {
          log.error("datapath: assign failed", { eniId: eni.id, ips, error: String(e) });
          throw e;
        }
        for (const ip of ips) a.ips.add(ip);
        log.debug("datapath: IPs routed", { eniId: eni.id, routerDevice: a.dev, ips });
      }),

    unassign: (eni, ips) =>
      serial(async () => {
        const a = attached.get(eni.id);
        if (closed || !a) return;
        const lines: string[] = [];
        for (const ip of ips) {
          lines.push(line("route", "del", `${ipv4(ip)}/32`, "dev", a.dev));
          lines.push(line("neigh", "del", ipv4(ip), "dev", a.dev));
          lines.push(line("rule", "del", "iif", a.dev, "from", `${ipv4(ip)}/32`, "priority", SOURCE_OK));
          a.ips.delete(ip);
        }
        const r = await ipBatch(vpcNetns, lines, { force: true });
        if (!r.ok)
          log.warn("datapath: some routes were already gone", { eniId: eni.id, stderr: r.stderr.trim() });
        log.debug("datapath: IPs unrouted", { eniId: eni.id, routerDevice: a.dev, ips });
      }),
  };

  const teardown = (): Promise<void> =>
    serial(async () => {
      if (closed) return;
      closed = true;
      const t = performance.now();
      await removeAll(vpcNetns, nodeNetns.values(), log);
      attached.clear();
      devices.clear();
      log.debug("datapath: torn down", { ms: Math.round(performance.now() - t) });
    });

  try {
    await removeAll(vpcNetns, nodeNetns.values(), log);
    await ipBatch(
      null,
      [vpcNetns, ...nodeNetns.values()].map((n) => line("netns", "add", n)),
    );
    await setSysctls(vpcNetns, routerSysctls(), "1");
    // The source check is done with policy rules (see the header), not reverse-path filtering,
    // because rp_filter also applies to ARP and a node's ARP for the gateway carries eth0's IP.
    await setSysctls(vpcNetns, ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"], "0");
    // Nodes start as a Kubernetes node image leaves them: forwarding on (kubeadm requires it),
    // loose reverse-path filtering (systemd's default on Debian and Ubuntu), whatever the host has.
    for (const ns of nodeNetns.values()) {
      await setSysctls(ns, ["net.ipv4.ip_forward"], "1");
      await setSysctls(ns, ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"], "2");
    }

    // One batch in the router makes every ENI link that exists at start (the
    // primaries, and any ENI already InUse), one batch per node configures eth0.
    const routerLines = [line("link", "set", "lo", "up")];
    const nodeLines = new Map<string, string[]>();
    const pending: Attachment[] = [];
    for (const inst of state.instances.values()) {
      const netns = netnsOf(inst);
      inst.netns = netns;
      const lines = [line("link", "set", "lo", "up")];
      const enis = [...state.enis.values()]
        .filter((e) => e.instanceId === inst.id && e.status === "InUse")
        .sort((x, y) => (x.id === inst.primaryEniId ? -1 : y.id === inst.primaryEniId ? 1 : x.seq - y.seq));
      enis.forEach((eni, n) => {
        const { lines: rl, a } = linkLines(eni, netns, `eth${n}`);
        routerLines.push(...rl);
        pending.push(a);
        if (eni.id !== inst.primaryEniId) return;
        const { cidr, gw } = vswOf(eni);
        const ip = ipv4(eni.ips[0] ?? "");
        lines.push(
          line("addr", "add", `${ip}/${prefixLength(cidr.prefix)}`, "dev", a.nodeIf),
          line("link", "set", a.nodeIf, "up"),
          line("route", "add", "default", "via", gw, "dev", a.nodeIf),
        );
      });
      nodeLines.set(netns, lines);
    }
    await ipBatch(vpcNetns, routerLines);
    await Promise.all([...nodeLines].map(([ns, lines]) => ipBatch(ns, lines)));
    for (const a of pending) attached.set(a.eniId, a);
  } catch (e) {
    log.error("datapath: setup failed", { error: String(e) });
    await teardown().catch(() => {});
    throw e;
  }
  log.debug("datapath: ready", {
    vpcNetns,
    nodes: Object.fromEntries(nodeNetns),
    ms: Math.round(performance.now() - t0),
  });

  return {
    vpcNetns,
    nodeNetns,
    hooks,
    routerDevice: (eniId) => attached.get(eniId)?.dev,
    teardown,
  };
}
