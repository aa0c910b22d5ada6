// eniway's CNI plugin: a thin client of the node daemon. It validates what
// the runtime passes (environment + stdin), forwards the request over the
// daemon's unix socket, and prints exactly one JSON document on stdout: the
// result, the error, or nothing for a successful DEL, CHECK, GC or STATUS.
// Diagnostics go to stderr, as JSON lines, only with "debug": true.
//
// Dependency-free so that `bun build --compile` makes a standalone executable
// of it: see docs/architecture.md, "Why a thin plugin".

import { fstatSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { isIfname } from "../../lib/net.js";
import { DaemonUnreachable, daemonError, request } from "./daemon.js";
import { addResult, checkAddAnswer } from "./result.js";
import {
  type CniEnv,
  CniError,
  checkNotOwnNetns,
  decodeConfig,
  ERR,
  errorJson,
  type PluginConfig,
  parseConfig,
  readEnv,
  readStdin,
  versionForErrors,
  versionResult,
} from "./spec.js";

type Log = (msg: string, fields?: Record<string, unknown>) => void;

interface Outcome {
  code: number;
  stdout?: Record<string, unknown>;
}

/**
 * Is stdin a terminal (someone typed `CNI_COMMAND=VERSION eniway`)? Then
 * VERSION does not wait for input. A character device stands for one:
 * node:tty would cost the plugin's start-up several milliseconds, and the
 * other character device a runtime might give, /dev/null, is empty anyway.
 */
function interactive(): boolean {
  try {
    return fstatSync(0).isCharacterDevice();
  } catch {
    return false;
  }
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  }
}

function makeLog(conf: PluginConfig, env: CniEnv): Log {
  if (!conf.debug) return () => {};
  const base = { plugin: "eniway", command: env.command, containerId: env.containerId || undefined };
  return (msg, fields) => {
    try {
      writeAll(2, `${JSON.stringify({ time: new Date().toISOString(), msg, ...base, ...fields })}\n`);
    } catch {
      // stderr gone: nothing to tell
    }
  };
}

const call = (conf: PluginConfig, method: "GET" | "POST", path: string, payload?: unknown) =>
  request(conf.socket, method, path, payload, conf.timeoutMs);

/**
 * A POST that needs the daemon: unreachable means "try again later" (code 11).
 * [spec] CHECK and GC "should return an error if ... external dependencies such
 * as a daemon required for connectivity" are missing; ADD waits for it too.
 */
async function forward(
  conf: PluginConfig,
  path: string,
  payload: unknown,
): Promise<Awaited<ReturnType<typeof call>>> {
  try {
    return await call(conf, "POST", path, payload);
  } catch (e) {
    if (e instanceof DaemonUnreachable)
      throw new CniError(ERR.tryAgainLater, "try again later: daemon not reachable", e.message);
    throw e;
  }
}

async function cmdAdd(env: CniEnv, conf: PluginConfig, log: Log): Promise<Outcome> {
  checkNotOwnNetns(env.netns);
  const started = performance.now();
  const res = await forward(conf, "/v1/cni/add", {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    args: env.args,
    network: conf.name,
  });
  log("daemon answered", { status: res.status, ms: +(performance.now() - started).toFixed(2) });
  if (res.status !== 200) throw daemonError(res);
  const answer = checkAddAnswer(res.json);
  return {
    code: 0,
    stdout: addResult(conf.cniVersion, answer, env.ifname, env.netns, conf.dns, conf.prevResult),
  };
}

async function cmdDel(env: CniEnv, conf: PluginConfig, log: Log): Promise<Outcome> {
  checkNotOwnNetns(env.netns);
  // An ADD refuses such a name before anything is allocated: there is nothing to delete.
  if (!isIfname(env.ifname)) {
    log("interface name eniway never wires; nothing to delete", { ifname: env.ifname });
    return { code: 0 };
  }
  const payload: Record<string, unknown> = {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    network: conf.name,
  };
  if (conf.prevResult) payload.prevResult = conf.prevResult;
  try {
    const res = await call(conf, "POST", "/v1/cni/del", payload);
    log("daemon answered", { status: res.status });
    if (res.status === 200) return { code: 0 };
    throw daemonError(res);
  } catch (e) {
    if (!(e instanceof DaemonUnreachable)) throw e;
    // [spec] DEL "should clean up as many resources as possible ... and return
    // a successful response": clean the host side ourselves, the daemon
    // releases the IP when it is back.
    // Loaded only here: node:crypto and the program runs stay off every other command's start.
    const { cleanupTargets, hostCleanup } = await import("./fallback.js");
    const targets = cleanupTargets(env.containerId, env.ifname, conf.prevResult);
    log("daemon unreachable; cleaning up locally", { reason: e.message, ...targets });
    hostCleanup(targets, conf.nodeNetns, log);
    return { code: 0 };
  }
}

