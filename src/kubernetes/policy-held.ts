// The pods of this node whose traffic the fail-closed gate holds (the
// kernel has no rules for them yet), with why, and an operator told once
// of each pod held for long.

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** A pod of this node as the pool holds it (an empty name: an attachment of no Kubernetes pod). */
export interface LocalPod extends PodRef {
  ip: string;
  /** Dual stack: its IPv6 address. */
  ip6?: string;
  /** Its host-side veth. */
  hostIf: string;
  /** When the pool gave it its address (ms since the epoch). */
  since: number;
}

export interface Held extends LocalPod {
  heldMs: number;
  reason: string;
}

/** An admitted pod's key: its veth and address, as the kernel's set pairs them. */
export const admittedKey = (a: { hostIf: string; ip: string }): string => `${a.hostIf} ${a.ip}`;

/** The local pods the kernel does not admit, each with why. */
export function heldPods(
  local: LocalPod[],
  admitted: ReadonlySet<string>,
  now: number,
  reasonOf: (l: LocalPod) => string,
): Held[] {
  return local
    .filter((l) => !admitted.has(admittedKey(l)))
    .map((l) => ({ ...l, heldMs: Math.max(0, now - l.since), reason: reasonOf(l) }));
}

/**
 * Tells of each pod held for longer than `afterMs`, and again every
 * `againMs` while it stays held (an Event lost while the API server was
 * away is then sent with the next); `told` remembers when, per pod and
 * address, and forgets the pods no longer held.
 */
export function tellHeld(
  told: Map<string, number>,
  held: Held[],
  at: { now: number; afterMs: number; againMs: number },
  tell: (h: Held) => void,
): void {
  const keys = new Set(held.map((h) => `${h.uid} ${admittedKey(h)}`));
  for (const k of told.keys()) if (!keys.has(k)) told.delete(k);
  for (const h of held) {
    const k = `${h.uid} ${admittedKey(h)}`;
    const last = told.get(k);
    if (h.heldMs < at.afterMs || (last !== undefined && at.now - last < at.againMs)) continue;
    told.set(k, at.now);
    tell(h);
  }
}
