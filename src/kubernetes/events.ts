// Events on Pods and on the Node, recorded without ever blocking the caller,
// and aggregated as kubectl users expect: the same reason on the same object
// within the window is one Event whose count grows (patched at most every
// few seconds), and each reason may open only a few new Events a minute, so
// a storm of failures stays a handful of objects in etcd (5 new Warning
// Events per reason per minute; each pod's Normal Event always goes out).

import { randomBytes } from "node:crypto";
import type { Logger } from "../../lib/log.js";
import type { EventObject, KubeApi } from "./api.js";

export interface EventTarget {
  kind: "Pod" | "Node" | "NetworkPolicy";
  /** "" for the Node. */
  namespace: string;
  name: string;
  uid: string;
}

export interface EventRecorder {
  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void;
  /** Send what is pending now. */
  flush(): Promise<void>;
  stats(): { created: number; updated: number; suppressed: number; failed: number };
  stop(): Promise<void>;
}

export interface RecorderOptions {
  host: string;
  now?(): number;
  /** Repeats within this window add to the same Event. */
  windowMs?: number;
  /** Count updates of one Event are sent at most this often. */
  updateEveryMs?: number;
  /** New Warning Events per reason per minute; beyond, they are counted and dropped. */
  perReasonPerMinute?: number;
}

interface Entry {
  event: EventObject;
  created: boolean;
  dirty: boolean;
}

/** Events of cluster-scoped objects live in "default", as client-go puts them. */
const NODE_EVENT_NAMESPACE = "default";

export function createEventRecorder(api: KubeApi, log: Logger, opts: RecorderOptions): EventRecorder {
  const now = opts.now ?? Date.now;
  const windowMs = opts.windowMs ?? 10 * 60_000;
  const updateEveryMs = opts.updateEveryMs ?? 5000;
  const budget = opts.perReasonPerMinute ?? 5;
  const entries = new Map<string, Entry>();
  const opened = new Map<string, number[]>(); // reason → times of new Events in the last minute
  const stats = { created: 0, updated: 0, suppressed: 0, failed: 0 };
  let sending: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;

  const send = (entry: Entry): Promise<void> => {
    const first = !entry.created;
    entry.created = true;
    entry.dirty = false;
    const e = { ...entry.event };
    return (first ? api.createEvent(e) : api.updateEventCount(e)).then(
      () => {
        if (first) stats.created++;
        else stats.updated++;
      },
      (err: unknown) => {
        stats.failed++;
        // A lost create is retried as a create with the next repeat; a lost update is simply late.
        if (first) entry.created = false;
        log.debug("event not recorded", { reason: e.reason, error: String(err) });
      },
    );
  };

  const flush = (): Promise<void> => {
    timer = null;
    const due = [...entries.values()].filter((e) => e.dirty);
    sending = sending.then(() => Promise.all(due.map(send)).then(() => {}));
    return sending;
  };

  const schedule = (): void => {
    timer ??= setTimeout(() => void flush(), updateEveryMs);
  };

  const record: EventRecorder["record"] = (target, type, reason, message) => {
    const t = now();
    for (const [k, e] of entries) if (t - e.event.last.getTime() > windowMs) entries.delete(k);
    const key = `${target.kind}/${target.namespace}/${target.name}/${target.uid}/${reason}`;
    const entry = entries.get(key);
    if (entry) {
      entry.event.count++;
      entry.event.last = new Date(t);
      entry.event.message = message;
      entry.dirty = true;
      schedule();
      return;
    }
    // A storm is of failures: each pod's one Normal event is never held back.
    if (type === "Warning") {
      const recent = (opened.get(reason) ?? []).filter((at) => t - at < 60_000);
      if (recent.length >= budget) {
        stats.suppressed++;
        opened.set(reason, recent);
        return;
      }
      recent.push(t);
      opened.set(reason, recent);
    }
    const fresh: Entry = {
      created: false,
      dirty: true,
      event: {
        name: `${target.name}.${t.toString(16)}${randomBytes(3).toString("hex")}`,
        namespace: target.kind === "Node" ? NODE_EVENT_NAMESPACE : target.namespace,
        involved: target,
        type,
        reason,
        message,
        count: 1,
        first: new Date(t),
        last: new Date(t),
        host: opts.host,
      },
    };
    entries.set(key, fresh);
    sending = sending.then(() => send(fresh));
  };

  return {
    record,
    flush,
    stats: () => ({ ...stats }),
    async stop() {
      if (timer) clearTimeout(timer);
      await flush();
    },
  };
}
