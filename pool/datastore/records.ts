// What the datastore hands its readers: deeply read-only records (rows are
// replaced, never edited in place, so one a reader holds never changes under
// it), the error of a transition its starting state does not allow, and
// what every transition of one write works with.

import type { Intent, PodRef, StoreDoc, StoredEni, StoredIp } from "../store.js";
import type { Journal } from "./journal.js";

/** T with every property, at every depth, read-only. */
export type ReadOnly<T> = T extends object ? { readonly [K in keyof T]: ReadOnly<T[K]> } : T;

export type IpRecord = ReadOnly<StoredIp>;
export type EniRecord = ReadOnly<StoredEni>;
export type IntentRecord = ReadOnly<Intent>;

/** A transition refused: the IP or ENI is not in a state it may start from. Nothing of its write lands. */
export class TransitionError extends Error {
  override name = "TransitionError";
}

/** The name a StatefulSet pod's IP is held under: "namespace/name". */
export const podKey = (pod: ReadOnly<PodRef>): string => `${pod.namespace}/${pod.name}`;

/** One write's view of the document, its journal, its time and its touched ENIs. */
export interface TxContext {
  readonly doc: ReadOnly<StoreDoc>;
  readonly journal: Journal;
  /** The time of this write (ms). */
  readonly now: number;
  /** The ENI's IPs, phase or intents changed: its generation goes up when the write lands. */
  touch(eniId: string): void;
}

export { without } from "../../lib/object.js";
