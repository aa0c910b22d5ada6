// The warm pool at run time, put together: the datastore (its state), the
// allocator (allocation, release and waiters), the plan loop (what to ask the
// cloud for, handed to the executor) and the views of it all.

import type { AllocateRequest, AllocateResult, Allocation } from "./allocation.js";
import { type Allocated, type AllocateOptions, createAllocator } from "./allocator.js";
import type { Datastore } from "./datastore/datastore.js";
import type { Pending } from "./in-flight.js";
import { createPlanLoop, type LoopNode } from "./plan-loop.js";
import { allocationsOf, ipsOf, type PoolIp, type PoolSummary, poolSummary } from "./views.js";

export {
  type AllocateRequest,
  type AllocateResult,
  type Allocation,
  TryAgainError,
  toAllocation,
} from "./allocation.js";
export type { Allocated, AllocateOptions } from "./allocator.js";
export type { Pending } from "./in-flight.js";
export type { PoolLimits, PoolMode, PoolTargets } from "./targets.js";
export type { PoolIp, PoolSummary } from "./views.js";

/** The executor, log, clock, limits, targets and vSwitches of the node (LoopNode), and its datastore. */
export interface PoolDeps extends LoopNode {
  datastore: Datastore;
  /** Told how each allocation ended and how long it took to its durable answer (metrics). */
  onAllocate?(result: AllocateResult, seconds: number): void;
}

export interface Pool {
  allocate(req: AllocateRequest, opts?: AllocateOptions): Promise<Allocated>;
  /**
   * Cools the IP for the cooldown; with `hold`, for the StatefulSet hold too,
   * kept for the pod that returns under the same namespace and name.
   */
  release(containerId: string, ifname: string, opts?: { hold?: boolean }): Promise<Allocation | null>;
  allocations(): Allocation[];
  /** Every IP the pool tracks, with its ENI and phase. */
  ips(): PoolIp[];
  summary(): PoolSummary;
  /**
   * vSwitches a refresh saw with free addresses again: their block (after
   * IpNotEnough) ends now instead of after vSwitchBlockSeconds.
   */
  unblockVSwitches(vSwitchIds: string[]): Promise<void>;
  /**
   * vSwitches a refresh saw without what the mode needs (prefix mode: no
   * free prefix in their reserved blocks): blocked for `forMs`, as an
   * IpNotEnough would block them. Those not blocked before.
   */
  blockVSwitches(vSwitchIds: string[], forMs: number): Promise<string[]>;
  /** Plan now (debounced). */
  kick(): void;
  /** The ENIs a cloud operation of the pool is running on now (resync keeps away from them). */
  busyEnis(): ReadonlySet<string>;
  /** Run a cloud operation as the pool's own (marks the ENI busy). */
  track<T>(eniId: string | null, pending: Pending, work: () => Promise<T>): Promise<T>;
  /** Wait for every running cloud operation. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export function createPool(deps: PoolDeps): Pool {
  const { datastore: ds, log, limits, targets } = deps;
  const allocator = createAllocator({
    ds,
    now: deps.now,
    targets,
    kick: () => loop.kick(),
    stopped: () => loop.stopped(),
    ...(deps.onAllocate ? { onAllocate: deps.onAllocate } : {}),
  });
  const loop = createPlanLoop({
    ds,
    executor: deps.executor,
    log,
    now: deps.now,
    limits,
    targets,
    vSwitches: deps.vSwitches,
    waiting: allocator.waiting,
    serveWaiters: allocator.serveWaiters,
  });

  const unblockVSwitches: Pool["unblockVSwitches"] = async (vSwitchIds) => {
    const blocked = ds.blockedVSwitches();
    const ended = vSwitchIds.filter((id) => (blocked[id] ?? 0) > deps.now());
    if (ended.length === 0) return;
    await ds.write((tx) => tx.unblockVSwitches(ended));
    log.info("vSwitch has free addresses again; using it", { vSwitchIds: ended });
    loop.kick();
  };

  const blockVSwitches: Pool["blockVSwitches"] = async (vSwitchIds, forMs) => {
    const blocked = ds.blockedVSwitches();
    const fresh = vSwitchIds.filter((id) => (blocked[id] ?? 0) <= deps.now());
    if (fresh.length > 0)
      await ds.write((tx) => {
        for (const id of fresh) tx.blockVSwitch(id, forMs);
      });
    return fresh;
  };

  return {
    allocate: allocator.allocate,
    release: allocator.release,
    allocations: () => allocationsOf(ds),
    ips: () => ipsOf(ds),
    summary: () => poolSummary(ds, loop.planInput(), limits, targets),
    unblockVSwitches,
    blockVSwitches,
    kick: loop.kick,
    busyEnis: loop.busyEnis,
    track: loop.track,
    idle: loop.idle,
    async stop() {
      loop.stop();
      allocator.rejectWaiters();
      await loop.idle();
      await ds.flush();
    },
  };
}
