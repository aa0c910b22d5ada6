// Allocation and release, served from memory and durable before they
// answer: a held IP for a returning StatefulSet pod, else an idle one, else
// a wait for the refill (waiters.ts).

import {
  type AllocateRequest,
  type AllocateResult,
  type Allocation,
  keyOf,
  ownerOf,
  TryAgainError,
  toAllocation,
} from "./allocation.js";
import {
  type Datastore,
  type DatastoreView,
  type IpRecord,
  podKey,
  type Transitions,
} from "./datastore/datastore.js";
import type { Owner } from "./store.js";
import type { PoolMode, PoolTargets } from "./targets.js";
import { createWaiters } from "./waiters.js";

export interface AllocatorDeps {
  ds: Datastore;
  now(): number;
  /** Read at every use: the node's targets may change while it runs. */
  targets: PoolTargets;
  /** Plan now (debounced). */
  kick(): void;
  /** Is the pool stopping? */
  stopped(): boolean;
  onAllocate?(result: AllocateResult, seconds: number): void;
}

/**
 * `early`: resolve as soon as the allocation is made in memory, with its
 * durable write still under way (`durable`); for a caller that does other
 * work meanwhile and tells no one before `durable` resolves. A wait for an
 * IP always resolves durably.
 */
export interface AllocateOptions {
  early?: boolean;
}

/** An allocation, and when its write is on disk (at once unless `early`). */
export type Allocated = Allocation & { durable?: Promise<void> };

export interface Allocator {
  allocate(req: AllocateRequest, opts?: AllocateOptions): Promise<Allocated>;
  release(containerId: string, ifname: string, opts?: { hold?: boolean }): Promise<Allocation | null>;
  /** Give idle IPs to waiting allocations, first come first served. */
  serveWaiters(): void;
  /** How many allocations wait for an IP now. */
  waiting(): number;
  /** Fail every waiting allocation: the daemon is shutting down. */
  rejectWaiters(): void;
}

const ownedBy = (ds: DatastoreView, key: string): IpRecord | undefined =>
  ds.ips().find((r) => r.owner && keyOf(r.owner.containerId, r.owner.ifname) === key);

/** A cooling IP held for the StatefulSet pod `key` ("namespace/name"), on a ready ENI. */
const heldIpOf = (ds: DatastoreView, key: string): IpRecord | undefined =>
  ds.ips().find((r) => r.phase === "cooling" && r.heldFor === key && ds.eni(r.eniId)?.phase === "ready");

/**
 * An idle IP on a ready ENI, packed so that whole units drain: of the mode's
 * own unit first (what the other mode left drains), then of the prefix with
 * the most pods, then of the ENI that carries the most pods, idle the longest.
 */
function pickIdle(ds: DatastoreView, mode: PoolMode, dual: boolean): IpRecord | undefined {
  const ips = ds.ips();
  const eniLoad = new Map<string, number>();
  const prefixPods = new Map<string, number>();
  for (const r of ips) {
    if (r.phase !== "idle") eniLoad.set(r.eniId, (eniLoad.get(r.eniId) ?? 0) + 1);
    if (r.phase === "assigned" && r.prefix !== undefined)
      prefixPods.set(r.prefix, (prefixPods.get(r.prefix) ?? 0) + 1);
  }
  const rank = (r: IpRecord): number[] => [
    (r.prefix !== undefined) === (mode === "prefix") ? 1 : 0,
    r.prefix === undefined ? 0 : (prefixPods.get(r.prefix) ?? 0),
    eniLoad.get(r.eniId) ?? 0,
    -r.idleSince,
  ];
  let best: IpRecord | undefined;
  let bestRank: number[] = [];
  for (const r of ips) {
    if (r.phase !== "idle" || ds.eni(r.eniId)?.phase !== "ready" || (dual && r.ipv6 === undefined)) continue;
    const k = rank(r);
    if (!best || before(k, bestRank)) {
      best = r;
      bestRank = k;
    }
  }
  return best;
}

/** Does rank `a` come before rank `b` (higher first, position by position)? */
function before(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) > (b[i] ?? 0);
  return false;
}

