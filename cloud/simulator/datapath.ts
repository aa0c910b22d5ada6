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
// IPv4 prefixes and IPv6 follow the same pattern. A /28 is routed on the ENI's
// device via the ENI's primary IP (whose permanent neighbour entry gives the
// ENI's MAC), with its `iif DEV from PREFIX` rule. When the world has IPv6
// (a vSwitch with ipv6Cidr) the router has IPv6 on (forwarding, no DAD, no
// RAs): every device gets an IPv6 blackhole rule at 30000, and each device of
// an ENI in an IPv6 vSwitch carries that vSwitch's IPv6 gateway (the
// ninth-to-last address of its /64) as a /128 plus a permanent neighbour
// fe80::1 → the ENI's MAC. An IPv6 address gets a /128 route, a permanent
// neighbour and its rule; a /80 is routed via fe80::1 on the device, with its
// rule. Nodes reach IPv6 peers through the gateway: the router does not proxy
// NDP for other ENIs' addresses. IPv6 rules go through `ip -6 -batch` (in a
// batch `ip rule` takes every line as IPv4 otherwise).
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
import { formatAddr } from "./addr.js";
import {
  cidr,
  ifName,
  ipBatch,
  ipv4,
  ipv6,
  line,
  listLinks,
  listNetns,
  macAddress,
  netnsName,
  prefixLength,
  setSysctls,
} from "./netlink.js";
import {
  type Addresses,
  type AddressKind,
  type DatapathHooks,
  gateway6Of,
  gatewayOf,
  type SimEni,
  type SimInstance,
  type SimState,
} from "./state.js";
import type { World } from "./world.js";

const NODE_PREFIX = "eniway-node-";
/** Router rule priorities of the source check: allowed sources, then the drop. */
const SOURCE_OK = "100";
const SOURCE_DROP = "30000";
const MAX_NETNS = 64;
/** The link group of every router-side device, so teardown deletes them all in one go. */
const ROUTER_GROUP = "25966";
/** The next hop of IPv6 prefixes on every router device: a permanent neighbour with the ENI's MAC. */
const V6_NEXT_HOP = "fe80::1";
const KINDS: readonly AddressKind[] = ["ipv4", "ipv4Prefix", "ipv6", "ipv6Prefix"];

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
  /** The ENI's primary IPv4 address: the next hop of its IPv4 prefixes. */
  primary: string;
  /** What the router routes to the ENI, by kind. */
  routed: Record<AddressKind, Set<string>>;
}

/** Router lines of one change: `ip -batch` (IPv4) and `ip -6 -batch`. */
interface Lines {
  v4: string[];
  v6: string[];
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
  return [
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.proxy_arp", // the effective value is all OR device
    "net.ipv4.conf.all.arp_ignore", // the effective value is max(all, device)
  ];
}

/** Whether any vSwitch of the world has an IPv6 /64. */
export function worldHasIpv6(world: World): boolean {
  return world.vSwitches.some((v) => v.ipv6Cidr !== "");
}

/**
 * IPv6 in the router: off for a v4 VPC (it would only add router
 * solicitations and DAD noise), on for a dual-stack one: forwarding, and no
 * DAD or RAs on the devices it makes.
 */
async function routerIpv6(netns: string, on: boolean): Promise<void> {
  if (!existsSync("/proc/sys/net/ipv6")) {
    if (on) throw new Error("the world has IPv6, but this kernel has no IPv6");
    return;
  }
  const off = ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"];
  if (!on) return setSysctls(netns, off, "1");
  await setSysctls(netns, off, "0");
  await setSysctls(netns, ["net.ipv6.conf.all.forwarding"], "1");
  await setSysctls(
    netns,
    ["net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad", "net.ipv6.conf.default.accept_ra"],
    "0",
  );
}

const emptyRouted = (): Record<AddressKind, Set<string>> => ({
  ipv4: new Set(),
  ipv4Prefix: new Set(),
  ipv6: new Set(),
  ipv6Prefix: new Set(),
});

/** The source check's rule for one address or prefix: this source may enter the VPC through this device. */
function sourceRule(op: "add" | "del", dev: string, from: string): string {
  return op === "add"
    ? line("rule", "add", "iif", dev, "from", from, "priority", SOURCE_OK, "lookup", "main")
    : line("rule", "del", "iif", dev, "from", from, "priority", SOURCE_OK);
}

