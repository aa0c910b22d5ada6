// Drift repair's decisions, as a pure function of a snapshot of the node
// namespace, the pool's ENIs and allocations, and what is being wired right
// now. It returns what to bring up, what to remove and what to restore; the
// datapath applies it. Nothing here reads or writes the kernel.

import { HOST_VETH, RULE_FROM_POD, RULE_TO_POD } from "../facts.js";
import { eniDevice, eniProblems, type NodeState, nodeSideProblems, tableRoutes } from "./kernel.js";
import { nodeLines, nodeLines6, ruleDel, wiringOf } from "./pod.js";

export interface EniRef {
  eniId: string;
  mac: string;
  gateway: string;
  /** Dual stack: the vSwitch's IPv6 gateway. */
  gateway6?: string;
}

export interface Attachment {
  containerId: string;
  ifname: string;
  ip: string;
  /** Dual stack: the pod's IPv6 address. */
  ip6?: string;
  eni: EniRef;
}

export interface RepairInput {
  /** The node namespace, read before `attachments`. */
  state: NodeState;
  /** The pool's ready ENIs (those of the attachments are added). */
  enis: EniRef[];
  /** ENIs the datapath has set up since it started. */
  known: ReadonlySet<string>;
  /**
   * The allocations, read after `state`: a veth or rule seen in the state
   * always has its allocation here (an ADD allocates before it wires), so an
   * ADD in progress is never taken for a stray.
   */
  attachments: Attachment[];
  /** Host veths and pod IPs of ADDs and DELs in progress: left alone. */
  busy: ReadonlySet<string>;
}

export interface RepairPlan {
  /** ENIs whose device is there but not (or no longer) set up. */
  bringUp: EniRef[];
  /** ENIs whose device is gone: forget their setup. */
  forget: string[];
  /** `ip -batch` lines that remove rules, routes and veths no allocation owns. */
  remove: string[];
  /** `ip -batch` lines that restore the missing pieces of live pods. */
  restore: string[];
  /** The same for IPv6 (`ip -6 -batch`), after those. */
  remove6: string[];
  restore6: string[];
  /** For the log: ENIs that were broken, pods restored, strays removed. */
  report: { enisBroughtUp: string[]; restored: string[]; removed: string[] };
}

export function planRepair(input: RepairInput): RepairPlan {
  const { state, busy } = input;
  const plan: RepairPlan = {
    bringUp: [],
    forget: [],
    remove: [],
    restore: [],
    remove6: [],
    restore6: [],
    report: { enisBroughtUp: [], restored: [], removed: [] },
  };

  // ENIs: each one whose device exists gets its state back.
  const enis = new Map(input.enis.map((e) => [e.eniId, e]));
  // An attachment's ENI may say less than the pool's (an IPv4 pod's: no IPv6 gateway): keep what either says.
  for (const a of input.attachments) {
    const known = enis.get(a.eni.eniId);
    const gateway6 = known?.gateway6 ?? a.eni.gateway6;
    enis.set(a.eni.eniId, { ...a.eni, ...(gateway6 ? { gateway6 } : {}) });
  }
  for (const e of enis.values()) {
    if (!eniDevice(state.links, e.mac)) {
      plan.forget.push(e.eniId); // not attached yet, or gone: nothing to bring up
      continue;
    }
    const broken = eniProblems(state, e).length > 0;
    if (broken || !input.known.has(e.eniId)) plan.bringUp.push(e);
    if (broken) plan.report.enisBroughtUp.push(e.eniId);
  }

  // Live pods: the host veth of each, and its missing pieces.
  const wanted = new Map<string, string>(); // pod IP (IPv4 or IPv6) → its host veth
  for (const a of input.attachments) {
    const w = wiringOf(a.containerId, a.ifname);
    const host = w.hostIfname;
    wanted.set(a.ip, host);
    if (a.ip6) wanted.set(a.ip6, host);
    const dev = eniDevice(state.links, a.eni.mac);
    if (!dev || busy.has(host)) continue; // no ENI device now, or being wired: restore nothing
    const hostLink = state.links.find((l) => l.ifname === host);
    if (!hostLink) continue; // the pod is gone; GC or DEL will release it
    const pod = { hostIfname: host, ip: a.ip, table: dev.table };
    const broken4 = nodeSideProblems(state, pod).length > 0;
    const broken6 =
      a.ip6 !== undefined && nodeSideProblems(state, { ...pod, ip6: a.ip6, podMac: w.podMac }).length > 0;
    if (!broken4 && !broken6) continue;
    if (broken4) {
      for (const r of podRules(state, a.ip)) plan.restore.push(ruleDel(r.priority, a.ip));
      plan.restore.push(...nodeLines(host, a.ip, dev.table));
    }
    if (broken6 && a.ip6) {
      for (const r of podRules(state, a.ip6)) plan.restore6.push(ruleDel(r.priority, a.ip6));
      plan.restore6.push(...nodeLines6(host, a.ip6, dev.table, w.podMac));
    }
    plan.report.restored.push(`${a.containerId}/${a.ifname} ${[a.ip, a.ip6].filter(Boolean).join(" ")}`);
  }

  // Strays: rules, routes and veths of ours that no allocation owns.
  for (const v6 of [false, true]) {
    const out = v6 ? plan.remove6 : plan.remove;
    for (const r of v6 ? state.rules6 : state.rules) {
      const ip = r.priority === RULE_TO_POD ? r.dst : r.priority === RULE_FROM_POD ? r.src : undefined;
      if (!ip || wanted.has(ip) || busy.has(ip)) continue;
      out.push(ruleDel(r.priority, ip));
      plan.report.removed.push(`rule ${r.priority} ${ip}`);
    }
    for (const r of tableRoutes(state, "main", v6)) {
      // A host veth's own link-local route (fe80::/64) is the kernel's, not a pod's.
      if (v6 && r.dst.includes("/")) continue;
      if (!r.dev || !HOST_VETH.test(r.dev) || wanted.get(r.dst) === r.dev || busy.has(r.dev)) continue;
      out.push(`route del ${r.dst} dev ${r.dev}`);
      plan.report.removed.push(`route ${r.dst} dev ${r.dev}`);
    }
  }
  const hosts = new Set(wanted.values());
  for (const l of state.links) {
    if (l.linkinfo?.info_kind !== "veth" || !HOST_VETH.test(l.ifname) || hosts.has(l.ifname)) continue;
    if (busy.has(l.ifname)) continue;
    plan.remove.push(`link del dev ${l.ifname}`);
    plan.report.removed.push(`veth ${l.ifname}`);
  }
  return plan;
}

/** A pod IP's rules at our priorities (after a crash there may be more than one of each). */
function podRules(state: NodeState, ip: string): { priority: number }[] {
  return (ip.includes(":") ? state.rules6 : state.rules).filter(
    (r) => (r.priority === RULE_TO_POD && r.dst === ip) || (r.priority === RULE_FROM_POD && r.src === ip),
  );
}
