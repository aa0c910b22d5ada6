// The CNI protocol behind the daemon's socket, the one implementation of it.
// The node's CNI binary (cni/forwarder/eniway-cni.c) sends the runtime's
// CNI_* environment and stdin unchanged; this validates them as libcni does
// (cni/spec/), runs the command through the CNI handlers and answers what the
// forwarder writes: the exit code and the bytes for stdout (the result, the
// error JSON, or nothing).
//
// The frame: "NAME=VALUE\0" for each variable, an empty entry "\0", then
// stdin. The answer: "EXIT\n" followed by stdout.

import type { DaemonErrorCode } from "../../cni/facts.js";
import { type AddAnswer, addResult } from "../../cni/spec/result.js";
import {
  type CniEnv,
  CniError,
  checkNotNodeNetns,
  decodeConfig,
  ERR,
  errorJson,
  type PluginConfig,
  parseConfig,
  readEnv,
  versionForErrors,
  versionResult,
} from "../../cni/spec/spec.js";
import type { Logger } from "../../lib/log.js";
import { isIfname } from "../../lib/net.js";
import { TryAgainError } from "../../pool/pool.js";
import type { CniHandlers } from "./cni.js";
import { DaemonError } from "./errors.js";

/** A container ID the daemon stores ([skel]'s characters, at most 256). */
export const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
/** A Kubernetes object name or namespace as CNI_ARGS carries it. */
export const K8S_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;
const POD_UID = /^[A-Za-z0-9-]{1,64}$/;

export type CniCommand = "ADD" | "DEL" | "CHECK" | "GC";
/** What a finished CNI request tells the metrics and the dashboard. */
export type CniDone =
  | {
      command: "ADD";
      containerId: string;
      pod: string;
      ip: string;
      eniId: string;
      timings: { allocateMs: number; kernelMs: number };
    }
  | { command: "DEL"; containerId: string; released: string | null }
  | { command: "CHECK" }
  | { command: "GC"; released: number };

export interface CniExecDeps {
  cni: CniHandlers;
  /** The node's network namespace path ("" for the daemon's own): no pod may be given it. */
  nodeNetns: string;
  ready(): boolean;
  log: Logger;
  /** Told of every ADD, DEL, CHECK and GC: its result ("ok" or the error code) and its time. */
  observe?(command: CniCommand, result: string, seconds: number, done?: CniDone): void;
}

export interface CniInvocation {
  env: Record<string, string>;
  stdin: string;
  /** The name the forwarder was started as ([spec] `type` names the executable). */
  execName: string;
}

export interface CniOutcome {
  code: number;
  /** What the forwarder writes on stdout; "" for nothing. */
  stdout: string;
  /** The CNI error code, when it failed. */
  error?: number;
}

/** The forwarder's frame, or null when it is not one. */
export function parseFrame(body: string): { env: Record<string, string>; stdin: string } | null {
  const env: Record<string, string> = {};
  for (let pos = 0; ; ) {
    const end = body.indexOf("\0", pos);
    if (end < 0) return null;
    if (end === pos) return { env, stdin: body.slice(end + 1) };
    const entry = body.slice(pos, end);
    const eq = entry.indexOf("=");
    if (eq <= 0) return null;
    // A name twice (an environment made by hand): the first, as the forwarder's getenv and Go's os.Getenv read it.
    if (!Object.hasOwn(env, entry.slice(0, eq))) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    pos = end + 1;
  }
}

/** The frame for this environment and stdin, as the forwarder makes it. */
export const frame = (env: Record<string, string>, stdin: string): string =>
  `${Object.entries(env)
    .map(([k, v]) => `${k}=${v}\0`)
    .join("")}\0${stdin}`;

/** The daemon's code of an error a handler threw: the result label of the CNI metrics. */
export function errorCode(e: unknown): DaemonErrorCode {
  if (e instanceof DaemonError) return e.code;
  if (e instanceof TryAgainError) return "TryAgainLater";
  return "Internal";
}

