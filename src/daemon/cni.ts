// The daemon's side of the CNI plugin: ADD allocates an IP and wires the pod,
// DEL unwires and releases, CHECK verifies every piece, GC releases the
// attachments of its own network that the runtime no longer lists.

import type { Datapath, EniRef } from "../../cni/datapath/datapath.js";
import { POD_GATEWAY, POD_GATEWAY6 } from "../../cni/facts.js";
import { checkNetnsPath } from "../../lib/ip.js";
import type { Logger } from "../../lib/log.js";
import type { Allocated, Allocation, Pool } from "../../pool/pool.js";
import type { PodRef } from "../../pool/store.js";
import { badRequest, DaemonError } from "./errors.js";

export interface CniAddRequest {
  containerId: string;
  ifname: string;
  netns: string;
  /** The CNI network (the configuration's `name`): GC releases only its own network's attachments. */
  network: string;
  pod: { namespace: string; name: string; uid: string };
}

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface CniGcRequest {
  network: string;
  /** The attachments of this network the runtime still knows. */
  valid: Attachment[];
}

export interface CniAddResult {
  ip: string;
  prefix: 32;
  gateway: string;
  /** Dual stack: the pod's IPv6 address (a /128) and its gateway. */
  ip6?: string;
  gateway6?: string;
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
  del(req: Attachment): Promise<{ released: string | null }>;
  check(req: Attachment & { netns: string }): Promise<void>;
  gc(req: CniGcRequest): Promise<{ released: (Attachment & { ip: string })[] }>;
  /** Is an ADD or a DEL of this attachment running now? (Other releases keep away from it.) */
  busy(a: Attachment): boolean;
}

export const eniOf = (a: Allocation): EniRef => ({
  eniId: a.eniId,
  mac: a.mac,
  gateway: a.gateway,
  ...(a.gateway6 ? { gateway6: a.gateway6 } : {}),
});

/** What the Kubernetes side hears of the CNI path; each hook returns at once. */
export interface CniObserver {
  allocated?(pod: PodRef, a: { ip: string; eniId: string; ms: number }): void;
  allocationFailed?(pod: PodRef, error: Error): void;
  /** DEL holds the IP of this pod for its return under the same name (a StatefulSet pod). */
  holdsIp?(pod: PodRef): boolean;
  /**
   * The pod has its IP and is being wired: this runs alongside the kernel
   * work and ADD waits for both (NetworkPolicy: the gate that drops the
   * pod's traffic until its rules are in is in the kernel). If it rejects,
   * the ADD fails and its IP is released.
   */
  admitting?(pod: PodRef, ip: string): Promise<void>;
  /** ADD is about to answer: the pod's rules may follow. */
  wired?(pod: PodRef, ip: string): void;
  /** DEL released the pod's IP: its rules may go. */
  unwired?(ip: string): void;
}

const keyOf = (a: Attachment): string => `${a.containerId}/${a.ifname}`;

