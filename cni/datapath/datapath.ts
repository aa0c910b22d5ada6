// The datapath the daemon drives: ENI bring-up, pod wiring and teardown,
// CHECK, and the drift repair that keeps the node namespace matching the
// allocations. Everything happens in one node namespace (node.netns).

import type { Logger } from "../../src/log.js";
import { bringUpEni, checkEni, type EniDevice } from "./eni.js";
import { createIpSession, ipJson, run, sysctl } from "./ip.js";
import { HOST_VETH_PREFIX, RULE_FROM_POD, RULE_TO_POD } from "./names.js";
import {
  addPod,
  checkPod,
  nodeLines,
  type PodSpec,
  type PodWiring,
  removeNodeSide,
  unrouteLines,
  wiringOf,
} from "./pod.js";

export interface EniRef {
  eniId: string;
  mac: string;
  gateway: string;
}

export interface Attachment {
  containerId: string;
  ifname: string;
  ip: string;
  eni: EniRef;
}

export interface RepairReport {
  enisBroughtUp: string[];
  restored: string[];
  removed: string[];
}

export interface Datapath {
  ensureEni(eni: EniRef): Promise<EniDevice>;
  add(
    spec: Omit<PodSpec, "table" | "mtu"> & { eni: EniRef },
  ): Promise<PodWiring & { table: number; mtu: number }>;
  del(containerId: string, ifname: string, ip: string | null): Promise<void>;
  check(spec: Omit<PodSpec, "table" | "mtu"> & { eni: EniRef }): Promise<string[]>;
  /**
   * `attachments` is read after the kernel state: a veth or rule seen there
   * always has its allocation in the list (an ADD allocates before it wires),
   * so an ADD in progress is never taken for a stray.
   */
  repair(attachments: () => Attachment[], enis: EniRef[]): Promise<RepairReport>;
}

const OUR_VETH = new RegExp(`^${HOST_VETH_PREFIX}[0-9a-f]{11}$`);

/** The connmark bit for connections that entered through the primary interface. */
const PRIMARY_MARK = "0x80";
const RULE_PRIMARY_RETURN = 1024;

/**
 * Connections that enter the node through its primary interface to a local
 * address (a hostPort DNAT'd to a pod) must answer through that interface:
 * the pod's `from` rule would send the reply out of the pod's ENI with the
 * node's address as source, and the VPC's source check drops it. As the AWS
 * VPC CNI does: mark such connections, restore the mark on the pod's packets,
 * and route marked packets by the main table.
 */
async function connmarkReturnPath(
  ns: string,
  node: (lines: string[], force?: boolean) => Promise<void>,
): Promise<void> {
  const routes = await ipJson<{ dst: string; dev?: string }[]>(ns, ["route", "show", "table", "main"]);
  const primary = routes.find((r) => r.dst === "default")?.dev;
  if (!primary || !/^[A-Za-z0-9_.-]{1,15}$/.test(primary))
    throw new Error("the node namespace has no default route");
  const ipt = (...args: string[]): Promise<string> =>
    run(ns, ["iptables", "-w", "5", "-t", "mangle", ...args]);
  const chain = "ENIWAY-PREROUTING";
  await ipt("-N", chain).catch(() => "");
  await ipt("-F", chain);
  await ipt(
    "-A",
    chain,
    "-i",
    primary,
    "-m",
    "addrtype",
    "--dst-type",
    "LOCAL",
    "--limit-iface-in",
    "-j",
    "CONNMARK",
    "--set-xmark",
    `${PRIMARY_MARK}/${PRIMARY_MARK}`,
  );
  await ipt(
    "-A",
    chain,
    "-i",
    `${HOST_VETH_PREFIX}+`,
    "-j",
    "CONNMARK",
    "--restore-mark",
    "--nfmask",
    PRIMARY_MARK,
    "--ctmask",
    PRIMARY_MARK,
  );
  await ipt("-C", "PREROUTING", "-j", chain).catch(() => ipt("-A", "PREROUTING", "-j", chain));
  await node([`rule del fwmark ${PRIMARY_MARK}/${PRIMARY_MARK} priority ${RULE_PRIMARY_RETURN}`], true);
  await node([`rule add fwmark ${PRIMARY_MARK}/${PRIMARY_MARK} lookup main priority ${RULE_PRIMARY_RETURN}`]);
}

