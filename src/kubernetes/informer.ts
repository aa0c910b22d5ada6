// The pods of this node, kept with informer semantics: list, then watch from
// the list's resourceVersion; when the server says 410 Gone, list again; on
// any other failure, reconnect with backoff. The cache is only trusted once
// a list succeeded (`synced`); while the API server is away it goes stale,
// never emptier, so nothing is released for its absence.

import { delayFor, SCHEDULES } from "../../lib/backoff.js";
import type { Logger } from "../../lib/log.js";
import type { KubeApi, PodInfo, WatchEvent } from "./api.js";

export interface PodCache {
  /** The pod of this name in the cache, if any. */
  get(namespace: string, name: string): PodInfo | undefined;
  pods(): PodInfo[];
  /** A list has succeeded: the cache reflects the API server (perhaps late). */
  synced(): boolean;
  /** Whether the watch is connected now. */
  watching(): boolean;
  stats(): { lists: number; watches: number; relists: number; failures: number; events: number };
}

export interface Informer extends PodCache {
  start(): void;
  stop(): Promise<void>;
}

export interface InformerHooks {
  /** A pod of this node was seen (list or event), or deleted. */
  onPod?(pod: PodInfo, deleted: boolean): void;
}

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

export function createInformer(
  api: KubeApi,
  nodeName: string,
  log: Logger,
  hooks: InformerHooks = {},
): Informer {
  const cache = new Map<string, PodInfo>();
  const stats = { lists: 0, watches: 0, relists: 0, failures: 0, events: 0 };
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

  const replace = (pods: PodInfo[]): void => {
    const seen = new Set<string>();
    for (const p of pods) {
      seen.add(keyOf(p.namespace, p.name));
      cache.set(keyOf(p.namespace, p.name), p);
      hooks.onPod?.(p, false);
    }
    for (const [k, p] of cache)
      if (!seen.has(k)) {
        cache.delete(k);
        hooks.onPod?.(p, true);
      }
  };

  const apply = (e: Extract<WatchEvent, { pod: PodInfo }>): void => {
    stats.events++;
    const k = keyOf(e.pod.namespace, e.pod.name);
    if (e.type === "DELETED") {
      // A later incarnation under the same name stays.
      if (cache.get(k)?.uid === e.pod.uid) cache.delete(k);
    } else cache.set(k, e.pod);
    hooks.onPod?.(e.pod, e.type === "DELETED");
  };

  const run = async (): Promise<void> => {
    let rv = "";
    let failures = 0;
    while (!stopped) {
      try {
        if (!rv) {
          const l = await api.listPods(nodeName);
          stats.lists++;
          replace(l.pods);
          rv = l.resourceVersion;
          if (!isSynced) log.info("pod cache synced", { pods: l.pods.length, resourceVersion: rv });
          isSynced = true;
        }
        let gone = false;
        const w = await api.watchPods(nodeName, rv, (e) => {
          if (e.type === "ERROR") {
            gone = e.code === 410;
            if (!gone) log.warn("pod watch error", { code: e.code, message: e.message });
            current?.stop();
            return;
          }
          rv = e.resourceVersion;
          failures = 0; // the server answers: the next failure starts the backoff afresh
          if (e.type !== "BOOKMARK") apply(e);
        });
        stats.watches++;
        current = w;
        connected = true;
        const err = await w.done;
        connected = false;
        current = null;
        if (stopped) return;
        if (gone) {
          stats.relists++;
          log.info("pod watch expired (410 Gone); listing again", { resourceVersion: rv });
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
        log.warn("pod list/watch failed; retrying", { error: String(e), inMs: ms, failures });
        await pause(ms);
      }
    }
  };

  return {
    get: (namespace, name) => cache.get(keyOf(namespace, name)),
    pods: () => [...cache.values()],
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
