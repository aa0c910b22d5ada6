// Instance metadata client (http://100.100.100.200 on ECS, or the simulator's
// http://HOST:PORT/meta/INSTANCE). Uses the hardened-mode session token, retries
// throttling, server errors and connection failures, and never logs a token or
// a response body.

import { type RetryOptions, retry, SCHEDULES } from "../lib/backoff.js";
import { HTTP_URL } from "../lib/ids.js";
import { type Logger, silentLogger } from "../lib/log.js";
import { canonicalIpv6, isIpv4, isMac } from "../lib/net.js";
import {
  assertEniId,
  assertInstanceId,
  assertInstanceType,
  assertIpv4,
  assertMac,
  assertRamRoleName,
  assertRegionId,
  assertVSwitchId,
} from "./validate.js";

export const TOKEN_PATH = "/latest/api/token";
export const TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds";
export const TOKEN_HEADER = "X-aliyun-ecs-metadata-token";
export const MAX_TOKEN_TTL_SECONDS = 21600;

export class MetadataError extends Error {
  /** The metadata path (below latest/meta-data/) or the token path. */
  readonly path: string;
  /** HTTP status; 0 when no response arrived. */
  readonly status: number;
  readonly retryable: boolean;
  constructor(path: string, status: number, detail: string) {
    super(`metadata ${path}: ${detail}`);
    this.name = "MetadataError";
    this.path = path;
    this.status = status;
    this.retryable = status === 0 || status === 429 || status >= 500;
  }
}

export class MetadataNotFoundError extends MetadataError {
  constructor(path: string) {
    super(path, 404, "not found (HTTP 404)");
    this.name = "MetadataNotFoundError";
  }
}

export interface EniMetadata {
  mac: string;
  eniId: string;
  gateway: string;
  vSwitchCidr: string;
  /** As the metadata service lists them (the primary IP normally first). */
  privateIps: string[];
  primaryIp: string;
  /** The vSwitch's IPv6 gateway (ipv6-gateway); "" when the vSwitch has no IPv6. */
  ipv6Gateway: string;
}

export interface RamRoleCredentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken: string;
  expiration: Date;
}

export interface MetadataClient {
  /** Raw body of latest/meta-data/PATH. */
  get(path: string): Promise<string>;
  instanceId(): Promise<string>;
  instanceType(): Promise<string>;
  regionId(): Promise<string>;
  vSwitchId(): Promise<string>;
  /** MACs of all attached ENIs, lower case. */
  macs(): Promise<string[]>;
  eni(mac: string): Promise<EniMetadata>;
  ramRoles(): Promise<string[]>;
  ramRoleCredentials(role: string): Promise<RamRoleCredentials>;
}

export interface MetadataClientOptions {
  /** Base URL, e.g. http://100.100.100.200 or http://127.0.0.1:PORT/meta/i-xxx */
  endpoint: string;
  /** Per request. Default 2000 ms. */
  timeoutMs?: number;
  /** Extra attempts after a 429, 5xx, timeout or connection error. Default 3. */
  retries?: number;
  logger?: Logger;
  /** Session token lifetime, 1..21600. Default 21600. */
  tokenTtlSeconds?: number;
  /** Backoff tuning (tests make it tiny). */
  backoff?: Pick<RetryOptions, "baseMs" | "capMs" | "maxElapsedMs" | "sleep" | "random">;
  now?: () => number;
  /** Told of every read (metrics): the item's first path segment, seconds, and the failure if any. */
  observer?: (item: string, seconds: number, error: string | null) => void;
}

/** Parses private-ipv4s: a JSON array of strings, or tolerantly `[a, b]` / `a,b` / one per line. */
export function parsePrivateIpv4s(text: string): string[] {
  const body = text.trim();
  let items: unknown[] | undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (Array.isArray(parsed)) items = parsed;
    else if (typeof parsed === "string") items = [parsed];
  } catch {
    // not JSON: fall through to the lenient form
  }
  items ??= body
    .replace(/^\[|\]$/g, "")
    .split(/[\s,]+/)
    .map((s) => s.replace(/^["']|["']$/g, ""))
    .filter((s) => s !== "");
  const ips = items.map((s) => (typeof s === "string" ? s.trim() : ""));
  const bad = ips.find((ip) => !isIpv4(ip));
  if (bad !== undefined) throw new Error(`not an IPv4 address: ${JSON.stringify(bad.slice(0, 40))}`);
  return ips;
}

/** First line, trimmed, without a trailing '/'. */
export function parseValue(text: string): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  return line.trim().replace(/\/+$/, "");
}

/** One entry per line; blank lines dropped; trailing '/' removed. */
export function parseList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/\/+$/, ""))
    .filter((l) => l !== "");
}

