// Injected faults: a random error rate over all actions, and chosen codes
// for chosen actions, optionally after the action took effect (a lost reply).

import { type ApiError, faultError } from "./errors.js";
import type { Faults } from "./world.js";

export interface FaultDecision {
  error: ApiError | null;
  /** Apply the action first, then answer with the error. */
  afterEffect: boolean;
  extraLatencyMs: number;
}

export interface FaultInjector {
  decide(action: string): FaultDecision;
  set(config: Faults): void;
  config(): Faults;
}

export function createFaultInjector(initial: Faults, random: () => number = Math.random): FaultInjector {
  let cfg = initial;
  let used = new Map<string, number>();
  return {
    decide(action) {
      let extra = cfg.latencyMs;
      for (const key of [action, "*"]) {
        const f = cfg.actions[key];
        if (!f) continue;
        extra += f.latencyMs;
        const spent = used.get(key) ?? 0;
        if (f.count > 0 && spent >= f.count) continue;
        if (f.rate > 0 && random() < f.rate) {
          used.set(key, spent + 1);
          return { error: faultError(f.code), afterEffect: f.afterEffect, extraLatencyMs: extra };
        }
      }
      if (cfg.errorRate > 0 && random() < cfg.errorRate) {
        const code = cfg.errorCodes[Math.floor(random() * cfg.errorCodes.length)] ?? "InternalError";
        return { error: faultError(code), afterEffect: false, extraLatencyMs: extra };
      }
      return { error: null, afterEffect: false, extraLatencyMs: extra };
    },
    set(config) {
      cfg = config;
      used = new Map();
    },
    config: () => cfg,
  };
}
