// The daemon's API: HTTP/1.1 + JSON on a unix socket (mode 0600). The
// node's CNI forwarder (POST /v1/cni, cni-exec.ts) and the operator CLI are
// its clients. Errors answer
// `{error: {code, message}}` with a code from cni/facts.ts (DAEMON_ERRORS).

import { chmod, lstat, mkdir, readdir, unlink } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createConnection } from "node:net";
import { basename, dirname } from "node:path";
import { DAEMON_ERRORS } from "../../cni/facts.js";
import { BodyTooLarge, closeServer, listen, readBody, sendJson } from "../../lib/http.js";
import { isObject } from "../../lib/json.js";
import type { Logger } from "../../lib/log.js";
import { IFNAME } from "../../lib/net.js";
import { type Pool, TryAgainError } from "../../pool/pool.js";
import { type CniInvocation, type CniOutcome, CONTAINER_ID, K8S_NAME, parseFrame } from "./cni-exec.js";
import { badRequest, DaemonError } from "./errors.js";

const MAX_BODY = 64 * 1024;
/** The forwarder reads at most 8 MiB of stdin; its environment comes on top. */
const MAX_FRAME = 9 * 1024 * 1024;
const EXEC_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export interface ApiDeps {
  pool: Pool;
  /** The CNI protocol (cni-exec.ts), with a datapath; absent without one. */
  cni?: { run(inv: CniInvocation): Promise<CniOutcome> };
  log: Logger;
  ready(): boolean;
  /** Resync with the cloud now (the operator's `eniway gc`). */
  resync?(): Promise<unknown>;
  /** Pods, pool and cloud side by side (the operator's `eniway mapping`). */
  mapping?(): Promise<unknown>;
  /** The Kubernetes side's counters (watch, releases, events, requests), or null when it is off. */
  kubernetes?(): unknown;
  /** NetworkPolicy for one pod of this node (the operator's `eniway policy`); absent when not enforced. */
  policy?: { explain(namespace: string, name: string): Promise<object | null> };
}

export interface ApiServer {
  close(): Promise<void>;
}

const poolApiOff = (route: string): DaemonError =>
  new DaemonError(
    "NotFound",
    `${route} is served only by a daemon without a datapath; a pod's IP is released by its CNI DEL`,
  );

