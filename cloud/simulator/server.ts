// `eniway sim`: the ECS and VPC OpenAPI, the instance metadata service and an
// admin API over one HTTP listener. The gateway order is: method, Action and
// Version, authentication, throttling, injected faults, then the action.

import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { listen, readBody, sendJson } from "../../lib/http.js";
import { type Logger, silentLogger } from "../../lib/log.js";
import { SchemaError } from "../../lib/schema.js";
import { sleep } from "../../lib/time.js";
import { ECS_API_VERSION, isSimAction, type SimAction, VPC_API_VERSION } from "../types.js";
import { ACTIONS, renderEni } from "./actions.js";
import { renderReservation } from "./actions-reservations.js";
import { createAuthenticator } from "./auth.js";
import { type Datapath, setupDatapath } from "./datapath.js";
import { type ApiError, ApiFailure, apiError, missing } from "./errors.js";
import { createFaultInjector } from "./faults.js";
import { type ActionContext, isTransition } from "./handler.js";
import { createMetadataService, type MetadataReply } from "./metadata.js";
import type { Params } from "./params.js";
import { reserveWorldBlocks } from "./reservations.js";
import { availableIps, type Clock, checkInvariants, createState, type SimState, stopState } from "./state.js";
import { createThrottler } from "./throttle.js";
import { faultsSchema, type LatencyMs, latencySchema, throttleSchema, type World } from "./world.js";

export interface SimulatorOptions {
  host?: string;
  port?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  /** Called for every authenticated, unthrottled call before it runs (tests use it to time crashes). */
  onAction?: (action: SimAction) => void;
}

