// The warm pool at run time: allocation and release (from memory, durable
// before they answer), the loop that asks the planner what to do and hands
// its actions to the executor, and waiters for an empty pool.

import { delayFor, SCHEDULES } from "../lib/backoff.js";
import type { Logger } from "../lib/log.js";
import { describeError, type Executor } from "./executor.js";
import { type EniView, type PlanAction, type PlanInput, plan, summarize } from "./planner.js";
import type { Owner, PodRef, Store, StoredEni, StoredIp } from "./store.js";

export interface PoolTargets {
  minIdle: number;
  maxIdle: number;
  cooldownMs: number;
  maxIpsPerCall: number;
  idleReclaimMs: number;
  allocateTimeoutMs: number;
  /** How long a StatefulSet pod's IP waits for the pod to return under the same name. */
  statefulHoldMs: number;
}

export interface Allocation {
  containerId: string;
  ifname: string;
  pod: PodRef;
  /** The CNI network whose ADD made it, and the pod's namespace path; "" when unknown (store.ts, Owner). */
  network: string;
  netns: string;
  ip: string;
  eniId: string;
  mac: string;
  vSwitchId: string;
  gateway: string;
  cidr: string;
  assignedAt: number;
}

export interface PoolSummary {
  enis: {
    eniId: string;
    phase: string;
    vSwitchId: string;
    mac: string;
    gateway: string;
    ips: number;
    assigned: number;
  }[];
  idle: number;
  assigned: number;
  cooling: number;
  releasing: number;
  pending: number;
  waiting: number;
  intents: number;
  limits: { maxSecondaryEnis: number; ipsPerEni: number };
  targets: { minIdle: number; maxIdle: number };
  blockedVSwitches: Record<string, number>;
  createBackoffUntil: number;
}

/** The pool is empty and the refill did not land in time: the caller should retry. */
export class TryAgainError extends Error {
  readonly code = "TryAgainLater";
  constructor(message: string) {
    super(message);
    this.name = "TryAgainError";
  }
}

export interface PoolDeps {
  store: Store;
  executor: Executor;
  log: Logger;
  now(): number;
  limits: { maxSecondaryEnis: number; ipsPerEni: number };
  targets: PoolTargets;
  /** Free addresses per candidate vSwitch, refreshed by resync. */
  vSwitches(): { vSwitchId: string; available: number }[];
  /** Told how each allocation ended and how long it took to its durable answer (metrics). */
  onAllocate?(result: AllocateResult, seconds: number): void;
}

/** ok: served from the warm pool; waited: the pool was empty and a refill served it; try_again: it was not. */
export type AllocateResult = "ok" | "waited" | "try_again";

/** What an allocation is for: the attachment, its pod, and for a CNI ADD its network and namespace path. */
export interface AllocateRequest {
  containerId: string;
  ifname: string;
  pod: PodRef;
  network?: string;
  netns?: string;
}

export interface Pool {
  allocate(req: AllocateRequest): Promise<Allocation>;
  /**
   * Cools the IP for the cooldown; with `hold`, for the StatefulSet hold too,
   * kept for the pod that returns under the same namespace and name.
   */
  release(containerId: string, ifname: string, opts?: { hold?: boolean }): Promise<Allocation | null>;
  allocations(): Allocation[];
  /** Every IP the pool tracks, with its ENI and phase. */
  ips(): { ip: string; eniId: string; phase: string }[];
  summary(): PoolSummary;
  /**
   * vSwitches a refresh saw with free addresses again: their block (after
   * IpNotEnough) ends now instead of after vSwitchBlockSeconds.
   */
  unblockVSwitches(vSwitchIds: string[]): Promise<void>;
  /** Plan now (debounced). */
  kick(): void;
  /** The ENIs a cloud operation of the pool is running on now (resync keeps away from them). */
  busyEnis(): ReadonlySet<string>;
  /** Bumped whenever an ENI's IP set may have changed by our own hand. */
  generation(eniId: string): number;
  /** Run a cloud operation as the pool's own (marks the ENI busy). */
  track<T>(eniId: string | null, pendingIps: number, work: () => Promise<T>): Promise<T>;
  /** Wait for every running cloud operation. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const keyOf = (containerId: string, ifname: string): string => `${containerId}/${ifname}`;
const podKey = (pod: PodRef): string => `${pod.namespace}/${pod.name}`;

export function toAllocation(ip: StoredIp, eni: StoredEni | undefined): Allocation | null {
  if (!ip.owner) return null;
  return {
    containerId: ip.owner.containerId,
    ifname: ip.owner.ifname,
    pod: ip.owner.pod,
    network: ip.owner.network,
    netns: ip.owner.netns,
    ip: ip.ip,
    eniId: ip.eniId,
    mac: eni?.mac ?? "",
    vSwitchId: eni?.vSwitchId ?? "",
    gateway: eni?.gateway ?? "",
    cidr: eni?.cidr ?? "",
    assignedAt: ip.assignedAt ?? 0,
  };
}

interface Waiter {
  key: string;
  owner: Owner;
  resolve(a: Allocation): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export function createPool(deps: PoolDeps): Pool {
  const { store, executor, log, targets } = deps;
  const busy = new Set<string>();
  const gens = new Map<string, number>();
  const pendingByEni = new Map<string, number>();
  const creating = new Map<string, number>(); // placeholder id → IPs it will bring
  const running = new Set<Promise<unknown>>();
  const inflightAlloc = new Map<string, Promise<Allocation>>();
  let waiters: Waiter[] = [];
  let kickScheduled = false;
  let stopped = false;
  let seq = 0;
  /** ENIs whose last planned action failed: left alone until `until` (doubling per failure). */
  const eniBackoff = new Map<string, { failures: number; until: number }>();