export function createDatapath(opts: { nodeNetns: string; mtu: number; log: Logger }): Datapath {
  const ns = opts.nodeNetns;
  const log = opts.log;
  const devices = new Map<string, EniDevice>();
  // One long-lived `ip -batch` for the node namespace: no process start on the ADD/DEL path.
  const session = createIpSession(ns);
  const nodeBatch = (lines: string[], force = false): Promise<void> => session.batch(lines, force);
  let initialized: Promise<void> | null = null;
  /** Host veths and pod IPs of ADDs and DELs in progress: repair keeps away from them. */
  const inflight = new Set<string>();
  const guarded = async <T>(keys: string[], work: () => Promise<T>): Promise<T> => {
    for (const k of keys) inflight.add(k);
    try {
      return await work();
    } finally {
      for (const k of keys) inflight.delete(k);
    }
  };

  const init = (): Promise<void> => {
    initialized ??= (async () => {
      await sysctl(ns, { "net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0" });
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
    const known = devices.get(eni.eniId);
    if (known) return known;
    const dev = await bringUpEni(ns, { mac: eni.mac, gateway: eni.gateway, mtu: opts.mtu });
    devices.set(eni.eniId, dev);
    log.info("ENI device up", { eniId: eni.eniId, device: dev.device, table: dev.table });
    return dev;
  };

  const add: Datapath["add"] = (spec) =>
    guarded([wiringOf(spec.containerId, spec.ifname).hostIfname, spec.ip], () => addUnguarded(spec));

  const addUnguarded: Datapath["add"] = async (spec) => {
    let dev = await ensureEni(spec.eni);
    try {
      const w = await addPod(ns, { ...spec, table: dev.table, mtu: opts.mtu }, nodeBatch);
      return { ...w, table: dev.table, mtu: opts.mtu };
    } catch (e) {
      // The device may have been renamed or replaced under us: look it up again once.
      devices.delete(spec.eni.eniId);
      dev = await ensureEni(spec.eni);
      const w = await addPod(ns, { ...spec, table: dev.table, mtu: opts.mtu }, nodeBatch).catch(() => {
        throw e;
      });
      return { ...w, table: dev.table, mtu: opts.mtu };
    }
  };

  const del: Datapath["del"] = async (containerId, ifname, ip) => {
    const host = wiringOf(containerId, ifname).hostIfname;
    // Routing goes at once; the veth (slow to delete, and gone anyway with the pod's namespace)
    // goes right after, off the DEL path. A re-ADD meanwhile clears it first (File exists).
    if (ip) await nodeBatch(unrouteLines(ip), true);
    void removeNodeSide(ns, host, null, nodeBatch).catch((e: unknown) =>
      log.warn("host veth removal failed", { host, error: String(e) }),
    );
  };

  const check: Datapath["check"] = async (spec) => {
    const problems = await checkEni(ns, spec.eni);
    const dev = devices.get(spec.eni.eniId);
    const table = dev?.table ?? -1;
    return [...problems, ...(await checkPod(ns, { ...spec, table, mtu: opts.mtu }))];
  };

  const repair: Datapath["repair"] = async (current, enis) => {
    const report: RepairReport = { enisBroughtUp: [], restored: [], removed: [] };
    // ENIs first: each pool ENI whose device exists gets its state back.
    const used = new Map<string, EniRef>();
    for (const e of enis) used.set(e.eniId, e);
    for (const a of current()) used.set(a.eni.eniId, a.eni);
    for (const e of used.values()) {
      const problems = await checkEni(ns, e).catch(() => ["unreadable"]);
      if (problems.some((p) => p.startsWith("no device"))) {
        devices.delete(e.eniId);
        continue; // not attached yet (or gone): nothing to bring up
      }
      if (problems.length === 0 && devices.has(e.eniId)) continue;
      devices.delete(e.eniId);
      await ensureEni(e).then(
        () => {
          if (problems.length > 0) report.enisBroughtUp.push(e.eniId);
        },
        (err: unknown) => log.warn("ENI bring-up failed", { eniId: e.eniId, error: String(err) }),
      );
    }
    const rules = await ipJson<{ priority: number; src?: string; dst?: string; table?: string }[]>(ns, [
      "rule",
      "show",
    ]);
    const routes = await ipJson<{ dst: string; dev?: string }[]>(ns, ["route", "show", "table", "main"]);
    const links = await ipJson<{ ifname: string; flags?: string[] }[]>(ns, ["link", "show", "type", "veth"]);
    // Only now: anything wired before these reads was allocated before it.
    const attachments = current();
    const busy = new Set(inflight);
    const wantIps = new Map<string, { host: string; table: number }>();
    const lines: string[] = [];
    for (const a of attachments) {
      const host = wiringOf(a.containerId, a.ifname).hostIfname;
      const dev = devices.get(a.eni.eniId);
      wantIps.set(a.ip, { host, table: dev?.table ?? -1 });
      if (!dev || busy.has(host)) continue; // no ENI device now, or being wired: restore nothing
      const hostLink = links.find((l) => l.ifname === host);
      if (!hostLink) continue; // the pod is gone; GC or DEL will release it
      const ok =
        hostLink.flags?.includes("UP") &&
        routes.some((r) => r.dst === a.ip && r.dev === host) &&
        rules.some((r) => r.priority === RULE_TO_POD && r.dst === a.ip && r.table === "main") &&
        rules.some((r) => r.priority === RULE_FROM_POD && r.src === a.ip && r.table === String(dev.table));
      if (ok) continue;
      for (const r of rules)
        if (
          (r.priority === RULE_TO_POD && r.dst === a.ip) ||
          (r.priority === RULE_FROM_POD && r.src === a.ip)
        )
          lines.push(
            `rule del priority ${r.priority} ${r.priority === RULE_TO_POD ? "to" : "from"} ${a.ip}/32`,
          );
      lines.push(...nodeLines(host, a.ip, dev.table));
      report.restored.push(`${a.containerId}/${a.ifname} ${a.ip}`);
    }
    const removals: string[] = [];
    for (const r of rules) {
      if (r.priority !== RULE_TO_POD && r.priority !== RULE_FROM_POD) continue;
      const ip = r.priority === RULE_TO_POD ? r.dst : r.src;
      if (ip && !wantIps.has(ip) && !busy.has(ip)) {
        removals.push(
          `rule del priority ${r.priority} ${r.priority === RULE_TO_POD ? "to" : "from"} ${ip}/32`,
        );
        report.removed.push(`rule ${r.priority} ${ip}`);
      }
    }
    const wantHosts = new Set([...wantIps.values()].map((w) => w.host));
    for (const a of attachments) wantHosts.add(wiringOf(a.containerId, a.ifname).hostIfname);
    for (const r of routes) {
      if (!r.dev || !OUR_VETH.test(r.dev) || wantIps.get(r.dst)?.host === r.dev || busy.has(r.dev)) continue;
      removals.push(`route del ${r.dst} dev ${r.dev}`);
      report.removed.push(`route ${r.dst} dev ${r.dev}`);
    }
    for (const l of links) {
      if (!OUR_VETH.test(l.ifname) || wantHosts.has(l.ifname) || busy.has(l.ifname)) continue;
      removals.push(`link del dev ${l.ifname}`);
      report.removed.push(`veth ${l.ifname}`);
    }
    await nodeBatch(removals, true);
    await nodeBatch(lines, true);
    if (report.restored.length || report.removed.length || report.enisBroughtUp.length)
      log.warn("datapath drift repaired", { ...report });
    return report;
  };

  return { ensureEni, add, del, check, repair };
}
