// A cache of one kind of object kept with informer semantics: list, then
// watch from the list's resourceVersion; when the server says 410 Gone, list
// again; on any other failure, reconnect with backoff. The cache is only
// trusted once a list succeeded (`synced`); while the API server is away it
// goes stale, never emptier, so nothing is released or opened for its absence.

import { delayFor, SCHEDULES } from "../../lib/backoff.js";
import type { Logger } from "../../lib/log.js";
import type { KubeObject, ListWatch, PodInfo } from "./api.js";

export interface InformerStats {
  lists: number;
  watches: number;
  relists: number;
  failures: number;
  events: number;
}

export interface Cache<T> {
  /** The object of this namespace and name in the cache, if any ("" for a cluster-scoped one). */
  get(namespace: string, name: string): T | undefined;
  items(): T[];
  /** A list has succeeded: the cache reflects the API server (perhaps late). */
  synced(): boolean;
  /** Whether the watch is connected now. */
  watching(): boolean;
  stats(): InformerStats;
}

export interface Informer<T> extends Cache<T> {
  start(): void;
  stop(): Promise<void>;
}

export type PodCache = Cache<PodInfo>;

export interface InformerHooks<T> {
  /** An object was seen (list or event), or deleted. */
  onChange?(obj: T, deleted: boolean): void;
  /** A list succeeded: the cache holds what the API server has. */
  onSynced?(): void;
}

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

/** `what` names the objects in the log ("pod", "namespace", "networkpolicy"). */
export function createInformer<T extends KubeObject>(
  source: ListWatch<T>,
  what: string,
  log: Logger,
  hooks: InformerHooks<T> = {},
): Informer<T> {
  const cache = new Map<string, T>();
  const stats: InformerStats = { lists: 0, watches: 0, relists: 0, failures: 0, events: 0 };
  let isSynced = false;
  let connected = false;
  let stopped = false;
  let current: { stop(): void } | null = null;
  let wake: (() => void) | null = null;
  let loop: Promise<void> | null = null;

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        wake = null;
        resolve();
      }
      wake = done;
    });

  const replace = (items: T[]): void => {
    const seen = new Set<string>();
    for (const o of items) {
      seen.add(keyOf(o.namespace, o.name));
      cache.set(keyOf(o.namespace, o.name), o);
      hooks.onChange?.(o, false);
    }
    for (const [k, o] of cache)
      if (!seen.has(k)) {
        cache.delete(k);
        hooks.onChange?.(o, true);
      }
  };

  const apply = (type: "ADDED" | "MODIFIED" | "DELETED", o: T): void => {
    stats.events++;
    const k = keyOf(o.namespace, o.name);
    if (type === "DELETED") {
      // A later incarnation under the same name stays.
      if (cache.get(k)?.uid === o.uid) cache.delete(k);
    } else cache.set(k, o);
    hooks.onChange?.(o, type === "DELETED");
  };

  const run = async (): Promise<void> => {
    let rv = "";
    let failures = 0;
    while (!stopped) {
      try {
        if (!rv) {
          const l = await source.list();
          if (stopped) return;
          stats.lists++;
          replace(l.items);
          rv = l.resourceVersion;
          if (!isSynced) log.info(`${what} cache synced`, { count: l.items.length, resourceVersion: rv });
          isSynced = true;
          hooks.onSynced?.();
        }
        let gone = false;
        const w = await source.watch(rv, (e) => {
          if (e.type === "ERROR") {
            gone = e.code === 410;
            if (!gone) log.warn(`${what} watch error`, { code: e.code, message: e.message });
            current?.stop();
            return;
          }
          rv = e.resourceVersion;
          failures = 0; // the server answers: the next failure starts the backoff afresh
          if (e.type !== "BOOKMARK") apply(e.type, e.obj);
        });
        if (stopped) {
          w.stop(); // stop() came while the watch was being opened
          return;
        }
        stats.watches++;
        current = w;
        connected = true;
        const err = await w.done;
        connected = false;
        current = null;
        if (stopped) return;
        if (gone) {
          stats.relists++;
          log.info(`${what} watch expired (410 Gone); listing again`, { resourceVersion: rv });
          rv = "";
          continue;
        }
        if (err) throw err;
        failures = 0; // the server ended the watch in good order (its timeout): watch again now
      } catch (e) {
        connected = false;
        if (stopped) return;
        failures++;
        stats.failures++;
        if ((e as { status?: number }).status === 410) rv = "";
        const ms = delayFor(SCHEDULES.kubeWatch, failures);
        log.warn(`${what} list/watch failed; retrying`, { error: String(e), inMs: ms, failures });
        await pause(ms);
      }
    }
  };

  return {
    get: (namespace, name) => cache.get(keyOf(namespace, name)),
    items: () => [...cache.values()],
    synced: () => isSynced,
    watching: () => connected,
    stats: () => ({ ...stats }),
    start() {
      loop ??= run();
    },
    async stop() {
      stopped = true;
      current?.stop();
      wake?.();
      await loop;
    },
  };
}