  const findOwned = (key: string): StoredIp | undefined =>
    Object.values(store.data.ips).find((r) => r.owner && keyOf(r.owner.containerId, r.owner.ifname) === key);

  const findHeld = (key: string): StoredIp | undefined =>
    Object.values(store.data.ips).find(
      (r) => r.phase === "cooling" && r.heldFor === key && store.data.enis[r.eniId]?.phase === "ready",
    );

  const bump = (eniId: string): void => {
    gens.set(eniId, (gens.get(eniId) ?? 0) + 1);
  };

  /** Pack pods onto the ENIs that already carry the most, so others can drain. */
  const pickIdle = (): StoredIp | undefined => {
    const load = new Map<string, number>();
    for (const r of Object.values(store.data.ips))
      if (r.phase !== "idle") load.set(r.eniId, (load.get(r.eniId) ?? 0) + 1);
    let best: StoredIp | undefined;
    for (const r of Object.values(store.data.ips)) {
      if (r.phase !== "idle" || store.data.enis[r.eniId]?.phase !== "ready") continue;
      if (
        !best ||
        (load.get(r.eniId) ?? 0) > (load.get(best.eniId) ?? 0) ||
        ((load.get(r.eniId) ?? 0) === (load.get(best.eniId) ?? 0) && r.idleSince < best.idleSince)
      )
        best = r;
    }
    return best;
  };

  const assignTo = async (ip: StoredIp, owner: Owner): Promise<Allocation> => {
    await store.update(() => {
      ip.phase = "assigned";
      ip.owner = owner;
      ip.assignedAt = deps.now();
      delete ip.coolUntil;
      delete ip.heldFor;
    });
    return toAllocation(ip, store.data.enis[ip.eniId])!;
  };

  const serveWaiters = (): void => {
    while (waiters.length > 0) {
      const ip = pickIdle();
      if (!ip) return;
      const w = waiters.shift()!;
      clearTimeout(w.timer);
      assignTo(ip, w.owner).then(w.resolve, w.reject);
    }
  };

  const expireCooling = (): void => {
    const now = deps.now();
    let changed = false;
    for (const r of Object.values(store.data.ips)) {
      if (r.phase === "cooling" && (r.coolUntil ?? 0) <= now) {
        r.phase = "idle";
        r.idleSince = r.coolUntil ?? now;
        delete r.coolUntil;
        delete r.heldFor;
        changed = true;
      }
    }
    // Not awaited: a lost write only means the IP cools again briefly after a restart.
    if (changed) store.flush().catch((e: unknown) => log.error("store write failed", { error: String(e) }));
  };

