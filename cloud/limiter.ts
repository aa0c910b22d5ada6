// Per-action rate limits: a token bucket (qps, burst) and a concurrency cap per
// cloud action, built on bottleneck's reservoir.

import Bottleneck from "bottleneck";
import { ALL_ACTIONS, type CloudAction } from "./types.js";

export interface RateLimit {
  /** Sustained requests per second. */
  qps: number;
  /** Bucket size: requests that may go at once after a quiet period. */
  burst: number;
  /** Requests of this action in flight at once. Default DEFAULT_MAX_CONCURRENT. */
  maxConcurrent?: number;
}

export type RateLimitOverrides = Partial<Record<CloudAction, Partial<RateLimit>>>;

export const DEFAULT_MAX_CONCURRENT = 10;

export const DEFAULT_RATE_LIMITS: Readonly<Record<CloudAction, RateLimit>> = {
  CreateNetworkInterface: { qps: 10, burst: 20 },
  AttachNetworkInterface: { qps: 10, burst: 20 },
  DetachNetworkInterface: { qps: 10, burst: 20 },
  DeleteNetworkInterface: { qps: 10, burst: 20 },
  AssignPrivateIpAddresses: { qps: 10, burst: 20 },
  UnassignPrivateIpAddresses: { qps: 10, burst: 20 },
  AssignIpv6Addresses: { qps: 10, burst: 20 },
  UnassignIpv6Addresses: { qps: 10, burst: 20 },
  DescribeNetworkInterfaces: { qps: 20, burst: 40 },
  DescribeInstanceTypes: { qps: 5, burst: 10 },
  DescribeVSwitches: { qps: 5, burst: 10 },
  ListVSwitchCidrReservations: { qps: 5, burst: 10 },
};

export interface BucketSettings {
  reservoir: number;
  reservoirIncreaseInterval: number;
  reservoirIncreaseAmount: number;
  reservoirIncreaseMaximum: number;
  /** bottleneck only refills on its heartbeat, so it must tick as often as the bucket. */
  heartbeatInterval: number;
  maxConcurrent: number;
}

/**
 * Maps (qps, burst) onto bottleneck's reservoir: refill one token every
 * 1000/qps ms (never faster than every 10 ms); above 100 qps refill
 * qps/10 tokens every 100 ms instead.
 */
export function bucketSettings(limit: RateLimit): BucketSettings {
  const { qps, burst } = limit;
  if (!(qps > 0) || !Number.isFinite(qps))
    throw new Error(`rate limit qps must be a positive number, got ${qps}`);
  if (!Number.isInteger(burst) || burst < 1)
    throw new Error(`rate limit burst must be an integer ≥ 1, got ${burst}`);
  const maxConcurrent = limit.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1)
    throw new Error(`rate limit maxConcurrent must be an integer ≥ 1, got ${maxConcurrent}`);
  const interval = qps <= 100 ? Math.max(10, Math.round(1000 / qps)) : 100;
  const amount = qps <= 100 ? 1 : Math.round(qps / 10);
  return {
    reservoir: burst,
    reservoirIncreaseInterval: interval,
    reservoirIncreaseAmount: Math.min(amount, burst),
    reservoirIncreaseMaximum: burst,
    heartbeatInterval: interval,
    maxConcurrent,
  };
}

export function resolveRateLimits(overrides: RateLimitOverrides = {}): Record<CloudAction, RateLimit> {
  const out = {} as Record<CloudAction, RateLimit>;
  for (const action of ALL_ACTIONS) out[action] = { ...DEFAULT_RATE_LIMITS[action], ...overrides[action] };
  return out;
}

export interface ActionLimiter {
  /** Runs fn once a token for action is available and a concurrency slot is free. */
  schedule<T>(action: CloudAction, fn: () => Promise<T>): Promise<T>;
  /** Rejects waiting jobs, waits for running ones, and stops the refill timers. */
  stop(): Promise<void>;
}

export function createActionLimiter(overrides: RateLimitOverrides = {}): ActionLimiter {
  const limits = resolveRateLimits(overrides);
  const limiters = new Map<CloudAction, Bottleneck>();
  for (const action of ALL_ACTIONS)
    limiters.set(action, new Bottleneck({ ...bucketSettings(limits[action]), id: action }));
  let stopped: Promise<void> | undefined;
  return {
    schedule<T>(action: CloudAction, fn: () => Promise<T>): Promise<T> {
      if (stopped) return Promise.reject(new Error(`rate limiter stopped: ${action} not sent`));
      return limiters.get(action)!.schedule(fn);
    },
    stop(): Promise<void> {
      stopped ??= Promise.all(
        [...limiters.values()].map(async (l) => {
          await l.stop({ dropWaitingJobs: true, dropErrorMessage: "rate limiter stopped: request dropped" });
          await l.disconnect(false);
        }),
      ).then(() => undefined);
      return stopped;
    },
  };
}