/** Router lines that route (add) or unroute (del) addresses of one kind to a device. */
function addressLines(
  op: "add" | "del",
  a: Pick<Attachment, "dev" | "mac" | "primary">,
  x: Addresses,
): Lines {
  const out: Lines = { v4: [], v6: [] };
  const verb = op === "add" ? "replace" : "del";
  for (const value of x.values) {
    switch (x.kind) {
      case "ipv4": {
        const ip = ipv4(value);
        const neigh = op === "add" ? ["lladdr", a.mac, "dev", a.dev, "nud", "permanent"] : ["dev", a.dev];
        out.v4.push(line("route", verb, `${ip}/32`, "dev", a.dev), line("neigh", verb, ip, ...neigh));
        out.v4.push(sourceRule(op, a.dev, `${ip}/32`));
        break;
      }
      case "ipv4Prefix": {
        const p = cidr(value, 4);
        out.v4.push(line("route", verb, p, ...(op === "add" ? ["via", ipv4(a.primary)] : []), "dev", a.dev));
        out.v4.push(sourceRule(op, a.dev, p));
        break;
      }
      case "ipv6": {
        const ip = ipv6(value);
        const neigh = op === "add" ? ["lladdr", a.mac, "dev", a.dev, "nud", "permanent"] : ["dev", a.dev];
        out.v6.push(line("route", verb, `${ip}/128`, "dev", a.dev), line("neigh", verb, ip, ...neigh));
        out.v6.push(sourceRule(op, a.dev, `${ip}/128`));
        break;
      }
      case "ipv6Prefix": {
        const p = cidr(value, 6);
        out.v6.push(line("route", verb, p, ...(op === "add" ? ["via", V6_NEXT_HOP] : []), "dev", a.dev));
        out.v6.push(sourceRule(op, a.dev, p));
        break;
      }
    }
  }
  return out;
}

/** What an ENI has of each kind, as the hooks' Addresses. */
function addressesOf(eni: SimEni): Addresses[] {
  const values: Record<AddressKind, string[]> = {
    ipv4: eni.ips,
    ipv4Prefix: eni.ipv4Prefixes,
    ipv6: eni.ipv6s,
    ipv6Prefix: eni.ipv6Prefixes,
  };
  return KINDS.map((kind) => ({ kind, values: [...values[kind]] }));
}

function concat(...ls: Lines[]): Lines {
  return { v4: ls.flatMap((l) => l.v4), v6: ls.flatMap((l) => l.v6) };
}

