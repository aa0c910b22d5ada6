// Allocations waiting while an empty pool refills: served first come first
// served as IPs turn idle, failed with TryAgainError when none came within
// allocateTimeoutMs (saying why the pool is empty) or when the daemon stops.

import { type AllocateResult, type Allocation, TryAgainError } from "./allocation.js";
import type { DatastoreView, IpRecord } from "./datastore/datastore.js";
import type { Owner } from "./store.js";
import type { PoolMode } from "./targets.js";

export interface WaitersDeps {
  ds: DatastoreView;
  now(): number;
  /** Read at every wait: the node's targets may change while it runs. */
  targets: { allocateTimeoutMs: number; mode: PoolMode };
  /** An idle IP to give, if there is one. */
  pickIdle(): IpRecord | undefined;
  /** Give the IP to the owner, durably. */
  assign(ip: IpRecord, owner: Owner): Promise<Allocation>;
  /** Plan now (debounced): a waiter wants a refill. */
  kick(): void;
}

export interface Waiters {
  /** Wait for an IP for the attachment `key`; `told` hears how the wait ended. */
  wait(key: string, owner: Owner, told: (result: AllocateResult) => void): Promise<Allocation>;
  /** Give idle IPs to the waiters, oldest first. */
  serve(): void;
  count(): number;
  /** Fail every waiter: the daemon is shutting down. */
  rejectAll(): void;
}

interface Waiter {
  key: string;
  owner: Owner;
  resolve(a: Allocation): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** Why the pool could not serve in time, for the ADD's error. */
function whyEmpty(ds: DatastoreView, now: number, mode: PoolMode): string {
  const blocked = Object.entries(ds.blockedVSwitches()).filter(([, until]) => until > now);
  const free =
    mode === "prefix"
      ? "no free IPv4 prefixes (its reserved CIDR blocks are used up or missing; used again"
      : "no free addresses (used again when a resync sees some,";
  if (blocked.length > 0)
    return blocked
      .map(
        ([id, until]) => `vSwitch ${id} has ${free} at the latest in ${Math.ceil((until - now) / 1000)} s)`,
      )
      .join("; ");
  if (ds.createBackoffUntil() > now) return "creating ENIs is backing off after cloud errors";
  return "the pool is refilling";
}

export function createWaiters(deps: WaitersDeps): Waiters {
  let waiters: Waiter[] = [];

  const wait: Waiters["wait"] = (key, owner, told) =>
    new Promise<Allocation>((resolve, reject) => {
      const { targets } = deps;
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.key !== key);
        told("try_again");
        const why = whyEmpty(deps.ds, deps.now(), targets.mode);
        reject(new TryAgainError(`no IP became available within ${targets.allocateTimeoutMs} ms; ${why}`));
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
      deps.kick();
    });

  return {
    wait,
    serve() {
      while (waiters.length > 0) {
        const ip = deps.pickIdle();
        if (!ip) return;
        const w = waiters.shift()!;
        clearTimeout(w.timer);
        deps.assign(ip, w.owner).then(w.resolve, w.reject);
      }
    },
    count: () => waiters.length,
    rejectAll() {
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new TryAgainError("the daemon is shutting down"));
      }
      waiters = [];
    },
  };
}
