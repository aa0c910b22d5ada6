// The datapath the daemon drives: ENI bring-up, pod wiring and teardown,
// CHECK, and the drift repair that keeps the node namespace matching the
// allocations (read a snapshot, plan with repair.ts, apply). Everything
// happens in one node namespace (node.netns).

import { createIpSession, type IpSession, writeProcSys } from "../../lib/ip.js";
import type { Logger } from "../../lib/log.js";
import { without } from "../../lib/object.js";
import { bringUpEni, type EniDevice } from "./eni.js";
import { eniDevice, eniProblems, readNodeState } from "./kernel.js";
import { podSideVia, startNetlinkHelper } from "./netlink.js";
import {
  addPod,
  checkPod,
  ipPodSide,
  type NodeBatches,
  type PodSide,
  type PodSpec,
  type PodWiring,
  removeNodeSide,
  unroute,
  wiringOf,
} from "./pod.js";
import { type Attachment, type EniRef, planRepair, type RepairPlan } from "./repair.js";
import { connmarkReturnPath } from "./return-path.js";

export type { Attachment, EniRef };
export type RepairReport = RepairPlan["report"];

/**
 * The node settings the datapath needs: forwarding, and no reverse-path
 * filtering (replies to pods arrive on ENIs whose routes live in other
 * tables), for the interfaces there are and those to come. The daemon
 * writes them where it can; in a container /proc/sys is read-only, so the
 * chart's privileged init container (`eniway node-init`) writes them first.
 */
export const NODE_SYSCTLS: Readonly<Record<string, string>> = {
  "net/ipv4/ip_forward": "1",
  "net/ipv4/conf/all/rp_filter": "0",
  "net/ipv4/conf/default/rp_filter": "0",
};

/**
 * Dual stack adds IPv6 forwarding, and no duplicate address detection on
 * interfaces made from now on. (A node whose own interface takes its IPv6
 * route from router advertisements needs accept_ra=2 there: forwarding
 * turns accepting them off.)
 */
export const NODE_SYSCTLS_IPV6: Readonly<Record<string, string>> = {
  "net/ipv6/conf/all/forwarding": "1",
  // ENIs attached later (and host veths) skip duplicate address detection: the VPC gives each
  // address to one interface, and an ENI's link-local address must reach its gateway at once.
  "net/ipv6/conf/default/accept_dad": "0",
};

/** The node settings for the IP stack. */
export const nodeSysctls = (ipv6: boolean): Readonly<Record<string, string>> =>
  ipv6 ? { ...NODE_SYSCTLS, ...NODE_SYSCTLS_IPV6 } : NODE_SYSCTLS;

export interface Datapath {
  ensureEni(eni: EniRef): Promise<EniDevice>;
  /** Sets up every ENI whose device is present (at start, before the daemon is ready). */
  discover(enis: EniRef[]): Promise<void>;
  add(
    spec: Omit<PodSpec, "table" | "mtu"> & { eni: EniRef },
  ): Promise<PodWiring & { table: number; mtu: number }>;
  /** Takes the pod's addresses (IPv4, and IPv6 in dual stack) off the node, then its veth. */
  del(containerId: string, ifname: string, ip: string | null, ip6?: string | null): Promise<void>;
  /** What is wrong with a pod's network: [] when nothing. */
  check(spec: Omit<PodSpec, "table" | "mtu"> & { eni: EniRef }): Promise<string[]>;
  /** `attachments` is called after the kernel is read (see RepairInput). */
  repair(attachments: () => Attachment[], enis: EniRef[]): Promise<RepairReport>;
  /** Ends the long-lived `ip -batch` process and the netlink helper. */
  close(): void;
}

export interface DatapathOptions {
  nodeNetns: string;
  mtu: number;
  log: Logger;
  /**
   * The netlink helper executable (dist/bin/eniway-netlink): pods' sides
   * are wired through it, without a process start per pod. Without it, or
   * while it is unavailable, with `ip -batch` in the pod's namespace.
   */
  netlinkHelper?: string;
  /** Dual stack: IPv6 forwarding, and IPv6 routing for pods and ENIs that have it. */
  ipv6?: boolean;
}