export interface Simulator {
  url: string;
  state: SimState;
  world: World;
  /** The VPC made of network namespaces, when the world asks for one (`datapath`). */
  datapath?: Datapath;
  /** Resolves when every pending Attach/Detach has settled. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

interface Stats {
  calls: Record<string, number>;
  errors: Record<string, Record<string, number>>;
}

const MAX_BODY = 1 << 20;

function toParams(search: URLSearchParams): Params {
  const p: Params = {};
  for (const [k, v] of search) p[k] = v;
  return p;
}

function pick(latency: number | number[] | undefined, random: () => number): number {
  if (latency === undefined) return 0;
  if (typeof latency === "number") return latency;
  const [lo = 0, hi = lo] = latency;
  return lo + random() * (hi - lo);
}

export async function startSimulator(world: World, opts: SimulatorOptions = {}): Promise<Simulator> {
  const log = opts.logger ?? silentLogger;
  const clock = opts.clock ?? { now: () => Date.now() };
  const random = opts.random ?? Math.random;
  const state = createState(world, clock);
  reserveWorldBlocks(state, world);
  const auth = createAuthenticator({
    keys: world.credentials,
    windowMs: world.timestampWindowSeconds * 1000,
    clock,
  });
  const throttle = createThrottler(world.throttle, () => clock.now());
  const faults = createFaultInjector(world.faults, random);
  let latency: LatencyMs = world.latencyMs;
  const locks = new Set<string>();
  const idempotency: ActionContext["idempotency"] = new Map();
  const stats: Stats = { calls: {}, errors: {} };
  const metadata = createMetadataService({
    state,
    requireToken: world.metadata.requireToken,
    roleName: world.ramRole.roleName,
    stsTtlSeconds: world.ramRole.ttlSeconds,
    issueSts: (ttl) => auth.issueSts(ttl),
  });

  const hostFor = (version: string): string =>
    version === VPC_API_VERSION ? `vpc.${world.regionId}.aliyuncs.com` : `ecs.${world.regionId}.aliyuncs.com`;

  const count = (action: string, code?: string): void => {
    stats.calls[action] = (stats.calls[action] ?? 0) + 1;
    if (code) {
      const e = stats.errors[action] ?? {};
      e[code] = (e[code] ?? 0) + 1;
      stats.errors[action] = e;
    }
  };

  const sendError = (
    res: ServerResponse,
    err: ApiError,
    requestId: string,
    version: string,
    action: string,
    headers: Record<string, string> = {},
  ): void => {
    count(action, err.code);
    const product = version === VPC_API_VERSION ? "Vpc" : "Ecs";
    sendJson(
      res,
      err.status,
      {
        RequestId: requestId,
        HostId: hostFor(version),
        Code: err.code,
        Message: err.message,
        Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(err.code)}&product=${product}&requestId=${requestId}`,
      },
      headers,
    );
  };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const requestId = randomUUID().toUpperCase();
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "POST")
      return sendError(res, apiError("UnsupportedHTTPMethod"), requestId, "", "-");
    const body = method === "POST" ? await readBody(req, MAX_BODY) : "";
    const params: Params = { ...toParams(url.searchParams), ...toParams(new URLSearchParams(body)) };
    // V3 (the official SDKs) names the action and version in headers only.
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const actionName = params.Action ?? header("x-acs-action") ?? "";
    const version = params.Version ?? header("x-acs-version") ?? "";
    if (!actionName) return sendError(res, missing("Action"), requestId, version, "-");
    if (!version) return sendError(res, missing("Version"), requestId, version, actionName);
    const known = isSimAction(actionName) ? ACTIONS[actionName] : undefined;
    if (!known || known.version !== version) {
      const err = [ECS_API_VERSION, VPC_API_VERSION].includes(version)
        ? apiError("InvalidAction.NotFound")
        : apiError("InvalidVersion");
      return sendError(res, err, requestId, version, actionName);
    }
    const action = actionName as SimAction;
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const authError =
      req.headers.authorization !== undefined
        ? auth.checkV3({
            method,
            path: q < 0 ? raw : raw.slice(0, q),
            rawQuery: q < 0 ? "" : raw.slice(q + 1),
            headers: req.headers,
            body,
          })
        : auth.check(method, params);
    if (authError) return sendError(res, authError, requestId, version, action);
    if (!throttle.take(action)) {
      // The official SDKs wait this many milliseconds before a retry (when retries are on).
      const retryAfter = { "x-acs-retry-after": String(throttle.waitMs(action)) };
      return sendError(res, apiError("Throttling"), requestId, version, action, retryAfter);
    }

    opts.onAction?.(action);
    const fault = faults.decide(action);
    const total =
      (isTransition(action) ? pick(latency["*"], random) : pick(latency[action] ?? latency["*"], random)) +
      fault.extraLatencyMs;
    if (fault.error && !fault.afterEffect) {
      await sleep(total);
      return sendError(res, fault.error, requestId, version, action);
    }
    const held: string[] = [];
    const ctx: ActionContext = {
      state,
      transitionMs: (a) => pick(latency[a], random),
      idempotency,
      clientTokenTtlMs: world.clientTokenTtlSeconds * 1000,
      lock(id) {
        if (locks.has(id)) throw new ApiFailure(apiError("Operation.Conflict"));
        locks.add(id);
        held.push(id);
      },
    };
    try {
      // The effect lands halfway through the call, so a client that gives up
      // early cannot know whether it happened (ClientToken is the answer).
      await sleep(total / 2);
      const result = await known.handler(ctx, params);
      await sleep(total / 2);
      if (fault.error) return sendError(res, fault.error, requestId, version, action);
      count(action);
      sendJson(res, 200, { RequestId: requestId, ...result });
    } catch (e) {
      if (e instanceof ApiFailure) return sendError(res, e.error, requestId, version, action);
      log.error("simulator action crashed", { action, requestId, error: (e as Error).stack ?? String(e) });
      sendError(res, apiError("InternalError"), requestId, version, action);
    } finally {
      for (const id of held) locks.delete(id);
    }
  };

  const adminState = (): unknown => ({
    regionId: state.regionId,
    vpc: {
      vpcId: state.vpcId,
      cidr: state.vpcCidr,
      ...(state.vpcIpv6Cidr ? { ipv6Cidr: state.vpcIpv6Cidr } : {}),
    },
    vSwitches: [...state.vSwitches.values()].map((v) => ({
      vSwitchId: v.id,
      zoneId: v.zoneId,
      cidr: v.cidrBlock,
      availableIpAddressCount: availableIps(v),
      usedIpAddressCount: v.used.size,
      ...(v.ipv6 ? { ipv6Cidr: v.ipv6.cidrBlock, usedIpv6AddressCount: v.ipv6.used.size } : {}),
      cidrReservations: [...v.reservations.values()].map((r) => renderReservation(state, r)),
    })),
    instances: [...state.instances.values()].map((i) => ({
      instanceId: i.id,
      instanceType: i.type.instanceTypeId,
      zoneId: i.zoneId,
      vSwitchId: i.vSwitchId,
      netns: i.netns,
      primaryEniId: i.primaryEniId,
    })),
    networkInterfaces: [...state.enis.values()].sort((a, b) => a.seq - b.seq).map(renderEni),
    invariantViolations: checkInvariants(state),
  });

  const handleAdmin = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const knobs = {
      faults: { get: () => faults.config(), set: (v: unknown) => faults.set(faultsSchema(v, "faults")) },
      latency: { get: () => latency, set: (v: unknown) => (latency = latencySchema(v, "latencyMs")) },
      throttle: {
        get: () => throttle.config(),
        set: (v: unknown) => throttle.set(throttleSchema(v, "throttle")),
      },
    } as const;
    if (path === "state" && req.method === "GET") return sendJson(res, 200, adminState());
    if (path === "stats" && req.method === "GET") return sendJson(res, 200, stats);
    if (path === "settle" && req.method === "POST") {
      await settle();
      return sendJson(res, 200, { settled: true });
    }
    if (path in knobs) {
      const knob = knobs[path as keyof typeof knobs];
      if (req.method === "GET") return sendJson(res, 200, knob.get());
      if (req.method === "PUT") {
        try {
          knob.set(JSON.parse(await readBody(req, MAX_BODY)));
          log.info("simulator knob changed", { knob: path });
          return sendJson(res, 200, knob.get());
        } catch (e) {
          const msg = e instanceof SchemaError || e instanceof SyntaxError ? e.message : "invalid body";
          return sendJson(res, 400, { error: msg });
        }
      }
      return sendJson(res, 405, { error: "use GET or PUT" });
    }
    return sendJson(res, 404, { error: `no admin endpoint ${path}` });
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://sim");
    const reply = (r: MetadataReply): void => {
      res.writeHead(r.status, { "content-type": r.contentType ?? "text/plain" });
      res.end(r.body);
    };
    const route = async (): Promise<void> => {
      if (url.pathname === "/") return handleApi(req, res, url);
      const meta = /^\/meta\/([^/]+)\/latest\/(.*)$/.exec(url.pathname);
      if (meta) return reply(metadata.handle(req, decodeURIComponent(meta[1]!), meta[2]!));
      // As on ECS: /latest/ answers the instance whose primary IP the request comes from.
      const own = /^\/latest\/(.*)$/.exec(url.pathname);
      if (own) {
        const peer = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
        const inst = [...state.instances.values()].find(
          (i) => state.enis.get(i.primaryEniId)?.ips[0] === peer,
        );
        return reply(
          inst
            ? metadata.handle(req, inst.id, own[1]!)
            : { status: 404, body: `no instance has the primary IP ${peer}` },
        );
      }
      if (url.pathname.startsWith("/admin/"))
        return handleAdmin(req, res, url.pathname.slice("/admin/".length));
      sendJson(res, 404, { error: "not found" });
    };
    route().catch((e: unknown) => {
      log.error("simulator request failed", { path: url.pathname, error: String(e) });
      if (!res.headersSent) sendJson(res, 400, { error: "bad request" });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;

  const settle = async (): Promise<void> => {
    while (state.transitions.size > 0) await Promise.all([...state.transitions.values()]);
  };

  // Datapath mode: the namespaces exist before the first request can attach anything.
  const datapath = world.datapath
    ? await setupDatapath(world, state, log.child({ component: "sim-datapath" }))
    : undefined;
  if (datapath) state.hooks = datapath.hooks;

  try {
    await listen(server, { host: opts.host ?? "127.0.0.1", port: opts.port ?? 0 });
  } catch (e) {
    await datapath?.teardown();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.info("simulator listening", { url, instances: world.instances.length });

  return {
    url,
    state,
    world,
    ...(datapath ? { datapath } : {}),
    settle,
    async stop() {
      stopState(state);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await datapath?.teardown();
    },
  };
}