function transportDetail(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"))
    return `timed out after ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = cause && typeof cause.code === "string" ? cause.code : undefined;
  return code ? `connection failed (${code})` : "connection failed";
}

interface Token {
  value: string;
  renewAt: number;
}

export function createMetadataClient(opts: MetadataClientOptions): MetadataClient {
  const base = opts.endpoint.replace(/\/+$/, "");
  if (!HTTP_URL.pattern?.test(base))
    throw new Error(`invalid metadata endpoint: ${JSON.stringify(opts.endpoint)}`);
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxAttempts = opts.retries === undefined ? SCHEDULES.metadata.maxAttempts : opts.retries + 1;
  const ttl = opts.tokenTtlSeconds ?? MAX_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS)
    throw new Error(`metadata tokenTtlSeconds must be an integer in 1..${MAX_TOKEN_TTL_SECONDS}, got ${ttl}`);
  const log = (opts.logger ?? silentLogger).child({ component: "metadata" });
  const now = opts.now ?? Date.now;

  let token: Token | undefined;
  /** The service answered the token request with 404/405: it has no token support. */
  let tokenless = false;
  let tokenInflight: Promise<string | undefined> | undefined;

  async function send(
    path: string,
    url: string,
    init: { method: string; headers: Record<string, string> },
  ): Promise<{ status: number; body: string }> {
    try {
      const res = await fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      throw new MetadataError(path, 0, transportDetail(err, timeoutMs));
    }
  }

  function withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retry(fn, {
      ...SCHEDULES.metadata,
      ...opts.backoff,
      maxAttempts,
      isRetryable: (err) => err instanceof MetadataError && err.retryable,
      onRetry: ({ attempt, delayMs, error }) =>
        log.warn("metadata request failed, retrying", {
          path: what,
          status: error instanceof MetadataError ? error.status : undefined,
          error: error instanceof Error ? error.message : String(error),
          attempt,
          delayMs,
        }),
    });
  }

  async function fetchToken(): Promise<string | undefined> {
    const res = await send("api/token", `${base}${TOKEN_PATH}`, {
      method: "PUT",
      headers: { [TOKEN_TTL_HEADER]: String(ttl) },
    });
    if (res.status === 404 || res.status === 405) {
      log.info("metadata service has no session tokens; continuing without", { status: res.status });
      tokenless = true;
      return undefined;
    }
    if (res.status !== 200)
      throw new MetadataError("api/token", res.status, `token request failed (HTTP ${res.status})`);
    const value = res.body.trim();
    if (value === "" || /\s/.test(value)) throw new MetadataError("api/token", res.status, "malformed token");
    const ttlMs = ttl * 1000;
    token = { value, renewAt: now() + ttlMs - Math.min(60_000, ttlMs / 4) };
    log.debug("metadata token acquired", { ttlSeconds: ttl });
    return value;
  }

  function currentToken(): Promise<string | undefined> {
    if (tokenless) return Promise.resolve(undefined);
    if (token && now() < token.renewAt) return Promise.resolve(token.value);
    // No retry of its own: the GET that needs the token retries as a whole.
    tokenInflight ??= fetchToken().finally(() => {
      tokenInflight = undefined;
    });
    return tokenInflight;
  }

  async function getOnce(path: string): Promise<string> {
    const url = `${base}/latest/meta-data/${path}`;
    const headersFor = (t: string | undefined): Record<string, string> => (t ? { [TOKEN_HEADER]: t } : {});
    let t = await currentToken();
    let res = await send(path, url, { method: "GET", headers: headersFor(t) });
    if (res.status === 401 && t !== undefined) {
      if (token?.value === t) token = undefined;
      t = await currentToken();
      res = await send(path, url, { method: "GET", headers: headersFor(t) });
    }
    if (res.status === 200) return res.body;
    if (res.status === 404) throw new MetadataNotFoundError(path);
    throw new MetadataError(path, res.status, `HTTP ${res.status}`);
  }

  const get = (path: string): Promise<string> => {
    if (!/^[A-Za-z0-9._:@/-]*$/.test(path) || path.split("/").includes(".."))
      return Promise.reject(new Error(`invalid metadata path: ${JSON.stringify(path.slice(0, 80))}`));
    const started = now();
    const item = path.split("/")[0] || "meta-data";
    return withRetry(path, () => getOnce(path)).then(
      (v) => {
        opts.observer?.(item, (now() - started) / 1000, null);
        return v;
      },
      (e: unknown) => {
        const why =
          e instanceof MetadataNotFoundError
            ? "NotFound"
            : e instanceof MetadataError && e.status > 0
              ? `HTTP ${e.status}`
              : "Unreachable";
        opts.observer?.(item, (now() - started) / 1000, why);
        throw e;
      },
    );
  };

  async function value(path: string, assert?: (v: unknown) => void): Promise<string> {
    const v = parseValue(await get(path));
    if (assert) {
      try {
        assert(v);
      } catch (err) {
        throw new MetadataError(path, 200, `unexpected value: ${(err as Error).message}`);
      }
    }
    return v;
  }

  function normaliseMac(mac: string): string {
    const m = mac.trim().toLowerCase();
    assertMac(m);
    return m;
  }

  async function eni(mac: string): Promise<EniMetadata> {
    const m = normaliseMac(mac);
    const dir = `network/interfaces/macs/${m}`;
    const [eniId, gateway, vSwitchCidr, ipsText, primaryIp, ipv6Gateway] = await Promise.all([
      value(`${dir}/network-interface-id`, assertEniId),
      value(`${dir}/gateway`, assertIpv4),
      value(`${dir}/vswitch-cidr-block`),
      get(`${dir}/private-ipv4s`),
      value(`${dir}/primary-ip-address`, assertIpv4),
      ipv6GatewayOf(dir),
    ]);
    let privateIps: string[];
    try {
      privateIps = parsePrivateIpv4s(ipsText);
    } catch (err) {
      throw new MetadataError(`${dir}/private-ipv4s`, 200, `malformed list: ${(err as Error).message}`);
    }
    return { mac: m, eniId, gateway, vSwitchCidr, privateIps, primaryIp, ipv6Gateway };
  }

  /** The ENI's IPv6 gateway in canonical text; "" when the metadata has none (a vSwitch without IPv6). */
  async function ipv6GatewayOf(dir: string): Promise<string> {
    const path = `${dir}/ipv6-gateway`;
    const text = await value(path).catch((e: unknown) => {
      if (e instanceof MetadataNotFoundError) return "";
      throw e;
    });
    if (text === "") return "";
    const gw = canonicalIpv6(text);
    if (gw === null) throw new MetadataError(path, 200, `not an IPv6 address: ${JSON.stringify(text)}`);
    return gw;
  }

  async function ramRoleCredentials(role: string): Promise<RamRoleCredentials> {
    assertRamRoleName(role);
    const path = `ram/security-credentials/${role}`;
    const body = await get(path);
    let doc: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not an object");
      doc = parsed as Record<string, unknown>;
    } catch {
      throw new MetadataError(path, 200, "credentials document is not a JSON object");
    }
    if (doc.Code !== undefined && doc.Code !== "Success")
      throw new MetadataError(
        path,
        200,
        `credentials not available (Code ${JSON.stringify(String(doc.Code))})`,
      );
    const field = (k: string): string => {
      const v = doc[k];
      if (typeof v !== "string" || v === "")
        throw new MetadataError(path, 200, `credentials document lacks ${k}`);
      return v;
    };
    const expiration = new Date(field("Expiration"));
    if (Number.isNaN(expiration.getTime()))
      throw new MetadataError(path, 200, "credentials Expiration is not a date");
    return {
      accessKeyId: field("AccessKeyId"),
      accessKeySecret: field("AccessKeySecret"),
      securityToken: field("SecurityToken"),
      expiration,
    };
  }

  return {
    get,
    instanceId: () => value("instance-id", assertInstanceId),
    instanceType: () => value("instance/instance-type", assertInstanceType),
    regionId: () => value("region-id", assertRegionId),
    vSwitchId: () => value("vswitch-id", assertVSwitchId),
    macs: async () =>
      parseList(await get("network/interfaces/macs/"))
        .map((m) => m.toLowerCase())
        .filter((m) => {
          const ok = isMac(m);
          if (!ok) log.warn("ignoring a malformed MAC in the metadata list", { entry: m.slice(0, 40) });
          return ok;
        }),
    eni,
    ramRoles: async () => parseList(await get("ram/security-credentials/")),
    ramRoleCredentials,
  };
}
