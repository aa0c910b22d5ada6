// The daemon's end of the netlink helper (cni/netlink/helper.ts): one
// long-lived process that wires a pod's side without a process start per
// pod. Requests go as JSON lines; a helper that cannot start, dies or stalls
// makes its requests fail with HelperUnavailable, and the caller falls back
// to `ip -batch` in the pod's namespace. It starts with the datapath; after a
// failure it rests a while and starts again at the next request.

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { CommandError } from "../../lib/exec.js";
import type { Logger } from "../../lib/log.js";
import { POD_GATEWAY, POD_GATEWAY6 } from "../facts.js";
import { type HelperReply, type PodSideRequest, validRequest } from "../netlink/protocol.js";
import type { PodSide } from "./pod.js";

export class HelperUnavailable extends Error {}

export interface NetlinkHelper {
  wirePod(req: Omit<PodSideRequest, "id">): Promise<void>;
  close(): void;
}

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export function startNetlinkHelper(
  binary: string,
  log: Logger,
  opts: { timeoutMs?: number; restMs?: number } = {},
): NetlinkHelper {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const restMs = opts.restMs ?? 30_000;
  const argv = [binary];
  let child: ChildProcess | null = null;
  let restUntil = 0;
  let nextId = 1;
  let stderr = "";
  const pending = new Map<number, Pending>();

  const failAll = (why: string): void => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(new HelperUnavailable(`netlink helper: ${why}`));
    }
  };

  const stop = (why: string): void => {
    const c = child;
    child = null;
    restUntil = Date.now() + restMs;
    c?.kill("SIGKILL");
    log.warn("netlink helper stopped; pods are wired with ip -batch meanwhile", { why, restMs });
    failAll(why);
  };

  const start = (): ChildProcess => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    log.info("netlink helper started", { binary, pid: c.pid });
    stderr = "";
    c.stdin!.on("error", () => {});
    c.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    c.once("error", (e) => {
      if (child === c) stop(`cannot start ${binary}: ${e.message}`);
    });
    c.once("exit", (code, signal) => {
      if (child === c) stop(`exited (${signal ?? `exit ${code}`}): ${stderr.trim() || "no message"}`);
    });
    createInterface({ input: c.stdout! }).on("line", (line) => {
      let r: HelperReply;
      try {
        r = JSON.parse(line) as HelperReply;
      } catch {
        return;
      }
      const p = pending.get(r.id);
      if (!p) return;
      pending.delete(r.id);
      clearTimeout(p.timer);
      if (r.ok) p.resolve();
      // The kernel's answer, worded as `ip` words it, so callers branch on "File exists" alike.
      else p.reject(new CommandError(argv, 1, `RTNETLINK answers: ${r.error}`));
    });
    return c;
  };

  // Started at once, not at the first pod: its start-up (a bun executable) stays off the ADD path.
  child = start();

  return {
    wirePod(fields) {
      const req = validRequest({ id: nextId++, ...fields });
      if (!child) {
        if (Date.now() < restUntil) return Promise.reject(new HelperUnavailable("netlink helper: resting"));
        child = start();
      }
      const c = child;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (child === c) stop(`no answer within ${timeoutMs} ms`);
        }, timeoutMs);
        pending.set(req.id, { resolve, reject, timer });
        c.stdin!.write(`${JSON.stringify(req)}\n`);
      });
    },
    close() {
      const c = child;
      child = null;
      failAll("closed");
      c?.stdin?.end();
    },
  };
}

/** A pod's side through the helper; through `fallback` while the helper is unavailable. */
export function podSideVia(helper: NetlinkHelper, fallback: PodSide): PodSide {
  return (nodeNs, spec, w) =>
    helper
      .wirePod({
        netns: spec.netns,
        nodeNetns: nodeNs,
        ifname: spec.ifname,
        podMac: w.podMac,
        hostIfname: w.hostIfname,
        hostMac: w.hostMac,
        mtu: Math.trunc(spec.mtu),
        ip: spec.ip,
        gateway: POD_GATEWAY,
        ...(spec.ip6 ? { ip6: spec.ip6, gateway6: POD_GATEWAY6 } : {}),
      })
      .catch((e: unknown) => {
        if (!(e instanceof HelperUnavailable)) throw e;
        return fallback(nodeNs, spec, w);
      });
}
