// The pool's state, kept apart from the code that decides (as ipamd's
// datastore is in the AWS VPC CNI). Everything that changes it is a named
// transition of an IP, an ENI or the node; transitions compose into one
// write, durable before it resolves, and a refused one rolls back its whole
// write. Readers get read-only records. Each ENI counts the transitions that
// changed its IPs, its phase or its intents: its generation.

import type { Store } from "../store.js";
import { deletable, type EniTransitions, eniTransitions } from "./eni-transitions.js";
import { type IpTransitions, ipTransitions } from "./ip-transitions.js";
import { openJournal } from "./journal.js";
import { type NodeTransitions, nodeTransitions } from "./node-transitions.js";
import {
  type EniRecord,
  type IntentRecord,
  type IpRecord,
  TransitionError,
  type TxContext,
} from "./records.js";

export type Transitions = IpTransitions & EniTransitions & NodeTransitions;

export interface DatastoreView {
  ip(ip: string): IpRecord | undefined;
  ips(): IpRecord[];
  eni(eniId: string): EniRecord | undefined;
  enis(): EniRecord[];
  intents(): IntentRecord[];
  /** vSwitch id → until when it is not used (a copy). */
  blockedVSwitches(): Record<string, number>;
  createBackoffUntil(): number;
  /** May the ENI be deleted now (see the `eniDeleting` transition)? */
  deletable(eniId: string): boolean;
}

export interface Datastore extends DatastoreView {
  /**
   * Run `compose`'s transitions as one write; resolves with what it returned
   * once the write is on disk. `compose` is synchronous: what it reads (from
   * this datastore) and changes is one step. A refused transition undoes the
   * write's others and rejects. A write that changed nothing resolves at once.
   */
  write<T>(compose: (tx: Transitions) => T): Promise<T>;
  /**
   * The same write, made at once: returns what `compose` returned as soon as
   * the transitions are applied, and `durable`, which resolves once they are
   * on disk. Throws (synchronously) what a refused transition throws. Only
   * for a caller that tells no one before `durable` resolves.
   */
  writeEarly<T>(compose: (tx: Transitions) => T): { value: T; durable: Promise<void> };
  /** How many writes changed this ENI's IPs, phase or intents (assigning and releasing pods' IPs do not count). */
  generation(eniId: string): number;
  /** Every ENI's generation now, to see later which changed. */
  generations(): ReadonlyMap<string, number>;
  /** Resolves once everything written so far is on disk. */
  flush(): Promise<void>;
}

export function createDatastore(store: Store, now: () => number): Datastore {
  const gens = new Map<string, number>();
  const doc = () => store.data;

  const writeEarly = <T>(compose: (tx: Transitions) => T): { value: T; durable: Promise<void> } => {
    const journal = openJournal(doc());
    const touched = new Set<string>();
    const ctx: TxContext = { doc: doc(), journal, now: now(), touch: (id) => touched.add(id) };
    let value: T;
    try {
      value = compose({ ...ipTransitions(ctx), ...eniTransitions(ctx), ...nodeTransitions(ctx) });
      if (value instanceof Promise) throw new TransitionError("a write's transitions must be synchronous");
    } catch (e) {
      journal.undo();
      throw e;
    }
    for (const id of touched) gens.set(id, (gens.get(id) ?? 0) + 1);
    return { value, durable: journal.changed() ? store.flush() : Promise.resolve() };
  };

  const write = <T>(compose: (tx: Transitions) => T): Promise<T> => {
    try {
      const { value, durable } = writeEarly(compose);
      return durable.then(() => value);
    } catch (e) {
      return Promise.reject(e);
    }
  };

  return {
    ip: (ip) => doc().ips[ip],
    ips: () => Object.values(doc().ips),
    eni: (eniId) => doc().enis[eniId],
    enis: () => Object.values(doc().enis),
    intents: () => Object.values(doc().intents),
    blockedVSwitches: () => ({ ...doc().blockedVSwitches }),
    createBackoffUntil: () => doc().createBackoffUntil,
    deletable: (eniId) => deletable(doc(), eniId),
    write,
    writeEarly,
    generation: (eniId) => gens.get(eniId) ?? 0,
    generations: () => new Map(gens),
    flush: () => store.flush(),
  };
}

export type { EniNet, NewEni } from "./eni-transitions.js";
export { intentEni } from "./node-transitions.js";
export { type EniRecord, type IntentRecord, type IpRecord, podKey, TransitionError } from "./records.js";