  const planInput = (): PlanInput => {
    const now = deps.now();
    const byEni = new Map<string, StoredIp[]>();
    for (const r of Object.values(store.data.ips)) {
      const list = byEni.get(r.eniId) ?? [];
      list.push(r);
      byEni.set(r.eniId, list);
    }
    const enis: EniView[] = Object.values(store.data.enis).map((e) => ({
      eniId: e.eniId,
      vSwitchId: e.vSwitchId,
      phase: e.phase,
      primaryIp: e.primaryIp,
      ips: (byEni.get(e.eniId) ?? []).map((r) => ({ ip: r.ip, phase: r.phase, idleSince: r.idleSince })),
      pendingIps: pendingByEni.get(e.eniId) ?? 0,
      busy: busy.has(e.eniId) || (eniBackoff.get(e.eniId)?.until ?? 0) > now,
    }));
    for (const [id, n] of creating)
      enis.push({
        eniId: id,
        vSwitchId: "",
        phase: "creating",
        primaryIp: "",
        ips: [],
        pendingIps: n,
        busy: true,
      });
    return {
      now,
      enis,
      limits: deps.limits,
      targets: {
        minIdle: targets.minIdle,
        maxIdle: targets.maxIdle,
        maxIpsPerCall: targets.maxIpsPerCall,
        idleReclaimMs: targets.idleReclaimMs,
      },
      vSwitches: deps.vSwitches(),
      blockedVSwitches: store.data.blockedVSwitches,
      createBackoffUntil: store.data.createBackoffUntil,
      waiting: waiters.length,
    };
  };

  const track = <T>(eniId: string | null, pendingIps: number, work: () => Promise<T>): Promise<T> => {
    const placeholder = eniId === null ? `creating-${++seq}` : null;
    if (placeholder) creating.set(placeholder, pendingIps);
    else {
      busy.add(eniId!);
      pendingByEni.set(eniId!, pendingIps);
      bump(eniId!);
    }
    const p = work().finally(() => {
      if (placeholder) creating.delete(placeholder);
      else {
        busy.delete(eniId!);
        pendingByEni.delete(eniId!);
        bump(eniId!);
      }
      running.delete(p);
      serveWaiters();
      kick();
    });
    running.add(p);
    return p;
  };

  const dispatch = (a: PlanAction): void => {
    log.debug("plan", { action: a });
    const work =
      a.kind === "create"
        ? track(null, a.ipCount, () => executor.create(a.vSwitchId, a.ipCount))
        : a.kind === "assign"
          ? track(a.eniId, a.count, () => executor.assign(a.eniId, a.count))
          : a.kind === "unassign"
            ? track(a.eniId, 0, () => executor.unassign(a.eniId, a.ips))
            : track(a.eniId, 0, () => executor.remove(a.eniId));
    // A failed action on an ENI is not planned again at once: a refusal that
    // persists would otherwise be retried as fast as the cloud answers.
    const eniId = a.kind === "create" ? null : a.eniId;
    work.then(
      () => {
        if (eniId) eniBackoff.delete(eniId);
      },
      (err: unknown) => {
        log.warn("pool action failed", { action: a.kind, error: describeError(err) });
        if (!eniId) return;
        const failures = (eniBackoff.get(eniId)?.failures ?? 0) + 1;
        eniBackoff.set(eniId, { failures, until: deps.now() + delayFor(SCHEDULES.eniRetry, failures) });
      },
    );
  };

  const runPlan = (): void => {
    kickScheduled = false;
    if (stopped) return;
    expireCooling();
    serveWaiters();
    for (const a of plan(planInput())) dispatch(a);
  };

  const kick = (): void => {
    if (kickScheduled || stopped) return;
    kickScheduled = true;
    setImmediate(runPlan);
  };

  /** Why the pool could not serve in time, for the ADD's error. */
  const whyEmpty = (): string => {
    const now = deps.now();
    const blocked = Object.entries(store.data.blockedVSwitches).filter(([, until]) => until > now);
    if (blocked.length > 0)
      return blocked
        .map(
          ([id, until]) =>
            `vSwitch ${id} has no free addresses (used again when a resync sees some, at the latest in ${Math.ceil((until - now) / 1000)} s)`,
        )
        .join("; ");
    if (store.data.createBackoffUntil > now) return "creating ENIs is backing off after cloud errors";
    return "the pool is refilling";
  };

  /**
   * The same attachment asked again: its allocation, with the namespace and
   * network of this request when they differ (a runtime that repeats an ADD
   * for a new sandbox namespace): what it records must be what is wired.
   */
  const reallocate = async (rec: StoredIp, req: AllocateRequest): Promise<Allocation> => {
    const o = rec.owner!;
    const netns = req.netns || o.netns;
    const network = req.network || o.network;
    if (netns !== o.netns || network !== o.network)
      await store.update(() => {
        rec.owner = { ...o, netns, network };
      });
    return toAllocation(rec, store.data.enis[rec.eniId])!;
  };