/** The CNI code of an error a handler threw, by the daemon's error code. */
function cniErrorOf(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof TryAgainError) return new CniError(ERR.tryAgainLater, e.message, "TryAgainLater");
  if (e instanceof DaemonError) {
    const byCode: Partial<Record<DaemonErrorCode, number>> = {
      BadRequest: ERR.invalidConfig,
      UnknownContainer: ERR.unknownContainer,
      CheckFailed: ERR.checkFailed,
      TryAgainLater: ERR.tryAgainLater,
    };
    return new CniError(byCode[e.code] ?? ERR.internal, e.message, e.code);
  }
  return new CniError(ERR.internal, e instanceof Error ? e.message : String(e), "internal error");
}

/** The pod of CNI_ARGS; names that are not Kubernetes names are refused (code 7). */
function podOf(env: CniEnv): { namespace: string; name: string; uid: string } {
  const get = (k: "K8S_POD_NAMESPACE" | "K8S_POD_NAME" | "K8S_POD_UID", re: RegExp): string => {
    const v = env.args[k] ?? "";
    if (v !== "" && !re.test(v)) throw new CniError(ERR.invalidConfig, `invalid ${k} in CNI_ARGS`, v);
    return v;
  };
  return {
    namespace: get("K8S_POD_NAMESPACE", K8S_NAME),
    name: get("K8S_POD_NAME", K8S_NAME),
    uid: get("K8S_POD_UID", POD_UID),
  };
}

function attachmentOf(env: CniEnv): { containerId: string; ifname: string } {
  if (!CONTAINER_ID.test(env.containerId))
    throw new CniError(
      ERR.invalidEnv,
      "invalid CNI_CONTAINERID: longer than 256 characters",
      env.containerId,
    );
  return { containerId: env.containerId, ifname: env.ifname };
}

type Run = (env: CniEnv, conf: PluginConfig, deps: CniExecDeps) => Promise<CniOutcome>;

const cmdAdd: Run = async (env, conf, deps) => {
  checkNotNodeNetns(env.netns, deps.nodeNetns);
  const { containerId, ifname } = attachmentOf(env);
  const pod = podOf(env);
  const r = await observed(
    deps,
    "ADD",
    () => deps.cni.add({ containerId, ifname, netns: env.netns, network: conf.name, pod }),
    (a) => ({
      command: "ADD",
      containerId,
      pod: pod.name ? `${pod.namespace}/${pod.name}` : containerId,
      ip: a.ip,
      eniId: a.eniId,
      timings: a.timings,
    }),
  );
  deps.log.info("cni add", {
    containerId,
    ifname,
    ip: r.ip,
    ...(r.ip6 ? { ip6: r.ip6 } : {}),
    eniId: r.eniId,
    ...r.timings,
  });
  const answer: AddAnswer = r;
  return json(0, addResult(conf.cniVersion, answer, ifname, env.netns, conf.dns, conf.prevResult));
};

const cmdDel: Run = async (env, _conf, deps) => {
  checkNotNodeNetns(env.netns, deps.nodeNetns);
  // An ADD refuses such a name before anything is allocated: there is nothing to delete.
  if (!isIfname(env.ifname)) return { code: 0, stdout: "" };
  const { containerId, ifname } = attachmentOf(env);
  const r = await observed(
    deps,
    "DEL",
    () => deps.cni.del({ containerId, ifname }),
    (d) => ({ command: "DEL", containerId, released: d.released }),
  );
  deps.log.info("cni del", { containerId, ifname, released: r.released });
  return { code: 0, stdout: "" };
};

const cmdCheck: Run = async (env, conf, deps) => {
  // [spec] CHECK: "must include a prevResult field".
  if (!conf.prevResult) throw new CniError(ERR.invalidConfig, "CHECK requires prevResult");
  checkNotNodeNetns(env.netns, deps.nodeNetns);
  const what = { ...attachmentOf(env), netns: env.netns };
  await observed(
    deps,
    "CHECK",
    () => deps.cni.check(what),
    () => ({ command: "CHECK" }),
  );
  return { code: 0, stdout: "" };
};

