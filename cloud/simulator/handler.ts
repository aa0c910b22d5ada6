// What every action handler shares: the context the server gives it, the
// RegionId and NetworkInterfaceId checks, ClientToken idempotency, opaque
// paging tokens and name/description rules.

import { createHash } from "node:crypto";
import type { SimAction } from "../types.js";
import { fail, invalid } from "./errors.js";
import { exclusive, integer, ipv6List, optional, type Params, prefixList, required } from "./params.js";
import { getEni, PREFIX_LENGTH, type SimEni, type SimState } from "./state.js";

export interface ActionContext {
  state: SimState;
  /** How long an asynchronous action (Attach, Detach, a reservation's Create or Delete) takes to settle. */
  transitionMs(action: TransitionAction): number;
  idempotency: Map<string, { fingerprint: string; result: Record<string, unknown>; expires: number }>;
  clientTokenTtlMs: number;
  /** Mark a resource busy for this request; a concurrent request on it gets Operation.Conflict. */
  lock(resourceId: string): void;
}

/** Actions whose effect settles later; their latency knob is the time until it has. */
const TRANSITION_ACTIONS = [
  "AttachNetworkInterface",
  "DetachNetworkInterface",
  "CreateVSwitchCidrReservation",
  "DeleteVSwitchCidrReservation",
] as const satisfies readonly SimAction[];
export type TransitionAction = (typeof TRANSITION_ACTIONS)[number];

export function isTransition(action: SimAction): action is TransitionAction {
  return (TRANSITION_ACTIONS as readonly string[]).includes(action);
}

export type Result = Record<string, unknown>;
export type Handler = (ctx: ActionContext, p: Params) => Result | Promise<Result>;

const ENI_ID = /^eni-[a-z0-9]{1,64}$/;
const COMMON = new Set([
  "Action",
  "Version",
  "Format",
  "AccessKeyId",
  "SecurityToken",
  "Signature",
  "SignatureMethod",
  "SignatureVersion",
  "SignatureNonce",
  "SignatureType",
  "Timestamp",
  "ClientToken",
]);

export function region(ctx: ActionContext, p: Params, isRequired = true): void {
  const r = isRequired ? required(p, "RegionId") : optional(p, "RegionId");
  if (r !== undefined && r !== ctx.state.regionId) fail("InvalidRegionId.NotFound");
}

export function eniParam(ctx: ActionContext, p: Params): SimEni {
  const id = required(p, "NetworkInterfaceId");
  if (!ENI_ID.test(id)) fail("InvalidEniId.NotFound");
  return getEni(ctx.state, id);
}

function clientToken(p: Params): string | undefined {
  const t = optional(p, "ClientToken");
  if (t !== undefined && (t.length > 64 || !/^[\x20-\x7e]+$/.test(t)))
    fail("InvalidParameter", invalid("ClientToken", "must be at most 64 ASCII characters").message);
  return t;
}

/** Same ClientToken and same parameters: the first result again. Different parameters: a mismatch. */
export async function idempotent(
  ctx: ActionContext,
  action: string,
  p: Params,
  run: () => Promise<Result>,
): Promise<Result> {
  const token = clientToken(p);
  if (token === undefined) return run();
  const now = ctx.state.clock.now();
  const fingerprint = createHash("sha256")
    .update(
      JSON.stringify(
        Object.entries(p)
          .filter(([k]) => !COMMON.has(k))
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      ),
    )
    .digest("hex");
  const key = `${action}\0${token}`;
  const prev = ctx.idempotency.get(key);
  if (prev && prev.expires > now) {
    if (prev.fingerprint !== fingerprint) fail("IdempotentParameterMismatch");
    return structuredClone(prev.result);
  }
  const result = await run();
  ctx.idempotency.set(key, {
    fingerprint,
    result: structuredClone(result),
    expires: now + ctx.clientTokenTtlMs,
  });
  return result;
}

/** Opaque cursor: the last item's position, bound to the query it came from. */
export function encodeToken(position: number, query: string): string {
  return Buffer.from(`v1:${position}:${query}`).toString("base64");
}

export function decodeToken(token: string | undefined, query: string): number {
  if (token === undefined) return -1;
  const m = /^v1:(\d+):(.*)$/.exec(Buffer.from(token, "base64").toString("utf8"));
  if (!m || m[2] !== query) fail("InvalidParameter", invalid("NextToken").message);
  return Number(m[1]);
}

export function queryKey(p: Params): string {
  const keys = Object.keys(p)
    .filter((k) => !COMMON.has(k) && !["NextToken", "MaxResults", "PageNumber", "PageSize"].includes(k))
    .sort();
  return createHash("sha1")
    .update(keys.map((k) => `${k}=${p[k]}`).join("&"))
    .digest("hex")
    .slice(0, 12);
}

export function nameOrDescription(p: Params, key: string, max: number, pattern?: RegExp): string {
  const v = optional(p, key) ?? "";
  if (v === "") return v;
  if (v.length < 2 || v.length > max || /^https?:\/\//.test(v) || (pattern && !pattern.test(v)))
    fail("InvalidParameter", invalid(key).message);
  return v;
}

/** What a caller asked for of one address kind: a count, or named values. */
export interface AddressRequest {
  count: number;
  named: string[];
}

export interface AddressParams {
  /** The `Name` of `Name.N`. */
  list: string;
  /** The count parameter. */
  count: string;
  /** Values of `Name.N`, checked and canonical. */
  parse(p: Params, name: string, max: number): string[];
}

/** `Name.N` or the count (1–10, as documented for prefixes and IPv6), never both; undefined when neither. */
export function addressRequest(p: Params, a: AddressParams): AddressRequest | undefined {
  const named = a.parse(p, a.list, 10);
  const count = integer(p, a.count, 1, 10);
  exclusive([
    { label: `${a.list}.N`, present: named.length > 0 },
    { label: a.count, present: count !== undefined },
  ]);
  if (count === undefined && named.length === 0) return undefined;
  return { count: count ?? 0, named };
}

export const IPV4_PREFIXES: AddressParams = {
  list: "Ipv4Prefix",
  count: "Ipv4PrefixCount",
  parse: (p, name, max) => prefixList(p, name, 4, PREFIX_LENGTH[4], max),
};

export const IPV6_ADDRESSES: AddressParams = {
  list: "Ipv6Address",
  count: "Ipv6AddressCount",
  parse: ipv6List,
};

export const IPV6_PREFIXES: AddressParams = {
  list: "Ipv6Prefix",
  count: "Ipv6PrefixCount",
  parse: (p, name, max) => prefixList(p, name, 6, PREFIX_LENGTH[6], max),
};
