// One RPC call through @alicloud/pop-core, always POST (so no credential ever
// lands in a URL), with every failure turned into a CloudError that carries the
// code, request id and HTTP status, and nothing secret.

import { AsyncLocalStorage } from "node:async_hooks";
import diagnostics from "node:diagnostics_channel";
import type { ClientRequest, IncomingMessage } from "node:http";
import PopCore from "@alicloud/pop-core";
import { API_ENDPOINT } from "../lib/ids.js";
import { isObject, type Json } from "../lib/json.js";
import type { CredentialsProvider } from "./credentials.js";
import { CloudError, httpErrorCode, SYNTHETIC_CODES, scrubMessage } from "./errors.js";
import type { CloudAction } from "./types.js";

/** Flat wire parameters: `Name.N` and `Tag.N.Key` already spelled out. */
export type RpcParams = Record<string, string>;

export interface RpcTransport {
  /** One attempt of action; resolves to the response body. */
  call(action: CloudAction, params: RpcParams): Promise<Json>;
  /** Frees pooled sockets. */
  close(): void;
}

export interface RpcTransportOptions {
  endpoint: string;
  apiVersion: string;
  credentials: CredentialsProvider;
  timeoutMs: number;
}

// ---- pop-core, typed for the way we use it ----------------------------------

interface PopEntry {
  response?: { statusCode?: number } | null;
}
interface PopError {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  data?: unknown;
  entry?: PopEntry;
}
interface PopClient {
  request(
    action: string,
    params: RpcParams,
    opts: { method: "POST"; timeout: number; formatParams: false; formatAction: false },
  ): Promise<[unknown, PopEntry]>;
  keepAliveAgent?: { destroy(): void };
}
type PopClientCtor = new (
  config: { endpoint: string; apiVersion: string; credentialsProvider: CredentialsProvider },
  verbose: boolean,
) => PopClient;
const RPCClient = PopCore as unknown as PopClientCtor;

// ---- per-call context: HTTP status and the secrets to scrub ------------------
// pop-core loses the HTTP status when a body is not JSON; node's http client
// announces each request on a diagnostics channel, synchronously inside our call,
// so the request's "response" event tells us the status.

interface CallContext {
  status: number;
  secrets: string[];
}
const callContext = new AsyncLocalStorage<CallContext>();
let listening = false;

function onRequestStart(message: unknown): void {
  const ctx = callContext.getStore();
  const request = isObject(message) ? (message.request as ClientRequest | undefined) : undefined;
  if (!ctx || !request || typeof request.once !== "function") return;
  request.once("response", (res: IncomingMessage) => {
    ctx.status = res.statusCode ?? 0;
  });
}

function listenForStatus(): void {
  if (listening) return;
  diagnostics.subscribe("http.client.request.start", onRequestStart);
  listening = true;
}

class CredentialsFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsFailure";
  }
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
]);

/** Turns whatever pop-core or the network threw into a CloudError. */
export function toCloudError(action: string, err: unknown, ctx: CallContext): CloudError {
  const e: PopError = isObject(err) || err instanceof Error ? (err as PopError) : {};
  const scrub = (s: string): string => scrubMessage(s, ctx.secrets);
  const status = e.entry?.response?.statusCode ?? ctx.status;
  if (err instanceof CredentialsFailure)
    return new CloudError({
      action,
      code: SYNTHETIC_CODES.credentialsUnavailable,
      message: scrub(err.message),
    });
  if (isObject(e.data) && typeof e.data.Code === "string" && e.data.Code !== "") {
    const d = e.data;
    return new CloudError({
      action,
      code: d.Code as string,
      message: scrub(typeof d.Message === "string" ? d.Message : ""),
      requestId: typeof d.RequestId === "string" ? d.RequestId : "",
      httpStatus: status,
      hostId: typeof d.HostId === "string" ? d.HostId : undefined,
      recommend:
        typeof d.Recommend === "string"
          ? scrubMessage(d.Recommend, ctx.secrets, { keepUrls: true })
          : undefined,
    });
  }
  const name = typeof e.name === "string" ? e.name : "";
  const msg = typeof e.message === "string" ? e.message : "";
  if (/RequestTimeout/.test(name) || /ReadTimeout|ConnectTimeout/.test(msg))
    return new CloudError({ action, code: SYNTHETIC_CODES.requestTimeout, message: "request timed out" });
  const code = typeof e.code === "string" ? e.code : "";
  if (CONNECTION_CODES.has(code) || /socket hang up/i.test(msg))
    return new CloudError({
      action,
      code: SYNTHETIC_CODES.connectionError,
      message: `connection failed${code ? ` (${code})` : ""}`,
    });
  if (status > 0 && (status < 200 || status > 299))
    return new CloudError({
      action,
      code: httpErrorCode(status),
      message: `HTTP ${status} without an API error body`,
      httpStatus: status,
    });
  if (name === "SyntaxError" || status > 0)
    return new CloudError({
      action,
      code: SYNTHETIC_CODES.invalidResponse,
      message: "the response body is not valid JSON",
      httpStatus: status,
    });
  return new CloudError({
    action,
    code: SYNTHETIC_CODES.unexpected,
    message: scrub(`${name || "Error"}: ${msg}`),
  });
}

export function createRpcTransport(opts: RpcTransportOptions): RpcTransport {
  if (!API_ENDPOINT.pattern?.test(opts.endpoint))
    throw new Error(`invalid API endpoint (want http(s)://host[:port]): ${JSON.stringify(opts.endpoint)}`);
  listenForStatus();
  const credentialsProvider: CredentialsProvider = {
    async getCredentials() {
      let c: Awaited<ReturnType<CredentialsProvider["getCredentials"]>>;
      try {
        c = await opts.credentials.getCredentials();
      } catch (err) {
        throw new CredentialsFailure(
          `credentials unavailable: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      // pop-core silently sends an unsigned request when either is empty.
      if (!c.accessKeyId || !c.accessKeySecret)
        throw new CredentialsFailure("credentials unavailable: empty access key");
      const ctx = callContext.getStore();
      if (ctx)
        ctx.secrets.push(c.accessKeyId, c.accessKeySecret, ...(c.securityToken ? [c.securityToken] : []));
      return c;
    },
  };
  const client = new RPCClient(
    { endpoint: opts.endpoint.replace(/\/$/, ""), apiVersion: opts.apiVersion, credentialsProvider },
    true,
  );
  return {
    async call(action, params) {
      const ctx: CallContext = { status: 0, secrets: [] };
      try {
        const [body, entry] = await callContext.run(ctx, () =>
          client.request(action, params, {
            method: "POST",
            timeout: opts.timeoutMs,
            formatParams: false,
            formatAction: false,
          }),
        );
        const status = entry.response?.statusCode ?? ctx.status;
        const json = isObject(body) ? body : undefined;
        const requestId = json && typeof json.RequestId === "string" ? json.RequestId : "";
        if (status > 0 && (status < 200 || status > 299))
          throw new CloudError({
            action,
            code: httpErrorCode(status),
            message: `HTTP ${status} without an API error body`,
            requestId,
            httpStatus: status,
          });
        if (!json)
          throw new CloudError({
            action,
            code: SYNTHETIC_CODES.invalidResponse,
            message: "the response body is not a JSON object",
            httpStatus: status,
          });
        return json;
      } catch (err) {
        if (err instanceof CloudError) throw err;
        throw toCloudError(action, err, ctx);
      }
    },
    close() {
      client.keepAliveAgent?.destroy();
    },
  };
}