/**
 * [spec 1.1.0] GC: the configuration carries `cni.dev/valid-attachments`, a
 * list of {containerID, ifname}; libcni also sends it as the older
 * `cni.dev/attachments` (the key's first spelling in the spec).
 */
const cmdGc: Run = async (_env, conf, deps) => {
  const list = conf.raw["cni.dev/valid-attachments"] ?? conf.raw["cni.dev/attachments"];
  if (!Array.isArray(list))
    throw new CniError(ERR.invalidConfig, "GC requires cni.dev/valid-attachments (a list of attachments)");
  const valid = list.map((a: unknown, i: number) => {
    const o = (typeof a === "object" && a !== null ? a : {}) as Record<string, unknown>;
    if (
      typeof o.containerID !== "string" ||
      !CONTAINER_ID.test(o.containerID) ||
      typeof o.ifname !== "string"
    )
      throw new CniError(
        ERR.invalidConfig,
        `invalid cni.dev/valid-attachments[${i}]`,
        "each attachment needs a containerID and an ifname",
      );
    return { containerId: o.containerID, ifname: o.ifname };
  });
  const r = await observed(
    deps,
    "GC",
    () => deps.cni.gc({ network: conf.name, valid }),
    (g) => ({ command: "GC", released: g.released.length }),
  );
  deps.log.info("cni gc", { network: conf.name, released: r.released.length });
  return { code: 0, stdout: "" };
};

/** [spec 1.1.0] STATUS: success when the daemon can serve ADDs, else code 50. */
const cmdStatus: Run = async (_env, _conf, deps) => {
  if (deps.ready()) return { code: 0, stdout: "" };
  throw new CniError(ERR.pluginNotAvailable, "plugin not available", "eniway daemon is not ready");
};

const COMMAND_RUN: Record<Exclude<CniEnv["command"], "VERSION">, Run> = {
  ADD: cmdAdd,
  DEL: cmdDel,
  CHECK: cmdCheck,
  GC: cmdGc,
  STATUS: cmdStatus,
};

/** Runs a CNI request and tells the observer how it ended. */
async function observed<T>(
  deps: CniExecDeps,
  command: CniCommand,
  run: () => Promise<T>,
  done: (r: T) => CniDone,
): Promise<T> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  try {
    const r = await run();
    deps.observe?.(command, "ok", seconds(), done(r));
    return r;
  } catch (e) {
    deps.observe?.(command, errorCode(e), seconds());
    throw e;
  }
}

const json = (code: number, v: Record<string, unknown>): CniOutcome => ({
  code,
  stdout: `${JSON.stringify(v)}\n`,
});

/** One CNI invocation, as a plugin process would run it: never throws. */
export async function runCni(inv: CniInvocation, deps: CniExecDeps): Promise<CniOutcome> {
  let version = "1.1.0";
  try {
    const env = readEnv(inv.env);
    // [skel] VERSION needs nothing but CNI_COMMAND; libcni sends {"cniVersion"} on stdin.
    if (env.command === "VERSION") return json(0, versionResult(inv.stdin));
    const raw = decodeConfig(inv.stdin);
    version = versionForErrors(raw);
    const conf = parseConfig(raw, env.command, inv.execName);
    version = conf.cniVersion;
    if (conf.debug)
      deps.log.info("cni request", { command: env.command, containerId: env.containerId, netns: env.netns });
    return await COMMAND_RUN[env.command](env, conf, deps);
  } catch (e) {
    const err = cniErrorOf(e);
    if (err.code === ERR.internal) deps.log.error("cni request failed", { error: err.message });
    return { ...json(1, errorJson(err, version)), error: err.code };
  }
}
