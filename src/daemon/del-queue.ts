// The DELs the node's forwarder recorded while the daemon was away. A DEL
// that cannot reach the daemon succeeds at once (the runtime never blocks)
// after writing its request, the same frame it would have sent, into
// SOCKET.del/ (cni/forwarder/eniway-cni.c). The daemon completes each one at
// its start and then every few seconds, through the one CNI implementation
// (cni-exec.ts), as if it had just arrived: the host side unwired, the IP
// released. A record older than the attachment's current allocation is one
// a later ADD of the same attachment made stale: it is dropped, not run.

import { readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ERR } from "../../cni/spec/spec.js";
import type { Logger } from "../../lib/log.js";
import { type CniInvocation, type CniOutcome, parseFrame } from "./cni-exec.js";

/** Where the forwarder records DELs for the daemon of this socket. */
export const delQueueDir = (socket: string): string => `${socket}.del`;

const RECORD = /^\d{1,12}-\d{9}-\d{1,10}\.del$/;
const PARTIAL = /^\.\d{1,12}-\d{1,9}-\d{1,10}\.tmp$/;
/** A partial record this old belongs to a forwarder that died while writing it. */
const PARTIAL_MAX_AGE_MS = 60_000;

export interface DelQueue {
  /** Completes what is recorded now; resolves with how many records it completed. */
  drain(): Promise<number>;
  stop(): void;
}

export interface DelQueueDeps {
  dir: string;
  run(inv: CniInvocation): Promise<CniOutcome>;
  /** When the attachment's current allocation was made (ms since the epoch), or null if it has none. */
  assignedAt(containerId: string, ifname: string): number | null;
  log: Logger;
}

const gone = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === "ENOENT";

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if (gone(e)) return [];
    throw e;
  }
}

/** One record: true when it is done with (completed, stale or unusable), false to try again. */
async function complete(path: string, d: DelQueueDeps): Promise<boolean> {
  const [text, st] = await Promise.all([readFile(path, "utf8"), stat(path)]);
  const f = parseFrame(text);
  const id = { containerId: f?.env.CNI_CONTAINERID ?? "", ifname: f?.env.CNI_IFNAME ?? "" };
  if (f?.env.CNI_COMMAND !== "DEL") {
    d.log.warn("dropped a recorded DEL that is not one", { record: path });
    return true;
  }
  const since = d.assignedAt(id.containerId, id.ifname);
  if (since !== null && since > st.mtimeMs) {
    d.log.info("dropped a recorded DEL: a later ADD made the attachment again", { ...id, record: path });
    return true;
  }
  const out = await d.run({ ...f, execName: "eniway" });
  if (out.code === 0) {
    d.log.info("completed a DEL recorded while the daemon was away", { ...id, recordedAt: st.mtime });
    return true;
  }
  if (out.error === ERR.tryAgainLater) return false;
  d.log.warn("a recorded DEL failed; dropped", { ...id, error: out.stdout.trim() });
  return true;
}

export function startDelQueue(d: DelQueueDeps & { everyMs: number }): DelQueue {
  let running: Promise<number> | null = null;
  const once = async (): Promise<number> => {
    let done = 0;
    for (const name of await names(d.dir)) {
      const path = join(d.dir, name);
      try {
        if (RECORD.test(name)) {
          if (await complete(path, d)) {
            await unlink(path);
            done++;
          }
        } else if (PARTIAL.test(name) && Date.now() - (await stat(path)).mtimeMs > PARTIAL_MAX_AGE_MS)
          await unlink(path);
      } catch (e) {
        if (!gone(e)) d.log.warn("cannot complete a recorded DEL", { record: path, error: String(e) });
      }
    }
    return done;
  };
  const drain = (): Promise<number> => {
    running ??= once().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => void drain().catch(() => {}), d.everyMs);
  timer.unref();
  return { drain, stop: () => clearInterval(timer) };
}