async function readText(req: IncomingMessage, max: number): Promise<string> {
  try {
    return await readBody(req, max);
  } catch (e) {
    if (e instanceof BodyTooLarge) throw badRequest(`request body larger than ${max} bytes`);
    throw e;
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readText(req, MAX_BODY);
  let v: unknown;
  try {
    v = JSON.parse(text || "{}");
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  if (!isObject(v)) throw badRequest("request body must be an object");
  return v;
}

function field(body: Record<string, unknown>, name: string, re: RegExp): string {
  const v = body[name];
  if (typeof v !== "string" || !re.test(v))
    throw badRequest(`${name} is missing or invalid: ${JSON.stringify(v)}`);
  return v;
}

function podOf(body: Record<string, unknown>): { namespace: string; name: string; uid: string } {
  const p = body.pod;
  if (p === undefined) return { namespace: "", name: "", uid: "" };
  if (!isObject(p)) throw badRequest("pod must be an object");
  const get = (k: string, re: RegExp): string => {
    const v = p[k] ?? "";
    if (typeof v !== "string" || (v !== "" && !re.test(v))) throw badRequest(`pod.${k} is invalid`);
    return v;
  };
  return {
    namespace: get("namespace", K8S_NAME),
    name: get("name", K8S_NAME),
    uid: get("uid", /^[A-Za-z0-9-]{1,64}$/),
  };
}

/** Is something already serving this socket? */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/**
 * The socket's folder, made 0700 (also when it existed, as a hostPath the
 * kubelet made 0755): only root may even reach the socket. A folder that
 * holds anything but the socket is not eniway's alone, and keeps its mode.
 */
async function privateFolder(dir: string, socketName: string, log: Logger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new Error(`socket: ${dir} is not a folder`);
  if ((st.mode & 0o077) === 0) return;
  // The forwarder's record of DELs made while the daemon was away sits beside the socket.
  const others = (await readdir(dir)).filter((n) => n !== socketName && n !== `${socketName}.del`);
  if (others.length === 0) await chmod(dir, 0o700);
  else
    log.warn("the socket's folder holds other files; its mode is left as it is (the socket itself is 0600)", {
      folder: dir,
      mode: (st.mode & 0o777).toString(8),
    });
}

export async function startApi(socketPath: string, deps: ApiDeps): Promise<ApiServer> {
  const { pool, log } = deps;

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://eniway");
    const m = `${req.method} ${url.pathname}`;
    switch (m) {
      case "GET /healthz":
        return sendJson(res, 200, { ok: true });
      case "GET /readyz":
        return sendJson(res, deps.ready() ? 200 : 503, { ready: deps.ready() });
      case "GET /v1/allocations":
        return sendJson(res, 200, { allocations: pool.allocations() });
      case "GET /v1/pool":
        return sendJson(res, 200, pool.summary());
      case "POST /v1/resync":
        if (!deps.resync) throw badRequest("this daemon cannot resync");
        return sendJson(res, 200, await deps.resync());
      case "GET /v1/policy": {
        const [namespace = "", name = ""] = (url.searchParams.get("pod") ?? "").split("/");
        if (!K8S_NAME.test(namespace) || !K8S_NAME.test(name)) throw badRequest("pod must be NAMESPACE/NAME");
        if (!deps.policy) throw new DaemonError("NotFound", "this daemon does not enforce NetworkPolicy");
        const e = await deps.policy.explain(namespace, name);
        if (!e) throw new DaemonError("NotFound", `pod ${namespace}/${name} has no IP on this node`);
        return sendJson(res, 200, { pod: `${namespace}/${name}`, ...e });
      }
      case "GET /v1/kubernetes":
        return sendJson(res, 200, { kubernetes: deps.kubernetes?.() ?? null });
      case "GET /v1/mapping":
        if (!deps.mapping) throw badRequest("this daemon cannot map");
        return sendJson(res, 200, await deps.mapping());
      case "GET /v1/ips":
        return sendJson(res, 200, { ips: pool.ips() });
      // The pool's own API, on a daemon that wires nothing (datapath.enabled: false): with a
      // datapath, a pod's IP is freed only with its wiring, by a CNI DEL (or GC, or a release
      // of a pod that is gone).
      case "POST /v1/allocate": {
        if (deps.cni) throw poolApiOff(m);
        const body = await readJson(req);
        const containerId = field(body, "containerId", CONTAINER_ID);
        const ifname = field(body, "ifname", IFNAME);
        const started = performance.now();
        const a = await pool.allocate({ containerId, ifname, pod: podOf(body) });
        log.info("allocated", {
          containerId,
          ifname,
          ip: a.ip,
          eniId: a.eniId,
          ms: +(performance.now() - started).toFixed(2),
        });
        return sendJson(res, 200, a);
      }
      case "POST /v1/release": {
        if (deps.cni) throw poolApiOff(m);
        const body = await readJson(req);
        const containerId = field(body, "containerId", CONTAINER_ID);
        const ifname = field(body, "ifname", IFNAME);
        const held = pool.allocations().find((a) => a.containerId === containerId && a.ifname === ifname);
        if (held?.network)
          throw badRequest(
            `${containerId}/${ifname} is an attachment of CNI network ${held.network}: only its CNI DEL releases it`,
          );
        const released = await pool.release(containerId, ifname);
        if (released) log.info("released", { containerId, ifname, ip: released.ip });
        return sendJson(res, 200, { released });
      }
      case "POST /v1/cni": {
        if (!deps.cni) throw badRequest("this daemon has no datapath: it serves no CNI requests");
        const f = parseFrame(await readText(req, MAX_FRAME));
        if (!f) throw badRequest("not a CNI request: NAME=VALUE\\0 for each CNI_ variable, \\0, then stdin");
        const name = req.headers["eniway-plugin"];
        const execName = typeof name === "string" && EXEC_NAME.test(name) ? name : "eniway";
        const out = await deps.cni.run({ ...f, execName });
        const body = Buffer.from(`${out.code}\n${out.stdout}`);
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": body.length });
        res.end(body);
        return;
      }
      default:
        throw new DaemonError("NotFound", `no route ${m}`);
    }
  };

  const fail = (res: ServerResponse, code: keyof typeof DAEMON_ERRORS, message: string): void =>
    sendJson(res, DAEMON_ERRORS[code], { error: { code, message } });

  const server: Server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (e instanceof DaemonError) return fail(res, e.code, e.message);
      if (e instanceof TryAgainError) return fail(res, "TryAgainLater", e.message);
      const message = e instanceof Error ? e.message : String(e);
      log.error("api request failed", { url: req.url, error: message });
      fail(res, "Internal", message);
    });
  });

  await privateFolder(dirname(socketPath), basename(socketPath), log);
  const exists = await lstat(socketPath).then(
    () => true,
    () => false,
  );
  if (exists) {
    if (await socketInUse(socketPath)) throw new Error(`another daemon is serving ${socketPath}`);
    await unlink(socketPath);
  }
  const oldMask = process.umask(0o177);
  try {
    await listen(server, { path: socketPath });
  } finally {
    process.umask(oldMask);
  }
  await chmod(socketPath, 0o600);
  return { close: () => closeServer(server) };
}