  const allocate: Pool["allocate"] = (req) => {
    const key = keyOf(req.containerId, req.ifname);
    const owned = findOwned(key);
    if (owned) return reallocate(owned, req);
    const inflight = inflightAlloc.get(key);
    if (inflight) return inflight;
    const started = performance.now();
    const told = (result: AllocateResult): void =>
      deps.onAllocate?.(result, (performance.now() - started) / 1000);
    const owner: Owner = {
      containerId: req.containerId,
      ifname: req.ifname,
      pod: req.pod,
      network: req.network ?? "",
      netns: req.netns ?? "",
    };
    const p = (async (): Promise<Allocation> => {
      const held = req.pod.name ? findHeld(podKey(req.pod)) : undefined;
      const ip = held ?? (waiters.length === 0 ? pickIdle() : undefined);
      if (ip) {
        const a = await assignTo(ip, owner);
        told("ok");
        kick();
        return a;
      }
      if (stopped) {
        told("try_again");
        throw new TryAgainError("the daemon is shutting down");
      }
      return new Promise<Allocation>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w.key !== key);
          told("try_again");
          reject(
            new TryAgainError(`no IP became available within ${targets.allocateTimeoutMs} ms; ${whyEmpty()}`),
          );
        }, targets.allocateTimeoutMs);
        waiters.push({
          key,
          owner,
          resolve: (a) => {
            told("waited");
            resolve(a);
          },
          reject: (e) => {
            told("try_again");
            reject(e);
          },
          timer,
        });
        kick();
      });
    })().finally(() => inflightAlloc.delete(key));
    inflightAlloc.set(key, p);
    return p;
  };

  const release: Pool["release"] = async (containerId, ifname, opts) => {
    const key = keyOf(containerId, ifname);
    // A release that races an allocation of the same key waits for it, then undoes it.
    await inflightAlloc.get(key)?.catch(() => {});
    const rec = findOwned(key);
    if (!rec) return null;
    const before = toAllocation(rec, store.data.enis[rec.eniId]);
    const hold = opts?.hold === true && rec.owner?.pod.name ? podKey(rec.owner.pod) : null;
    await store.update(() => {
      rec.phase = "cooling";
      rec.coolUntil =
        deps.now() + (hold ? Math.max(targets.cooldownMs, targets.statefulHoldMs) : targets.cooldownMs);
      if (hold) rec.heldFor = hold;
      else delete rec.heldFor;
      delete rec.owner;
      delete rec.assignedAt;
    });
    kick();
    return before;
  };

  const summary = (): PoolSummary => {
    const ips = Object.values(store.data.ips);
    const count = (phase: string): number => ips.filter((r) => r.phase === phase).length;
    const s = summarize(planInput());
    return {
      enis: Object.values(store.data.enis).map((e) => ({
        eniId: e.eniId,
        phase: e.phase,
        vSwitchId: e.vSwitchId,
        mac: e.mac,
        gateway: e.gateway,
        ips: ips.filter((r) => r.eniId === e.eniId).length,
        assigned: ips.filter((r) => r.eniId === e.eniId && r.phase === "assigned").length,
      })),
      idle: s.idle,
      assigned: count("assigned"),
      cooling: count("cooling"),
      releasing: count("releasing"),
      pending: s.pending,
      waiting: waiters.length,
      intents: Object.keys(store.data.intents).length,
      limits: deps.limits,
      targets: { minIdle: targets.minIdle, maxIdle: targets.maxIdle },
      blockedVSwitches: { ...store.data.blockedVSwitches },
      createBackoffUntil: store.data.createBackoffUntil,
    };
  };

  const unblockVSwitches: Pool["unblockVSwitches"] = async (vSwitchIds) => {
    const ended = vSwitchIds.filter((id) => (store.data.blockedVSwitches[id] ?? 0) > deps.now());
    if (ended.length === 0) return;
    await store.update((d) => {
      for (const id of ended) delete d.blockedVSwitches[id];
    });
    log.info("vSwitch has free addresses again; using it", { vSwitchIds: ended });
    kick();
  };

  const idle = async (): Promise<void> => {
    while (running.size > 0) await Promise.allSettled([...running]);
  };

  return {
    allocate,
    release,
    allocations: () =>
      Object.values(store.data.ips)
        .map((r) => toAllocation(r, store.data.enis[r.eniId]))
        .filter((a): a is Allocation => a !== null),
    ips: () => Object.values(store.data.ips).map((r) => ({ ip: r.ip, eniId: r.eniId, phase: r.phase })),
    summary,
    unblockVSwitches,
    kick,
    busyEnis: () => busy,
    generation: (eniId) => gens.get(eniId) ?? 0,
    track,
    idle,
    async stop() {
      stopped = true;
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new TryAgainError("the daemon is shutting down"));
      }
      waiters = [];
      await idle();
      await store.flush();
    },
  };
}
