// Per-action token buckets, as the OpenAPI gateway throttles each API.

import type { Throttle } from "./world.js";

export interface Throttler {
  /** Take one token for the action; false means the call is throttled. */
  take(action: string): boolean;
  /** After a refused take: milliseconds until the action's bucket holds a token again. */
  waitMs(action: string): number;
  set(config: Throttle): void;
  config(): Throttle;
}

export function createThrottler(initial: Throttle, now: () => number): Throttler {
  let cfg = initial;
  let buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(action) {
      const rule = cfg[action] ?? cfg["*"];
      if (!rule) return true;
      const t = now();
      const b = buckets.get(action) ?? { tokens: rule.burst, at: t };
      b.tokens = Math.min(rule.burst, b.tokens + ((t - b.at) / 1000) * rule.qps);
      b.at = t;
      buckets.set(action, b);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    waitMs(action) {
      const rule = cfg[action] ?? cfg["*"];
      const b = buckets.get(action);
      if (!rule || !b || rule.qps <= 0) return 0;
      return Math.max(0, Math.ceil(((1 - b.tokens) / rule.qps) * 1000));
    },
    set(config) {
      cfg = config;
      buckets = new Map();
    },
    config: () => cfg,
  };
}