export function createAllocator(deps: AllocatorDeps): Allocator {
  const { ds, targets } = deps;
  const inflight = new Map<string, Promise<Allocated>>();
  const dual = (): boolean => targets.ipStack === "dual";
  /** The pod's owner record; in dual stack with the IPv6 paired with its IPv4. */
  const ownerFor = (ip: IpRecord, owner: Owner): Owner =>
    dual() && ip.ipv6 !== undefined ? { ...owner, ipv6: ip.ipv6 } : owner;
  const assignTx = (tx: Transitions, ip: IpRecord, owner: Owner): Allocation =>
    toAllocation(tx.assign(ip.ip, ownerFor(ip, owner)), ds.eni(ip.eniId))!;
  const assign = (ip: IpRecord, owner: Owner): Promise<Allocation> =>
    ds.write((tx) => assignTx(tx, ip, owner));
  const waiters = createWaiters({
    ds,
    now: deps.now,
    targets,
    pickIdle: () => pickIdle(ds, targets.mode, dual()),
    assign,
    kick: deps.kick,
  });

  /** A new allocation: a held IP, an idle one, or a wait. */
  const serve = async (key: string, req: AllocateRequest, early: boolean): Promise<Allocated> => {
    const started = performance.now();
    const told = (result: AllocateResult): void =>
      deps.onAllocate?.(result, (performance.now() - started) / 1000);
    const owner = ownerOf(req);
    const held = req.pod.name ? heldIpOf(ds, podKey(req.pod)) : undefined;
    const ip = held ?? (waiters.count() === 0 ? pickIdle(ds, targets.mode, dual()) : undefined);
    if (ip && early) {
      const { value, durable } = ds.writeEarly((tx) => assignTx(tx, ip, owner));
      told("ok");
      deps.kick();
      return { ...value, durable };
    }
    if (ip) {
      const a = await assign(ip, owner);
      told("ok");
      deps.kick();
      return a;
    }
    if (deps.stopped()) {
      told("try_again");
      throw new TryAgainError("the daemon is shutting down");
    }
    return waiters.wait(key, owner, told);
  };

  /**
   * The same attachment asked again: its allocation, with the namespace and
   * network of this request when they differ (a runtime that repeats an ADD
   * for a new sandbox namespace): what it records must be what is wired.
   */
  const reown = async (rec: IpRecord, req: AllocateRequest): Promise<Allocation> => {
    const o = rec.owner!;
    const change = { netns: req.netns || o.netns, network: req.network || o.network };
    if (change.netns === o.netns && change.network === o.network)
      return toAllocation(rec, ds.eni(rec.eniId))!;
    return ds.write((tx) => toAllocation(tx.reown(rec.ip, change), ds.eni(rec.eniId))!);
  };

  const allocate: Allocator["allocate"] = (req, opts) => {
    const key = keyOf(req.containerId, req.ifname);
    const owned = ownedBy(ds, key);
    if (owned) return reown(owned, req);
    const running = inflight.get(key);
    if (running) return running;
    const p = serve(key, req, opts?.early === true).finally(() => inflight.delete(key));
    inflight.set(key, p);
    return p;
  };

  const release: Allocator["release"] = async (containerId, ifname, opts) => {
    const key = keyOf(containerId, ifname);
    // A release that races an allocation of the same key waits for it, then undoes it.
    await inflight.get(key)?.catch(() => {});
    const rec = ownedBy(ds, key);
    if (!rec) return null;
    const before = toAllocation(rec, ds.eni(rec.eniId));
    const heldFor = opts?.hold === true && rec.owner?.pod.name ? podKey(rec.owner.pod) : null;
    const forMs = heldFor ? Math.max(targets.cooldownMs, targets.statefulHoldMs) : targets.cooldownMs;
    await ds.write((tx) => tx.cool(rec.ip, { forMs, heldFor }));
    deps.kick();
    return before;
  };

  return {
    allocate,
    release,
    serveWaiters: waiters.serve,
    waiting: waiters.count,
    rejectWaiters: waiters.rejectAll,
  };
}