async function cmdCheck(env: CniEnv, conf: PluginConfig, log: Log): Promise<Outcome> {
  // [spec] CHECK: "must include a prevResult field".
  if (!conf.prevResult) throw new CniError(ERR.invalidConfig, "CHECK requires prevResult");
  checkNotOwnNetns(env.netns);
  const res = await forward(conf, "/v1/cni/check", {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    network: conf.name,
    prevResult: conf.prevResult,
  });
  log("daemon answered", { status: res.status });
  if (res.status !== 200) throw daemonError(res);
  return { code: 0 };
}

/**
 * [spec 1.1.0] GC: the configuration carries `cni.dev/valid-attachments`, a
 * list of {containerID, ifname}; libcni also sends it as the older
 * `cni.dev/attachments` (the key's first spelling in the spec).
 */
async function cmdGc(conf: PluginConfig, log: Log): Promise<Outcome> {
  const list = conf.raw["cni.dev/valid-attachments"] ?? conf.raw["cni.dev/attachments"];
  if (!Array.isArray(list))
    throw new CniError(ERR.invalidConfig, "GC requires cni.dev/valid-attachments (a list of attachments)");
  const valid = list.map((a: unknown, i: number) => {
    const o = (typeof a === "object" && a !== null ? a : {}) as Record<string, unknown>;
    if (typeof o.containerID !== "string" || o.containerID === "" || typeof o.ifname !== "string")
      throw new CniError(
        ERR.invalidConfig,
        `invalid cni.dev/valid-attachments[${i}]`,
        "each attachment needs a containerID and an ifname",
      );
    return { containerId: o.containerID, ifname: o.ifname };
  });
  const res = await forward(conf, "/v1/cni/gc", { network: conf.name, validAttachments: valid });
  log("daemon answered", { status: res.status, released: (res.json as { released?: unknown })?.released });
  if (res.status !== 200) throw daemonError(res);
  return { code: 0 };
}

/** [spec 1.1.0] STATUS: success when the daemon can serve ADDs, else code 50. */
async function cmdStatus(conf: PluginConfig, log: Log): Promise<Outcome> {
  let why: string;
  try {
    const res = await call(conf, "GET", "/readyz");
    log("daemon answered", { status: res.status });
    if (res.status === 200) return { code: 0 };
    why = `eniway daemon is not ready (HTTP ${res.status})`;
  } catch (e) {
    if (!(e instanceof DaemonUnreachable)) throw e;
    why = `eniway daemon not reachable: ${e.message}`;
  }
  throw new CniError(ERR.pluginNotAvailable, "plugin not available", why);
}

async function run(): Promise<Outcome & { version: string }> {
  let version = "1.1.0";
  try {
    const env = readEnv(process.env);
    // [skel] VERSION needs nothing but CNI_COMMAND; libcni sends {"cniVersion"} on stdin.
    if (env.command === "VERSION")
      return { code: 0, version, stdout: versionResult(interactive() ? "" : readStdin()) };
    const raw = decodeConfig(readStdin());
    version = versionForErrors(raw);
    const conf = parseConfig(raw, env.command, basename(process.execPath));
    version = conf.cniVersion;
    const log = makeLog(conf, env);
    log("request", {
      netns: env.netns,
      ifname: env.ifname || undefined,
      network: conf.name,
      socket: conf.socket,
    });
    switch (env.command) {
      case "ADD":
        return { version, ...(await cmdAdd(env, conf, log)) };
      case "DEL":
        return { version, ...(await cmdDel(env, conf, log)) };
      case "CHECK":
        return { version, ...(await cmdCheck(env, conf, log)) };
      case "GC":
        return { version, ...(await cmdGc(conf, log)) };
      default:
        return { version, ...(await cmdStatus(conf, log)) };
    }
  } catch (e) {
    const err =
      e instanceof CniError
        ? e
        : new CniError(
            ERR.internal,
            e instanceof Error ? e.message : String(e),
            "internal error in the plugin",
          );
    return { code: 1, version, stdout: errorJson(err, version) };
  }
}

// The daemon starts this executable once more as its netlink helper (cni/netlink/helper.ts);
// a runtime never passes arguments.
if (process.argv[2] === "netlink-helper")
  import("../netlink/helper.js")
    .then((m) => m.netlinkHelper())
    .then(
      (code) => process.exit(code),
      () => process.exit(1),
    );
else
  run().then(
    (out) => {
      if (out.stdout) writeAll(1, `${JSON.stringify(out.stdout)}\n`);
      process.exit(out.code);
    },
    () => process.exit(1),
  );
