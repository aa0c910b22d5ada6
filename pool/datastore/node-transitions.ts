// The named transitions of the node's own state: the cloud calls written
// ahead as intents, vSwitches blocked after IpNotEnough, and the backoff
// of ENI creates.

import type { Intent } from "../store.js";
import type { IntentRecord, TxContext } from "./records.js";

export interface NodeTransitions {
  /** A cloud call about to be sent (an intent of the same id is replaced). */
  beginIntent(intent: IntentRecord): void;
  /** A cloud call done or given up. An intent gone: nothing. */
  endIntent(id: string): void;
  /** No ENI or IP from this vSwitch for `forMs`. */
  blockVSwitch(vSwitchId: string, forMs: number): void;
  /** These vSwitches are used again now. */
  unblockVSwitches(vSwitchIds: readonly string[]): void;
  /** No ENI created for `forMs` at least (a longer backoff already running stays). */
  backOffCreates(forMs: number): void;
}

/** The ENI an intent is about; a create's is not known yet. */
export const intentEni = (i: IntentRecord): string | null => (i.kind === "create" ? null : i.eniId);

const copyOf = (i: IntentRecord): Intent => {
  if (i.kind !== "unassign") return { ...i };
  const { prefixes, ipv6s, ...rest } = i;
  return {
    ...rest,
    ips: [...i.ips],
    ...(prefixes ? { prefixes: [...prefixes] } : {}),
    ...(ipv6s ? { ipv6s: [...ipv6s] } : {}),
  };
};

export function nodeTransitions(ctx: TxContext): NodeTransitions {
  const { doc, journal } = ctx;
  const touchEniOf = (i: IntentRecord): void => {
    const eniId = intentEni(i);
    if (eniId !== null) ctx.touch(eniId);
  };
  return {
    beginIntent(intent) {
      journal.put("intents", intent.id, copyOf(intent));
      touchEniOf(intent);
    },
    endIntent(id) {
      const intent = doc.intents[id];
      if (!intent) return;
      journal.remove("intents", id);
      touchEniOf(intent);
    },
    blockVSwitch(vSwitchId, forMs) {
      journal.put("blockedVSwitches", vSwitchId, ctx.now + forMs);
    },
    unblockVSwitches(vSwitchIds) {
      for (const id of vSwitchIds) journal.remove("blockedVSwitches", id);
    },
    backOffCreates(forMs) {
      const until = ctx.now + forMs;
      if (until > doc.createBackoffUntil) journal.setCreateBackoffUntil(until);
    },
  };
}
