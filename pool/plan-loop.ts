// The loop that decides: on every kick it expires cooling IPs, serves the
// allocations waiting, asks the planner what to do and hands each action to
// the executor. A failed action keeps its ENI out of the plan for a while,
// twice as long per failure in a row.

import { delayFor, SCHEDULES } from "../lib/backoff.js";
import type { Logger } from "../lib/log.js";
import type { Datastore, IpRecord } from "./datastore/datastore.js";
import type { Executor } from "./executor.js";
import { describeError } from "./failures.js";
import { createInFlight, type InFlight, NOTHING_PENDING, type Pending } from "./in-flight.js";
import { type EniView, type PlanAction, type PlanInput, plan } from "./planner.js";
import type { PoolLimits, PoolTargets } from "./targets.js";

/** What the loop needs of its node (the pool's deps share it). */
export interface LoopNode {
  executor: Executor;
  log: Logger;
  now(): number;
  limits: PoolLimits;
  targets: PoolTargets;
  /** Free addresses per candidate vSwitch, refreshed by resync. */
  vSwitches(): { vSwitchId: string; available: number }[];
}

export interface PlanLoopDeps extends LoopNode {
  ds: Datastore;
  /** The allocations waiting for an IP, and a way to serve them. */
  waiting(): number;
  serveWaiters(): void;
}

export interface PlanLoop {
  /** Plan now (debounced). */
  kick(): void;
  track: InFlight["track"];
  busyEnis(): ReadonlySet<string>;
  /** What the planner sees now. */
  planInput(): PlanInput;
  stopped(): boolean;
  /** No more planning; what runs goes on (see `idle`). */
  stop(): void;
  idle(): Promise<void>;
}

interface EniBackoff {
  /** Is the ENI left out of the plan at `at`? */
  holds(eniId: string, at: number): boolean;
  succeeded(eniId: string): void;
  failed(eniId: string): void;
}

/** ENIs whose last planned action failed: left alone until `until`. */
function createEniBackoff(now: () => number): EniBackoff {
  const failed = new Map<string, { failures: number; until: number }>();
  return {
    holds: (eniId, at) => (failed.get(eniId)?.until ?? 0) > at,
    succeeded(eniId) {
      failed.delete(eniId);
    },
    failed(eniId) {
      const failures = (failed.get(eniId)?.failures ?? 0) + 1;
      failed.set(eniId, { failures, until: now() + delayFor(SCHEDULES.eniRetry, failures) });
    },
  };
}

/** What the planner sees now: the datastore's ENIs and IPs, what is in flight, the limits and targets. */
function planInputOf(deps: PlanLoopDeps, inFlight: InFlight, backoff: EniBackoff): PlanInput {
  const { ds, targets } = deps;
  const now = deps.now();
  const byEni = new Map<string, IpRecord[]>();
  for (const r of ds.ips()) {
    const list = byEni.get(r.eniId) ?? [];
    list.push(r);
    byEni.set(r.eniId, list);
  }
  const enis: EniView[] = ds.enis().map((e) => {
    const pending = inFlight.pending(e.eniId);
    return {
      ...(e.gateway6 ? { ipv6: true } : {}),
      eniId: e.eniId,
      vSwitchId: e.vSwitchId,
      phase: e.phase,
      primaryIp: e.primaryIp,
      ips: (byEni.get(e.eniId) ?? []).map((r) => ({
        ip: r.ip,
        phase: r.phase,
        idleSince: r.idleSince,
        ...(r.prefix === undefined ? {} : { prefix: r.prefix }),
        ...(r.ipv6 === undefined ? {} : { paired: true }),
      })),
      pendingIps: pending.ips,
      pendingPrefixes: pending.prefixes,
      busy: inFlight.busy().has(e.eniId) || backoff.holds(e.eniId, now),
    };
  });
  for (const [id, pending] of inFlight.creating())
    enis.push({
      eniId: id,
      vSwitchId: "",
      phase: "creating",
      primaryIp: "",
      ips: [],
      pendingIps: pending.ips,
      pendingPrefixes: pending.prefixes,
      busy: true,
    });
  return {
    now,
    mode: targets.mode,
    dual: targets.ipStack === "dual",
    enis,
    limits: deps.limits,
    targets: {
      minIdle: targets.minIdle,
      maxIdle: targets.maxIdle,
      maxIpsPerCall: targets.maxIpsPerCall,
      idleReclaimMs: targets.idleReclaimMs,
    },
    vSwitches: deps.vSwitches(),
    blockedVSwitches: ds.blockedVSwitches(),
    createBackoffUntil: ds.createBackoffUntil(),
    waiting: deps.waiting(),
  };
}