export function createDatapath(opts: DatapathOptions): Datapath {
  const ns = opts.nodeNetns;
  const log = opts.log;
  /** ENIs set up, with the IPv6 gateway their table got (dual stack). */
  const devices = new Map<string, EniDevice & { gateway6?: string }>();
  // One long-lived `ip -batch` for the node namespace: no process start on the ADD/DEL path.
  const session = createIpSession(ns);
  const ipv6 = opts.ipv6 === true;
  // The IPv6 session: at once in dual stack; on an IPv4 node only if a pod wired when the node
  // was dual stack goes (its IPv6 routing is taken off all the same).
  let session6: IpSession | null = ipv6 ? createIpSession(ns, { ipv6: true }) : null;
  const nodeBatch = (lines: string[], force = false): Promise<void> => session.batch(lines, force);
  const batches: NodeBatches = {
    v4: nodeBatch,
    v6: (lines, force = false) => {
      session6 ??= createIpSession(ns, { ipv6: true });
      return session6.batch(lines, force);
    },
  };
  /**
   * What this node wires of a pod or an ENI: all of it in dual stack; on an
   * IPv4 node its IPv4 alone (a pod that got an IPv6 while the node was dual
   * stack keeps working over IPv4, and CHECK and repair judge IPv4 only).
   */
  const eniOf = (e: EniRef): EniRef => (ipv6 || e.gateway6 === undefined ? e : without(e, "gateway6"));
  const stackOf = <T extends { ip6?: string; eni: EniRef }>(x: T): T => {
    if (ipv6) return x;
    const copy: T = { ...x, eni: eniOf(x.eni) };
    delete copy.ip6;
    return copy;
  };
  const helper = opts.netlinkHelper ? startNetlinkHelper(opts.netlinkHelper, log) : null;
  const podSide: PodSide = helper ? podSideVia(helper, ipPodSide) : ipPodSide;
  let initialized: Promise<void> | null = null;
  /** Host veths and pod IPs of ADDs and DELs in progress: repair keeps away from them. */
  const inflight = new Set<string>();
  /**
   * Those that began or ended since repair last read the kernel: the
   * snapshot may show them half-done, so repair keeps away from them too.
   */
  const touched = new Set<string>();
  const guarded = async <T>(keys: string[], work: () => Promise<T>): Promise<T> => {
    for (const k of keys) {
      inflight.add(k);
      touched.add(k);
    }
    try {
      return await work();
    } finally {
      for (const k of keys) {
        inflight.delete(k);
        touched.add(k);
      }
    }
  };

  const init = (): Promise<void> => {
    initialized ??= (async () => {
      await writeProcSys(ns, nodeSysctls(ipv6));
      await connmarkReturnPath(ns, nodeBatch).catch((e: unknown) =>
        log.warn("no return path for connections to the node's own address (hostPort from other nodes)", {
          error: e instanceof Error ? e.message : String(e),
        }),
      );
    })().catch((e: unknown) => {
      initialized = null;
      throw e;
    });
    return initialized;
  };

  const ensureEni = async (eni: EniRef): Promise<EniDevice> => {
    await init();
    const gateway6 = ipv6 ? eni.gateway6 : undefined;
    const known = devices.get(eni.eniId);
    // Set up without its IPv6 gateway (learned later, or by an IPv4 pod first): set up again with it.
    if (known && (!gateway6 || known.gateway6 === gateway6)) return known;
    const dev = {
      ...(await bringUpEni(ns, {
        mac: eni.mac,
        gateway: eni.gateway,
        ...(gateway6 ? { gateway6 } : {}),
        mtu: opts.mtu,
      })),
      ...(gateway6 ? { gateway6 } : {}),
    };
    devices.set(eni.eniId, dev);
    log.info("ENI device up", { eniId: eni.eniId, device: dev.device, table: dev.table });
    return dev;
  };

  const bringUp = async (enis: EniRef[]): Promise<void> => {
    for (const e of enis) {
      devices.delete(e.eniId);
      await ensureEni(e).catch((err: unknown) =>
        log.warn("ENI bring-up failed", { eniId: e.eniId, error: String(err) }),
      );
    }
  };

  // Touches the node namespace (sysctls, iptables) only once an ENI device is there.
  const discover: Datapath["discover"] = async (enis) => {
    if (enis.length === 0) return;
    const state = await readNodeState(ns, ipv6);
    await bringUp(enis.filter((e) => eniDevice(state.links, e.mac) !== null));
  };

  /**
   * Host veths a DEL is still removing, by name. An ADD of the same
   * attachment waits for it: the removal goes by name, so once the ADD's new
   * veth is there it would take that one instead.
   */
  const removing = new Map<string, Promise<void>>();

  const add: Datapath["add"] = (given) => {
    const spec = stackOf(given);
    const host = wiringOf(spec.containerId, spec.ifname).hostIfname;
    return guarded([host, spec.ip, ...(spec.ip6 ? [spec.ip6] : [])], async () => {
      await removing.get(host);
      return addUnguarded(spec);
    });
  };

  const addUnguarded: Datapath["add"] = async (spec) => {
    if (spec.ip6 !== undefined && !spec.eni.gateway6)
      throw new Error(`ENI ${spec.eni.eniId} has no IPv6 gateway (its vSwitch has no IPv6 CIDR?)`);
    let dev = await ensureEni(spec.eni);
    try {
      const w = await addPod(ns, { ...spec, table: dev.table, mtu: opts.mtu }, batches, podSide);
      return { ...w, table: dev.table, mtu: opts.mtu };
    } catch (e) {
      // The device may have been renamed or replaced under us: look it up again once.
      devices.delete(spec.eni.eniId);
      dev = await ensureEni(spec.eni);
      const w = await addPod(ns, { ...spec, table: dev.table, mtu: opts.mtu }, batches, podSide).catch(() => {
        throw e;
      });
      return { ...w, table: dev.table, mtu: opts.mtu };
    }
  };

  const del: Datapath["del"] = async (containerId, ifname, ip, ip6 = null) => {
    const host = wiringOf(containerId, ifname).hostIfname;
    // Routing goes at once; the veth (slow to delete, and gone anyway with the pod's namespace)
    // goes right after, off the DEL path. A re-ADD of the same attachment waits for it (`removing`).
    await unroute({ ip, ip6 }, batches);
    const removal = removeNodeSide(ns, host, { ip: null, ip6: null }, batches)
      .catch((e: unknown) => log.warn("host veth removal failed", { host, error: String(e) }))
      .finally(() => {
        if (removing.get(host) === removal) removing.delete(host);
      });
    removing.set(host, removal);
  };

  // From the kernel alone, never from what this process has set up: right after a restart too.
  const check: Datapath["check"] = async (given) => {
    const spec = stackOf(given);
    const state = await readNodeState(ns, ipv6);
    const table = eniDevice(state.links, spec.eni.mac)?.table ?? -1;
    return [...eniProblems(state, spec.eni), ...(await checkPod(state, { ...spec, table, mtu: opts.mtu }))];
  };

  const repair: Datapath["repair"] = async (attachments, enis) => {
    touched.clear();
    const state = await readNodeState(ns, ipv6);
    const plan = planRepair({
      state,
      enis: enis.map(eniOf),
      known: new Set(devices.keys()),
      attachments: attachments().map(stackOf), // only now: anything wired before the read was allocated before it
      busy: new Set([...inflight, ...touched]),
    });
    for (const id of plan.forget) devices.delete(id);
    await bringUp(plan.bringUp);
    await nodeBatch(plan.remove, true);
    await nodeBatch(plan.restore, true);
    if (ipv6) {
      await batches.v6(plan.remove6, true);
      await batches.v6(plan.restore6, true);
    }
    const r = plan.report;
    if (r.restored.length || r.removed.length || r.enisBroughtUp.length)
      log.warn("datapath drift repaired", { ...r });
    return r;
  };

  const close = (): void => {
    session.close();
    session6?.close();
    helper?.close();
  };
  return { ensureEni, discover, add, del, check, repair, close };
}
