// The daemon's side of the CNI plugin: ADD allocates an IP and wires the pod,
// DEL unwires and releases, CHECK verifies every piece, GC releases every
// attachment the runtime no longer lists.

import type { Datapath, EniRef } from "../../cni/datapath/datapath.js";
import { POD_GATEWAY } from "../../cni/facts.js";
import { checkNetnsPath } from "../../lib/ip.js";
import type { Logger } from "../../lib/log.js";
import type { Allocation, Pool } from "../../pool/pool.js";
import type { PodRef } from "../../pool/store.js";
import { badRequest, DaemonError } from "./errors.js";

export interface CniAddRequest {
  containerId: string;
  ifname: string;
  netns: string;
  pod: { namespace: string; name: string; uid: string };
}

export interface CniAddResult {
  ip: string;
  prefix: 32;
  gateway: string;
  podMac: string;
  hostIfname: string;
  hostMac: string;
  eniId: string;
  mtu: number;
  /** Where the time went, for the benchmark: allocation and kernel work. */
  timings: { allocateMs: number; kernelMs: number };
}

export interface CniHandlers {
  add(req: CniAddRequest): Promise<CniAddResult>;
  del(req: { containerId: string; ifname: string }): Promise<{ released: string | null }>;
  check(req: { containerId: string; ifname: string; netns: string }): Promise<void>;
  gc(
    valid: { containerId: string; ifname: string }[],
  ): Promise<{ released: { containerId: string; ifname: string; ip: string }[] }>;
}

export const eniOf = (a: Allocation): EniRef => ({ eniId: a.eniId, mac: a.mac, gateway: a.gateway });

/** What the Kubernetes side hears of the CNI path; each hook returns at once. */
export interface CniObserver {
  allocated?(pod: PodRef, a: { ip: string; eniId: string; ms: number }): void;
  allocationFailed?(pod: PodRef, error: Error): void;
  /** DEL holds the IP of this pod for its return under the same name (a StatefulSet pod). */
  holdsIp?(pod: PodRef): boolean;
}

export function createCniHandlers(deps: {
  pool: Pool;
  datapath: Datapath;
  log: Logger;
  observer?: CniObserver;
}): CniHandlers {
  const { pool, datapath, log } = deps;
  const observer = deps.observer ?? {};
  const find = (containerId: string, ifname: string): Allocation | undefined =>
    pool.allocations().find((a) => a.containerId === containerId && a.ifname === ifname);

  const add: CniHandlers["add"] = async (req) => {
    if (!req.netns) throw badRequest("netns is required for ADD");
    checkNetnsPath(req.netns);
    const t0 = performance.now();
    let a: Allocation;
    try {
      a = await pool.allocate({ containerId: req.containerId, ifname: req.ifname, pod: req.pod });
    } catch (e) {
      observer.allocationFailed?.(req.pod, e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
    const t1 = performance.now();
    try {
      const w = await datapath.add({
        containerId: req.containerId,
        ifname: req.ifname,
        netns: req.netns,
        ip: a.ip,
        eni: eniOf(a),
      });
      const t2 = performance.now();
      observer.allocated?.(req.pod, { ip: a.ip, eniId: a.eniId, ms: t2 - t0 });
      return {
        ip: a.ip,
        prefix: 32,
        gateway: POD_GATEWAY,
        podMac: w.podMac,
        hostIfname: w.hostIfname,
        hostMac: w.hostMac,
        eniId: a.eniId,
        mtu: w.mtu,
        timings: { allocateMs: +(t1 - t0).toFixed(3), kernelMs: +(t2 - t1).toFixed(3) },
      };
    } catch (e) {
      log.warn("pod wiring failed; releasing its IP", {
        containerId: req.containerId,
        ip: a.ip,
        error: String(e),
      });
      await datapath.del(req.containerId, req.ifname, a.ip).catch(() => {});
      await pool.release(req.containerId, req.ifname);
      observer.allocationFailed?.(req.pod, e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
  };

  const del: CniHandlers["del"] = async (req) => {
    const a = find(req.containerId, req.ifname);
    // Unrouting and the durable release are independent: run them together.
    const [, released] = await Promise.all([
      datapath.del(req.containerId, req.ifname, a?.ip ?? null),
      pool.release(req.containerId, req.ifname, { hold: a ? (observer.holdsIp?.(a.pod) ?? false) : false }),
    ]);
    return { released: released?.ip ?? null };
  };

  const check: CniHandlers["check"] = async (req) => {
    checkNetnsPath(req.netns);
    const a = find(req.containerId, req.ifname);
    if (!a) throw new DaemonError("UnknownContainer", `no allocation for ${req.containerId}/${req.ifname}`);
    const problems = await datapath.check({
      containerId: req.containerId,
      ifname: req.ifname,
      netns: req.netns,
      ip: a.ip,
      eni: eniOf(a),
    });
    if (problems.length) throw new DaemonError("CheckFailed", `CHECK failed: ${problems.join("; ")}`);
  };

  const gc: CniHandlers["gc"] = async (valid) => {
    const keep = new Set(valid.map((v) => `${v.containerId}/${v.ifname}`));
    const released: { containerId: string; ifname: string; ip: string }[] = [];
    for (const a of pool.allocations()) {
      if (keep.has(`${a.containerId}/${a.ifname}`)) continue;
      await del({ containerId: a.containerId, ifname: a.ifname });
      released.push({ containerId: a.containerId, ifname: a.ifname, ip: a.ip });
    }
    if (released.length) log.info("GC released attachments", { released });
    return { released };
  };

  return { add, del, check, gc };
}
