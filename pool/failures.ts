// What a failed cloud call means for the pool: the reason the node's Events
// give, the vSwitch it blocks (IpNotEnough) or the creates it backs off
// (the instance's ENI limit, or creates and attaches failing in a row).

import { CloudError, isTreated } from "../cloud/errors.js";
import { delayFor, SCHEDULES } from "../lib/backoff.js";
import type { Logger } from "../lib/log.js";
import type { Datastore } from "./datastore/datastore.js";

/** Why the pool could not grow: the reasons are those of the Node's Events. */
export type CloudFailureReason =
  | "CreateENIFailed"
  | "AttachENIFailed"
  | "AssignIPFailed"
  | "VSwitchIPExhausted"
  | "ENIQuotaExceeded";

export interface CloudFailure {
  reason: CloudFailureReason;
  /** The cloud's error code, or "" for a failure of ours (an attach that timed out). */
  code: string;
  message: string;
}

export interface SetbackDeps {
  ds: Datastore;
  log: Logger;
  now(): number;
  config: { vSwitchBlockMs: number; eniLimitBackoffMs: number };
  onFailure?(f: CloudFailure): void;
}

export interface Setbacks {
  /** Tell of a failure with the most precise reason the error allows; `context` leads its message. */
  report(fallback: CloudFailureReason, err: unknown, context?: string): void;
  /** Block the vSwitch it exhausted, or back off creates at the ENI limit. */
  note(err: unknown, vSwitchId?: string): Promise<void>;
  /**
   * One more create or attach failed in a row: creates pause for twice as
   * long as the last time (from 1 s, at most eniLimitBackoffMs), so a node
   * whose attaches keep failing does not spin create → attach → delete.
   */
  backOffCreates(): Promise<void>;
  /** An ENI attached: the run of failures is over. */
  attached(): void;
}

export function createSetbacks(deps: SetbackDeps): Setbacks {
  const { ds, log, config } = deps;
  let createFailures = 0;
  return {
    report(fallback, err, context) {
      const code = err instanceof CloudError ? err.code : "";
      if (context) log.warn(context, { code });
      if (!deps.onFailure) return;
      const reason: CloudFailureReason = isTreated(err, "vSwitchExhausted")
        ? "VSwitchIPExhausted"
        : isTreated(err, "eniLimit")
          ? "ENIQuotaExceeded"
          : fallback;
      const said = err instanceof Error ? err.message : String(err);
      const message = context ? `${context} (${said})` : said;
      deps.onFailure({ reason, code, message: message.slice(0, 500) });
    },
    async note(err, vSwitchId) {
      if (vSwitchId && isTreated(err, "vSwitchExhausted")) {
        log.warn("vSwitch has no free addresses; blocking it", {
          vSwitchId,
          until: deps.now() + config.vSwitchBlockMs,
        });
        await ds.write((tx) => tx.blockVSwitch(vSwitchId, config.vSwitchBlockMs));
      }
      if (isTreated(err, "eniLimit")) {
        log.warn("instance is at its ENI limit; backing off creates", { ms: config.eniLimitBackoffMs });
        await ds.write((tx) => tx.backOffCreates(config.eniLimitBackoffMs));
      }
    },
    async backOffCreates() {
      createFailures++;
      const ms = delayFor({ ...SCHEDULES.createRetry, capMs: config.eniLimitBackoffMs }, createFailures);
      await ds.write((tx) => tx.backOffCreates(ms));
    },
    attached() {
      createFailures = 0;
    },
  };
}

/** What a vSwitch without a free IPv4 prefix means, for the log, the Node's Event and the ADD's error. */
export const noFreePrefix = (vSwitchId: string): string =>
  `vSwitch ${vSwitchId} has no free IPv4 prefix: prefixes come from its reserved CIDR blocks (VSwitchCidrReservation), which are used up or missing`;

/** An error as a log field: a cloud error's details, or its message. */
export function describeError(err: unknown): Record<string, unknown> | string {
  if (err instanceof CloudError) return err.toJSON() as unknown as Record<string, unknown>;
  return err instanceof Error ? err.message : String(err);
}

/** A definite answer from the cloud: the call did nothing, and retrying it as it was will not help. */
export const isDefinite = (err: unknown): boolean => err instanceof CloudError && !err.retryable;