export function createCniHandlers(deps: {
  pool: Pool;
  datapath: Datapath;
  log: Logger;
  observer?: CniObserver;
  /**
   * GC never releases an attachment assigned less than this before the GC
   * arrived: the runtime lists its attachments before it runs GC, and an ADD
   * that started in between is not on the list.
   */
  gcMinAgeMs: number;
  now?(): number;
}): CniHandlers {
  const { pool, datapath, log } = deps;
  const observer = deps.observer ?? {};
  const now = deps.now ?? Date.now;
  const find = (containerId: string, ifname: string): Allocation | undefined =>
    pool.allocations().find((a) => a.containerId === containerId && a.ifname === ifname);
  /** ADDs and DELs running now, by attachment (a count: a runtime may retry one while it runs). */
  const running = new Map<string, number>();
  const tracked = async <T>(a: Attachment, work: () => Promise<T>): Promise<T> => {
    const key = keyOf(a);
    running.set(key, (running.get(key) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const n = (running.get(key) ?? 1) - 1;
      if (n > 0) running.set(key, n);
      else running.delete(key);
    }
  };

  const add: CniHandlers["add"] = (req) => tracked(req, () => addUntracked(req));
  const addUntracked: CniHandlers["add"] = async (req) => {
    if (!req.netns) throw badRequest("netns is required for ADD");
    checkNetnsPath(req.netns);
    const t0 = performance.now();
    let a: Allocated;
    try {
      // Made in memory at once: its durable write runs alongside the kernel work, and
      // the answer waits for both. A crash before the write lands leaves wiring for an
      // IP the store calls idle: the node's start repairs that before it serves (node.ts).
      a = await pool.allocate(
        {
          containerId: req.containerId,
          ifname: req.ifname,
          pod: req.pod,
          network: req.network,
          netns: req.netns,
        },
        { early: true },
      );
    } catch (e) {
      observer.allocationFailed?.(req.pod, e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
    const t1 = performance.now();
    const policy = observer.admitting?.(req.pod, a.ip);
    policy?.catch(() => {}); // awaited below, or moot if the wiring fails first
    a.durable?.catch(() => {}); // the same
    try {
      const w = await datapath.add({
        containerId: req.containerId,
        ifname: req.ifname,
        netns: req.netns,
        ip: a.ip,
        ...(a.ipv6 ? { ip6: a.ipv6 } : {}),
        eni: eniOf(a),
      });
      await a.durable;
      await policy;
      const t2 = performance.now();
      observer.allocated?.(req.pod, { ip: a.ip, eniId: a.eniId, ms: t2 - t0 });
      observer.wired?.(req.pod, a.ip);
      return {
        ip: a.ip,
        prefix: 32,
        gateway: POD_GATEWAY,
        ...(a.ipv6 ? { ip6: a.ipv6, gateway6: POD_GATEWAY6 } : {}),
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
      await datapath.del(req.containerId, req.ifname, a.ip, a.ipv6 ?? null).catch(() => {});
      await pool.release(req.containerId, req.ifname);
      observer.unwired?.(a.ip);
      observer.allocationFailed?.(req.pod, e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
  };

  const del: CniHandlers["del"] = (req) => tracked(req, () => delUntracked(req));
  const delUntracked: CniHandlers["del"] = async (req) => {
    const a = find(req.containerId, req.ifname);
    // Unrouting and the durable release are independent: run them together.
    const [, released] = await Promise.all([
      datapath.del(req.containerId, req.ifname, a?.ip ?? null, a?.ipv6 ?? null),
      pool.release(req.containerId, req.ifname, { hold: a ? (observer.holdsIp?.(a.pod) ?? false) : false }),
    ]);
    if (released) observer.unwired?.(released.ip);
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
      ...(a.ipv6 ? { ip6: a.ipv6 } : {}),
      eni: eniOf(a),
    });
    if (problems.length) throw new DaemonError("CheckFailed", `CHECK failed: ${problems.join("; ")}`);
  };

  // [spec 1.1.0] GC must leave alone what other networks hold (one plugin may serve several, as
  // under Multus): only this network's attachments, as the allocations were when the GC arrived,
  // minus those the runtime lists, those whose ADD or DEL is running and young ones.
  const gc: CniHandlers["gc"] = async (req) => {
    const began = now();
    const keep = new Set(req.valid.map(keyOf));
    const stale = pool
      .allocations()
      .filter(
        (a) =>
          a.network === req.network &&
          !keep.has(keyOf(a)) &&
          !running.has(keyOf(a)) &&
          began - a.assignedAt >= deps.gcMinAgeMs,
      );
    const released: (Attachment & { ip: string })[] = [];
    for (const a of stale) {
      // An ADD of it may have begun meanwhile (the runtime brings the attachment back): it stays.
      if (running.has(keyOf(a))) continue;
      const r = await del(a);
      if (r.released) released.push({ containerId: a.containerId, ifname: a.ifname, ip: r.released });
    }
    if (released.length) log.info("GC released attachments", { network: req.network, released });
    return { released };
  };

  return { add, del, check, gc, busy: (a) => running.has(keyOf(a)) };
}
