// IPs of pods whose namespace is gone. A DEL that finds the daemon down
// succeeds without it (the plugin removes the host side), so the pod's IP
// stays allocated; outside Kubernetes nothing else would ever free it
// (containerd 1.6 and podman 4 send no CNI GC). Runtimes remove a pod's
// namespace after its last DEL, so an allocation whose namespace path has
// been missing for the whole grace is released as a DEL would release it.
// A namespace that exists, or one this daemon cannot judge, is never a
// reason to release.

import { lstat } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../lib/log.js";
import type { Allocation } from "../../pool/pool.js";

/** present: the path exists; gone: it is missing while its folder is there; unknown: anything else. */
export type NetnsState = "present" | "gone" | "unknown";

const key = (a: { containerId: string; ifname: string }): string => `${a.containerId}/${a.ifname}`;

/**
 * The decision, pure: which allocations to release now, and the next
 * `missingSince` (allocation key → when its namespace was first seen gone).
 * An allocation without a namespace path (made before they were stored, or
 * by the pool's own API), or whose ADD or DEL is running, is never released.
 */
export function netnsGoneReleases(input: {
  allocations: Pick<Allocation, "containerId" | "ifname" | "netns">[];
  state: ReadonlyMap<string, NetnsState>;
  busy(a: { containerId: string; ifname: string }): boolean;
  missingSince: ReadonlyMap<string, number>;
  now: number;
  graceMs: number;
}): { release: string[]; missingSince: Map<string, number> } {
  const next = new Map<string, number>();
  const release: string[] = [];
  for (const a of input.allocations) {
    if (!a.netns || input.busy(a) || input.state.get(a.netns) !== "gone") continue;
    const since = input.missingSince.get(key(a)) ?? input.now;
    next.set(key(a), since);
    if (input.now - since >= input.graceMs) release.push(key(a));
  }
  return { release, missingSince: next };
}

/**
 * A path is gone only when lstat says ENOENT and its folder exists: a
 * folder this process cannot see (another mount namespace, a path under
 * /proc of a process that ended) says nothing about the namespace.
 */
export async function netnsState(path: string): Promise<NetnsState> {
  const err = await lstat(path).then(
    () => null,
    (e: NodeJS.ErrnoException) => e.code ?? "error",
  );
  if (err === null) return "present";
  if (err !== "ENOENT") return "unknown";
  return lstat(dirname(path)).then(
    (st) => (st.isDirectory() ? "gone" : "unknown"),
    () => "unknown",
  );
}

export interface NetnsGoneWatch {
  /** One pass now: reads every allocation's namespace, releases those gone for the grace. */
  check(): Promise<string[]>;
  stop(): void;
}

export function watchNetnsGone(deps: {
  allocations(): Allocation[];
  busy(a: { containerId: string; ifname: string }): boolean;
  /** Unwire and release, as a DEL does. */
  release(a: Allocation): Promise<void>;
  graceMs: number;
  periodMs: number;
  log: Logger;
  now?(): number;
  state?(path: string): Promise<NetnsState>;
  onRelease?(a: Allocation): void;
}): NetnsGoneWatch {
  const now = deps.now ?? Date.now;
  const state = deps.state ?? netnsState;
  let missingSince = new Map<string, number>();
  let running: Promise<string[]> | null = null;

  const once = async (): Promise<string[]> => {
    const paths = [...new Set(deps.allocations().map((a) => a.netns))].filter((p) => p !== "");
    const states = new Map(await Promise.all(paths.map(async (p) => [p, await state(p)] as const)));
    // The allocations again: one released or re-added while the paths were read is judged as it is now.
    const current = deps.allocations();
    const next = netnsGoneReleases({
      allocations: current,
      state: states,
      busy: deps.busy,
      missingSince,
      now: now(),
      graceMs: deps.graceMs,
    });
    missingSince = next.missingSince;
    const released: string[] = [];
    for (const k of next.release) {
      const a = current.find((x) => key(x) === k);
      if (!a || deps.busy(a)) continue;
      await deps.release(a);
      missingSince.delete(k);
      released.push(a.ip);
      deps.onRelease?.(a);
      deps.log.info("released the IP of a pod whose network namespace is gone", {
        ip: a.ip,
        containerId: a.containerId,
        ifname: a.ifname,
        netns: a.netns,
        network: a.network || undefined,
      });
    }
    return released;
  };

  const check = (): Promise<string[]> => {
    running ??= once().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => {
    check().catch((e: unknown) =>
      deps.log.warn("release of IPs whose namespace is gone failed", { error: String(e) }),
    );
  }, deps.periodMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
