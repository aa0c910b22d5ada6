// Retry with exponential backoff and full jitter, bounded by a total time budget.

export interface RetryInfo {
  /** The attempt that just failed, from 1. */
  attempt: number;
  /** How long we sleep before the next attempt. */
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  /** Which errors are worth another attempt. */
  isRetryable: (err: unknown) => boolean;
  /** First backoff ceiling (ms). Default 200. */
  baseMs?: number;
  /** Largest backoff ceiling (ms). Default 5000. */
  capMs?: number;
  /** Total time budget from the first attempt (ms). Default 30000. */
  maxElapsedMs?: number;
  /** Attempts at most, the first included. Default 10. */
  maxAttempts?: number;
  onRetry?: (info: RetryInfo) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1). */
  random?: () => number;
  now?: () => number;
  /** Stops further attempts: the last error is rethrown. */
  signal?: AbortSignal;
}

export const RETRY_DEFAULTS = { baseMs: 200, capMs: 5000, maxElapsedMs: 30_000, maxAttempts: 10 } as const;

/** Full jitter: uniform in [0, min(cap, base·2^(attempt−1))). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls fn until it succeeds, fails with a non-retryable error, runs out of
 * attempts, or the next backoff would end past the time budget; then rethrows
 * the last error.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const baseMs = opts.baseMs ?? RETRY_DEFAULTS.baseMs;
  const capMs = opts.capMs ?? RETRY_DEFAULTS.capMs;
  const maxElapsedMs = opts.maxElapsedMs ?? RETRY_DEFAULTS.maxElapsedMs;
  const maxAttempts = opts.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  const doSleep = opts.sleep ?? sleep;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const deadline = now() + maxElapsedMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= maxAttempts || opts.signal?.aborted || !opts.isRetryable(err)) throw err;
      const delayMs = backoffDelay(attempt, baseMs, capMs, random);
      if (now() + delayMs > deadline) throw err;
      opts.onRetry?.({ attempt, delayMs, error: err });
      await doSleep(delayMs, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}
