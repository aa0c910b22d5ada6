// Backoff: every schedule eniway waits by, named in one table, and retry()
// with exponential backoff and full jitter, bounded by a time budget.

import { sleep } from "./time.js";

/**
 * The n-th wait (n from 1) is min(capMs, baseMs · factor^(n−1)); with full
 * jitter it is uniform in [0, that).
 */
export interface Schedule {
  baseMs: number;
  factor: number;
  capMs: number;
  jitter: "full" | "none";
}

/** A schedule for retry(): also when to give up. */
export interface RetrySchedule extends Schedule {
  /** Total time budget from the first attempt (ms): no wait may end past it. */
  maxElapsedMs: number;
  /** Attempts at most, the first included. */
  maxAttempts: number;
}

export interface Schedules {
  cloudApi: RetrySchedule;
  metadata: RetrySchedule;
  detachPoll: Schedule;
  eniRetry: Schedule;
  createRetry: Schedule;
  kubeWatch: Schedule;
}

export const SCHEDULES: Readonly<Schedules> = {
  /** Cloud API calls that may succeed later (Throttling, 5xx, timeouts, …). */
  cloudApi: { baseMs: 200, factor: 2, capMs: 5000, jitter: "full", maxElapsedMs: 30_000, maxAttempts: 10 },
  /** Metadata reads after a 429, a 5xx, a timeout or a refused connection. */
  metadata: { baseMs: 100, factor: 2, capMs: 1000, jitter: "full", maxElapsedMs: 10_000, maxAttempts: 4 },
  /** Polling DescribeNetworkInterfaces until an ENI is detached, before it is deleted. */
  detachPoll: { baseMs: 100, factor: 1.5, capMs: 2000, jitter: "none" },
  /** An ENI whose planned action (assign, unassign, delete) failed is left alone this long. */
  eniRetry: { baseMs: 1000, factor: 2, capMs: 60_000, jitter: "none" },
  /** Creates pause after a failed create or attach (the cap is `pool.eniLimitBackoffSeconds`). */
  createRetry: { baseMs: 1000, factor: 2, capMs: 60_000, jitter: "none" },
  /** Listing or watching pods again after the API server failed or went away. */
  kubeWatch: { baseMs: 500, factor: 2, capMs: 10_000, jitter: "full" },
};

/** The wait after the attempt-th failure (attempt from 1). */
export function delayFor(s: Schedule, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(s.capMs, s.baseMs * s.factor ** Math.min(Math.max(0, attempt - 1), 64));
  return s.jitter === "full" ? Math.floor(random() * ceiling) : ceiling;
}

export interface RetryInfo {
  /** The attempt that just failed, from 1. */
  attempt: number;
  /** How long we sleep before the next attempt. */
  delayMs: number;
  error: unknown;
}

/** Any field of the schedule may be overridden; the rest comes from SCHEDULES.cloudApi. */
export interface RetryOptions extends Partial<RetrySchedule> {
  /** Which errors are worth another attempt. */
  isRetryable: (err: unknown) => boolean;
  onRetry?: (info: RetryInfo) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1). */
  random?: () => number;
  now?: () => number;
  /** Stops further attempts: the last error is rethrown. */
  signal?: AbortSignal;
}

/**
 * Calls fn until it succeeds, fails with a non-retryable error, runs out of
 * attempts, or the next backoff would end past the time budget; then rethrows
 * the last error.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const d = SCHEDULES.cloudApi;
  const schedule: RetrySchedule = {
    baseMs: opts.baseMs ?? d.baseMs,
    factor: opts.factor ?? d.factor,
    capMs: opts.capMs ?? d.capMs,
    jitter: opts.jitter ?? d.jitter,
    maxElapsedMs: opts.maxElapsedMs ?? d.maxElapsedMs,
    maxAttempts: opts.maxAttempts ?? d.maxAttempts,
  };
  const doSleep = opts.sleep ?? sleep;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const deadline = now() + schedule.maxElapsedMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= schedule.maxAttempts || opts.signal?.aborted || !opts.isRetryable(err)) throw err;
      const delayMs = delayFor(schedule, attempt, random);
      if (now() + delayMs > deadline) throw err;
      opts.onRetry?.({ attempt, delayMs, error: err });
      await doSleep(delayMs, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}
