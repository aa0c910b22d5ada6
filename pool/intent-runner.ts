// The one way the executor runs a cloud call: its intent is durable before
// the call is sent, and the call's result lands in the same write that ends
// the intent. A failure ends the intent with transitions of its own, or
// keeps it for a resume when the cloud may have acted.

import type { Datastore, IntentRecord, Transitions } from "./datastore/datastore.js";

/** What a failed call leaves: the intent, for a resume, or transitions that land as it ends. */
export type Ending = "keep" | ((tx: Transitions) => void);

export interface IntentCall<R> {
  intent: IntentRecord;
  /** The cloud call (or calls) the intent stands for. */
  call(): Promise<R>;
  /** What lands with the intent's end once the call succeeded. */
  done(tx: Transitions, result: R): void;
  /**
   * The call (or the write of its result) failed: tell of it, back off, and
   * say what the intent's end brings. The error is thrown on after that.
   */
  failed(err: unknown): Promise<Ending>;
}

export interface IntentRunner {
  /**
   * Write a new intent, with what `begin` changes in the same write, then
   * run it. `begin` returns the call: its intent may depend on the state.
   */
  start<R>(begin: (tx: Transitions) => IntentCall<R>): Promise<R>;
  /** Run an intent already in the store (resumed after a restart, or written by another call's write). */
  run<R>(c: IntentCall<R>): Promise<R>;
}

export function createIntentRunner(ds: Datastore): IntentRunner {
  const run = async <R>(c: IntentCall<R>): Promise<R> => {
    try {
      const result = await c.call();
      await ds.write((tx) => {
        tx.endIntent(c.intent.id);
        c.done(tx, result);
      });
      return result;
    } catch (err) {
      const ending = await c.failed(err);
      if (ending !== "keep")
        await ds.write((tx) => {
          tx.endIntent(c.intent.id);
          ending(tx);
        });
      throw err;
    }
  };

  const start = async <R>(begin: (tx: Transitions) => IntentCall<R>): Promise<R> => {
    const c = await ds.write((tx) => {
      const c = begin(tx);
      tx.beginIntent(c.intent);
      return c;
    });
    return run(c);
  };

  return { start, run };
}

/** Nothing besides the intent's end. */
export const nothing = (): void => {};