/** An action handed to the executor, as the pool's own operation (with what it brings). */
function runner(executor: Executor, inFlight: InFlight): (a: PlanAction) => Promise<void> {
  const on = (eniId: string | null, pending: Pending, work: () => Promise<void>): Promise<void> =>
    inFlight.track(eniId, pending, work);
  return (a) => {
    switch (a.kind) {
      case "create": {
        const prefixes = a.prefixCount ?? 0;
        return on(null, { ips: a.ipCount, prefixes }, () =>
          executor.create(a.vSwitchId, a.ipCount, prefixes),
        );
      }
      case "assign":
        return on(a.eniId, { ips: a.count, prefixes: 0 }, () => executor.assign(a.eniId, a.count));
      case "assignPrefixes":
        return on(a.eniId, { ips: 0, prefixes: a.count }, () => executor.assignPrefixes(a.eniId, a.count));
      case "assignIpv6":
        return on(a.eniId, NOTHING_PENDING, () => executor.assignIpv6(a.eniId, a.count));
      case "unassign":
        return on(a.eniId, NOTHING_PENDING, () => executor.unassign(a.eniId, a.ips));
      case "unassignPrefixes":
        return on(a.eniId, NOTHING_PENDING, () => executor.unassignPrefixes(a.eniId, a.prefixes));
      case "delete":
        return on(a.eniId, NOTHING_PENDING, () => executor.remove(a.eniId));
    }
  };
}

export function createPlanLoop(deps: PlanLoopDeps): PlanLoop {
  const { ds, executor, log } = deps;
  const inFlight = createInFlight(() => {
    deps.serveWaiters();
    kick();
  });
  const backoff = createEniBackoff(deps.now);
  const run = runner(executor, inFlight);
  let kickScheduled = false;
  let stopped = false;

  const planInput = (): PlanInput => planInputOf(deps, inFlight, backoff);

  const dispatch = (a: PlanAction): void => {
    log.debug("plan", { action: a });
    const work = run(a);
    // A failed action on an ENI is not planned again at once: a refusal that
    // persists would otherwise be retried as fast as the cloud answers.
    const eniId = a.kind === "create" ? null : a.eniId;
    work.then(
      () => {
        if (eniId) backoff.succeeded(eniId);
      },
      (err: unknown) => {
        log.warn("pool action failed", { action: a.kind, error: describeError(err) });
        if (eniId) backoff.failed(eniId);
      },
    );
  };

  const runPlan = (): void => {
    kickScheduled = false;
    if (stopped) return;
    // Not awaited: a lost write only means the IP cools again briefly after a restart.
    ds.write((tx) => tx.expireCooling()).catch((e: unknown) =>
      log.error("store write failed", { error: String(e) }),
    );
    deps.serveWaiters();
    for (const a of plan(planInput())) dispatch(a);
  };

  const kick = (): void => {
    if (kickScheduled || stopped) return;
    kickScheduled = true;
    setImmediate(runPlan);
  };

  return {
    kick,
    track: inFlight.track,
    busyEnis: inFlight.busy,
    planInput,
    stopped: () => stopped,
    stop() {
      stopped = true;
    },
    idle: inFlight.idle,
  };
}