/** Runs router lines: the IPv4 batch first (it makes links), then the IPv6 one. */
async function runLines(netns: string, l: Lines, force = false): Promise<{ ok: boolean; stderr: string }> {
  const a = await ipBatch(netns, l.v4, { force });
  const b = await ipBatch(netns, l.v6, { force, ipv6: true });
  return { ok: a.ok && b.ok, stderr: a.stderr + b.stderr };
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

  const ipv6On = worldHasIpv6(world);

  const vswOf = (eni: SimEni): { cidr: Cidr; gw: string; gw6?: string } => {
    const vsw = state.vSwitches.get(eni.vSwitchId);
    if (!vsw) throw new Error(`${eni.id} is in unknown vSwitch ${eni.vSwitchId}`);
    const gw6 = vsw.ipv6 ? ipv6(formatAddr(gateway6Of(vsw.ipv6.net), 6)) : undefined;
    return { cidr: vsw.cidr, gw: ipv4(gatewayOf(vsw.cidr)), ...(gw6 ? { gw6 } : {}) };
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

  /** IPv6 lines of a new device: the drop rule, and in an IPv6 vSwitch the gateway and the prefixes' next hop. */
  const deviceLines6 = (dev: string, mac: string, gw6: string | undefined): string[] => {
    if (!ipv6On) return [];
    const out = [line("rule", "add", "iif", dev, "priority", SOURCE_DROP, "blackhole")];
    if (gw6)
      out.push(
        line("addr", "add", `${gw6}/128`, "dev", dev, "nodad"),
        line("neigh", "replace", V6_NEXT_HOP, "lladdr", mac, "dev", dev, "nud", "permanent"),
      );
    return out;
  };

  /** Router lines for a new ENI link: the veth (node end named nodeIf, with the ENI's MAC), GW, routes. */
  const linkLines = (eni: SimEni, netns: string, nodeIf: string): { lines: Lines; a: Attachment } => {
    const mac = macAddress(eni.mac);
    const { gw, gw6 } = vswOf(eni);
    const dev = newDevice(eni.id);
    const a: Attachment = {
      eniId: eni.id,
      netns,
      dev,
      nodeIf,
      mac,
      primary: ipv4(eni.ips[0] ?? ""),
      routed: emptyRouted(),
    };
    const device: Lines = {
      v4: [
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
      ],
      v6: deviceLines6(dev, mac, gw6),
    };
    // The primary IP comes first: it is the next hop of the IPv4 prefixes.
    const all = addressesOf(eni);
    for (const x of all) for (const v of x.values) a.routed[x.kind].add(v);
    return { lines: concat(device, ...all.map((x) => addressLines("add", a, x))), a };
  };

  /** Router lines that remove a device and every rule that names it. */
  const unlinkLines = (a: Attachment): Lines => {
    const rules = KINDS.map((kind) => addressLines("del", a, { kind, values: [...a.routed[kind]] }));
    const drop = line("rule", "del", "iif", a.dev, "priority", SOURCE_DROP);
    return {
      v4: [
        line("link", "del", a.dev),
        ...rules.flatMap((l) => l.v4.filter((x) => x.startsWith("rule"))),
        drop,
      ],
      v6: [...rules.flatMap((l) => l.v6.filter((x) => x.startsWith("rule"))), ...(ipv6On ? [drop] : [])],
    };
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
          await runLines(vpcNetns, lines);
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
          await runLines(vpcNetns, unlinkLines(a));
        } catch (e) {
          log.error("datapath: detach failed", { eniId: eni.id, instanceId: inst.id, error: String(e) });
          throw e;
        }
        attached.delete(eni.id);
        devices.delete(a.dev);
        log.debug("datapath: ENI detached", { eniId: eni.id, instanceId: inst.id, routerDevice: a.dev });
      }),

    assign: (eni, added) =>
      serial(async () => {
        const a = attached.get(eni.id);
        // An unattached ENI has no link; attaching routes everything it has then.
        if (closed || !a) return;
        try {
          await runLines(vpcNetns, addressLines("add", a, added));
        } catch (e) {
          log.error("datapath: assign failed", { eniId: eni.id, ...added, error: String(e) });
          throw e;
        }
        for (const v of added.values) a.routed[added.kind].add(v);
        log.debug("datapath: addresses routed", { eniId: eni.id, routerDevice: a.dev, ...added });
      }),

    unassign: (eni, removed) =>
      serial(async () => {
        const a = attached.get(eni.id);
        if (closed || !a) return;
        for (const v of removed.values) a.routed[removed.kind].delete(v);
        const r = await runLines(vpcNetns, addressLines("del", a, removed), true);
        if (!r.ok)
          log.warn("datapath: some routes were already gone", { eniId: eni.id, stderr: r.stderr.trim() });
        log.debug("datapath: addresses unrouted", { eniId: eni.id, routerDevice: a.dev, ...removed });
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
    await routerIpv6(vpcNetns, ipv6On);
    // The source check is done with policy rules (see the header), not reverse-path filtering,
    // because rp_filter also applies to ARP and a node's ARP for the gateway carries eth0's IP.
    await setSysctls(vpcNetns, ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"], "0");
    // Nodes start as a Kubernetes node image leaves them: forwarding on (kubeadm requires it),
    // loose reverse-path filtering (systemd's default on Debian and Ubuntu), whatever the host has.
    for (const ns of nodeNetns.values()) {
      await setSysctls(ns, ["net.ipv4.ip_forward"], "1");
      await setSysctls(ns, ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"], "2");
      if (ipv6On) await setSysctls(ns, ["net.ipv6.conf.all.forwarding"], "1");
    }

    // One batch in the router makes every ENI link that exists at start (the
    // primaries, and any ENI already InUse), one batch per node configures eth0.
    const routerLines: Lines[] = [{ v4: [line("link", "set", "lo", "up")], v6: [] }];
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
        routerLines.push(rl);
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
    await runLines(vpcNetns, concat(...routerLines));
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
