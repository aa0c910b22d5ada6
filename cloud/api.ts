// The typed cloud client eniway uses: ENIs and their private IPs (ECS), instance
// type limits (ECS) and vSwitches (VPC). Every call passes its action's rate
// limiter, then retry (each retry re-enters the limiter); idempotent creates
// keep one ClientToken across retries; "already done" errors count as success.

import { randomUUID } from "node:crypto";
import { type RetryOptions, retry, SCHEDULES } from "../lib/backoff.js";
import type { Json } from "../lib/json.js";
import { type Logger, silentLogger } from "../lib/log.js";
import type { CloudCode } from "./codes.js";
import type { CredentialsProvider } from "./credentials.js";
import { CloudError, hasCode, SYNTHETIC_CODES } from "./errors.js";
import { type ActionLimiter, createActionLimiter, type RateLimitOverrides } from "./limiter.js";
import { nextPageNumber, type Page, readPages } from "./pages.js";
import { chunk, repeatList, tagParams } from "./params.js";
import {
  type InstanceTypeInfo,
  nestedList,
  parseAssignedIps,
  parseAssignedIpv6s,
  parseAssignedPrefixes,
  parseCreatedEni,
  parseEni,
  parseInstanceType,
  parseReservation,
  parseVSwitch,
  ResponseShapeError,
  str,
} from "./parse.js";
import { createRpcTransport, type RpcParams, type RpcTransport } from "./rpc.js";
import {
  type CloudAction,
  ECS_API_VERSION,
  type Eni,
  type EniStatus,
  type EniType,
  VPC_ACTIONS,
  VPC_API_VERSION,
  type VSwitch,
  type VSwitchCidrReservation,
} from "./types.js";
import {
  assertClientToken,
  assertDescription,
  assertEniId,
  assertEniName,
  assertInstanceId,
  assertInstanceType,
  assertIntInRange,
  assertIpv4,
  assertIpv4Prefix,
  assertIpv6,
  assertRegionId,
  assertSecurityGroupId,
  assertTags,
  assertVpcId,
  assertVSwitchId,
  assertZoneId,
  InvalidArgumentError,
  MAX_IPV4_PREFIXES_PER_CALL,
  MAX_IPV6_PER_CALL,
} from "./validate.js";

/** Error codes that mean the call's goal already holds; the call then succeeds. */
export const ALREADY_DONE_CODES = {
  DeleteNetworkInterface: ["InvalidEniId.NotFound"],
  DetachNetworkInterface: ["InvalidEniId.NotFound"],
  /** The IP is not (or no longer) on the ENI, or the ENI itself is gone. */
  UnassignPrivateIpAddresses: ["InvalidIp.IpUnassigned", "InvalidEniId.NotFound"],
  UnassignIpv6Addresses: ["InvalidIp.IpUnassigned", "InvalidEniId.NotFound"],
} as const satisfies Partial<Record<CloudAction, readonly CloudCode[]>>;

export type { InstanceTypeInfo } from "./parse.js";

/** ECS limits: NetworkInterfaceId.N ≤ 100 per call; secondary IPs per call ≤ 49 (prefixes: validate.ts). */
const MAX_ENI_IDS_PER_CALL = 100;
const MAX_SECONDARY_IPS = 49;
const MAX_INSTANCE_TYPES_PER_CALL = 10;
const VSWITCH_PAGE_SIZE = 50;

export interface CreateNetworkInterfaceRequest {
  vSwitchId: string;
  securityGroupIds: string[];
  tags: Record<string, string>;
  /** Secondary IPs besides the primary one. */
  secondaryIpCount: number;
  /**
   * IPv4 prefixes (/28) the ENI comes with, 1–10 (Ipv4PrefixCount); never
   * with secondary IPs: a call does not mix them.
   */
  ipv4PrefixCount?: number;
  description?: string;
  name?: string;
  /** Default: a fresh UUID, the same for every retry of this call. */
  clientToken?: string;
}

export interface DescribeNetworkInterfacesFilter {
  instanceId?: string;
  /** An empty list matches nothing (and sends nothing). */
  eniIds?: string[];
  tags?: Record<string, string>;
  vSwitchId?: string;
  status?: EniStatus;
  type?: EniType;
}

export interface AssignPrivateIpAddressesRequest {
  eniId: string;
  count: number;
  clientToken?: string;
}

/** The same request, `count` being 1–10 prefixes (Ipv4PrefixCount). */
export type AssignIpv4PrefixesRequest = AssignPrivateIpAddressesRequest;

export interface DescribeVSwitchesRequest {
  vSwitchIds?: string[];
  vpcId?: string;
  zoneId?: string;
}

export interface CloudApi {
  createNetworkInterface(req: CreateNetworkInterfaceRequest): Promise<Eni>;
  attachNetworkInterface(eniId: string, instanceId: string): Promise<void>;
  detachNetworkInterface(eniId: string, instanceId: string): Promise<void>;
  deleteNetworkInterface(eniId: string): Promise<void>;
  describeNetworkInterfaces(filter: DescribeNetworkInterfacesFilter): Promise<Eni[]>;
  /** Resolves to the newly assigned IPs. */
  assignPrivateIpAddresses(req: AssignPrivateIpAddressesRequest): Promise<string[]>;
  unassignPrivateIpAddresses(eniId: string, ips: string[]): Promise<void>;
  /** AssignPrivateIpAddresses with Ipv4PrefixCount; resolves to the newly assigned /28 prefixes. */
  assignIpv4Prefixes(req: AssignIpv4PrefixesRequest): Promise<string[]>;
  /** UnassignPrivateIpAddresses with Ipv4Prefix.N; a prefix already off the ENI counts as done. */
  unassignIpv4Prefixes(eniId: string, prefixes: string[]): Promise<void>;
  /** AssignIpv6Addresses with Ipv6AddressCount (1–10 here); resolves to the new addresses (canonical text). */
  assignIpv6Addresses(req: AssignPrivateIpAddressesRequest): Promise<string[]>;
  /** UnassignIpv6Addresses with Ipv6Address.N; an address already off the ENI counts as done. */
  unassignIpv6Addresses(eniId: string, ips: string[]): Promise<void>;
  describeInstanceTypes(ids: string[]): Promise<InstanceTypeInfo[]>;
  describeVSwitches(req: DescribeVSwitchesRequest): Promise<VSwitch[]>;
  /** A vSwitch's reserved CIDR blocks for prefixes of one IP version (all pages). */
  listVSwitchCidrReservations(
    vSwitchId: string,
    ipVersion: "IPv4" | "IPv6",
  ): Promise<VSwitchCidrReservation[]>;
  /** Drops queued calls, stops retries, frees sockets. */
  close(): Promise<void>;
}

export type CloudRetryOptions = Partial<Omit<RetryOptions, "isRetryable" | "onRetry" | "signal">>;

export interface CloudApiOptions {
  regionId: string;
  ecsEndpoint: string;
  vpcEndpoint: string;
  credentials: CredentialsProvider;
  rateLimits?: RateLimitOverrides;
  retry?: CloudRetryOptions;
  /** Connect and read timeout per attempt. Default 10 s. */
  timeoutMs?: number;
  logger?: Logger;
  /** MaxResults per DescribeNetworkInterfaces page, 1..500. Default 100. */
  pageSize?: number;
  /** Default crypto.randomUUID. */
  newClientToken?: () => string;
  /** Told of every logical call and every retry (metrics); must not throw or block. */
  observer?: CloudObserver;
}

/** What the metrics see of the cloud client: never a parameter, a credential or a URL. */
export interface CloudObserver {
  /** A logical call ended: `code` null on success (a tolerated code is a success). */
  call(action: CloudAction, seconds: number, code: string | null): void;
  /** An attempt failed with a retryable `code` and will be retried. */
  retry(action: CloudAction, code: string): void;
}

const isVpcAction = (a: CloudAction): boolean => (VPC_ACTIONS as readonly string[]).includes(a);

/** How a logical call goes out: its action's rate limiter, then the transport, retried. */
interface Caller {
  /** Tolerated codes resolve to undefined. */
  invoke(action: CloudAction, params: RpcParams, tolerate?: readonly CloudCode[]): Promise<Json | undefined>;
  call(action: CloudAction, params: RpcParams): Promise<Json>;
  close(): Promise<void>;
}

function createCaller(opts: CloudApiOptions, timeoutMs: number, log: Logger): Caller {
  const transportTo = (endpoint: string, apiVersion: string): RpcTransport =>
    createRpcTransport({ endpoint, apiVersion, credentials: opts.credentials, timeoutMs });
  const ecs = transportTo(opts.ecsEndpoint, ECS_API_VERSION);
  const vpc = transportTo(opts.vpcEndpoint, VPC_API_VERSION);
  const limiter: ActionLimiter = createActionLimiter(opts.rateLimits);
  const closing = new AbortController();
  let closed: Promise<void> | undefined;

  const retryOptions = (action: CloudAction): RetryOptions => ({
    ...SCHEDULES.cloudApi,
    ...opts.retry,
    signal: closing.signal,
    isRetryable: (err) => err instanceof CloudError && err.retryable,
    onRetry: ({ attempt, delayMs, error }) => {
      const e = error instanceof CloudError ? error : undefined;
      opts.observer?.retry(action, e?.code ?? "Unexpected");
      log.warn("cloud call failed, retrying", {
        action,
        code: e?.code,
        requestId: e?.requestId,
        httpStatus: e?.httpStatus,
        attempt,
        delayMs,
      });
    },
  });

  const invoke: Caller["invoke"] = async (action, params, tolerate = []) => {
    if (closing.signal.aborted) throw new Error(`cloud API closed: ${action} not sent`);
    const transport = isVpcAction(action) ? vpc : ecs;
    const wire: RpcParams = { RegionId: opts.regionId, ...params };
    const started = Date.now();
    const seconds = (): number => (Date.now() - started) / 1000;
    let attempts = 0;
    try {
      const body = await retry(() => {
        attempts++;
        return limiter.schedule(action, () => transport.call(action, wire));
      }, retryOptions(action));
      log.debug("cloud call", { action, attempts, ms: Date.now() - started });
      opts.observer?.call(action, seconds(), null);
      return body;
    } catch (err) {
      if (hasCode(err, tolerate)) {
        log.info("cloud call: already done", { action, code: err.code, requestId: err.requestId });
        opts.observer?.call(action, seconds(), null);
        return undefined;
      }
      opts.observer?.call(action, seconds(), err instanceof CloudError ? err.code : "Unexpected");
      if (!(err instanceof CloudError) && closing.signal.aborted)
        throw new Error(`cloud API closed: ${action} not completed`);
      throw err;
    }
  };

  return {
    invoke,
    call: async (action, params) => (await invoke(action, params)) ?? {},
    close(): Promise<void> {
      closed ??= (async () => {
        closing.abort();
        await limiter.stop();
        ecs.close();
        vpc.close();
      })();
      return closed;
    },
  };
}

/** A parse of an answer; a shape we do not read is the cloud's invalid response. */
function parsed<T>(action: CloudAction, body: Json, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof ResponseShapeError)) throw err;
    throw new CloudError({
      action,
      code: SYNTHETIC_CODES.invalidResponse,
      message: err.message,
      requestId: str(body, "RequestId"),
      httpStatus: 200,
    });
  }
}

/** What the calls below share. */
interface Ctx {
  caller: Caller;
  log: Logger;
  /** MaxResults per DescribeNetworkInterfaces page. */
  pageSize: number;
  /** The ClientToken given, or a new one; checked either way. */
  token(given: string | undefined): string;
}

async function createNetworkInterface(ctx: Ctx, req: CreateNetworkInterfaceRequest): Promise<Eni> {
  assertVSwitchId(req.vSwitchId);
  if (req.securityGroupIds.length === 0)
    throw new InvalidArgumentError("at least one security group id is required");
  for (const sg of req.securityGroupIds) assertSecurityGroupId(sg);
  assertTags(req.tags);
  assertIntInRange(req.secondaryIpCount, 0, MAX_SECONDARY_IPS, "secondaryIpCount");
  if (req.ipv4PrefixCount !== undefined) {
    assertIntInRange(req.ipv4PrefixCount, 1, MAX_IPV4_PREFIXES_PER_CALL, "ipv4PrefixCount");
    if (req.secondaryIpCount > 0)
      throw new InvalidArgumentError("secondaryIpCount and ipv4PrefixCount cannot be combined in one call");
  }
  if (req.description !== undefined) assertDescription(req.description);
  if (req.name !== undefined) assertEniName(req.name);
  const params: RpcParams = {
    VSwitchId: req.vSwitchId,
    ...repeatList("SecurityGroupIds", req.securityGroupIds),
    ...tagParams(req.tags),
    ClientToken: ctx.token(req.clientToken),
  };
  if (req.secondaryIpCount > 0) params.SecondaryPrivateIpAddressCount = String(req.secondaryIpCount);
  if (req.ipv4PrefixCount !== undefined) params.Ipv4PrefixCount = String(req.ipv4PrefixCount);
  if (req.description !== undefined) params.Description = req.description;
  if (req.name !== undefined) params.NetworkInterfaceName = req.name;
  const body = await ctx.caller.call("CreateNetworkInterface", params);
  const eni = parsed("CreateNetworkInterface", body, () => parseCreatedEni(body, new Date()));
  if (Object.keys(eni.tags).length === 0) eni.tags = { ...req.tags };
  if (eni.securityGroupIds.length === 0) eni.securityGroupIds = [...req.securityGroupIds];
  if (eni.vSwitchId === "") eni.vSwitchId = req.vSwitchId;
  return eni;
}

/** Attach, detach or delete: one ENI (and an instance), "already done" codes tolerated. */
async function onEni(
  ctx: Ctx,
  action: "AttachNetworkInterface" | "DetachNetworkInterface" | "DeleteNetworkInterface",
  eniId: string,
  instanceId?: string,
): Promise<void> {
  assertEniId(eniId);
  const params: RpcParams = { NetworkInterfaceId: eniId };
  if (instanceId !== undefined) {
    assertInstanceId(instanceId);
    params.InstanceId = instanceId;
  }
  const tolerate: readonly CloudCode[] =
    action === "AttachNetworkInterface" ? [] : ALREADY_DONE_CODES[action];
  await ctx.caller.invoke(action, params, tolerate);
}

/** A filter's parameter, when given: checked, then set. */
function checkedParam(
  params: RpcParams,
  name: string,
  value: string | undefined,
  check: (v: string) => void,
): void {
  if (value === undefined) return;
  check(value);
  params[name] = value;
}

/** The filter's parameters (every page and chunk carries them), checked. */
function eniFilterParams(filter: DescribeNetworkInterfacesFilter): RpcParams {
  const base: RpcParams = {};
  checkedParam(base, "InstanceId", filter.instanceId, assertInstanceId);
  checkedParam(base, "VSwitchId", filter.vSwitchId, assertVSwitchId);
  if (filter.tags !== undefined) {
    assertTags(filter.tags);
    Object.assign(base, tagParams(filter.tags));
  }
  if (filter.status !== undefined) base.Status = filter.status;
  if (filter.type !== undefined) base.Type = filter.type;
  for (const id of filter.eniIds ?? []) assertEniId(id);
  return base;
}

async function describeNetworkInterfaces(ctx: Ctx, filter: DescribeNetworkInterfacesFilter): Promise<Eni[]> {
  const base = eniFilterParams(filter);
  if (filter.eniIds?.length === 0) return [];
  const idChunks = filter.eniIds ? chunk([...new Set(filter.eniIds)], MAX_ENI_IDS_PER_CALL) : [undefined];
  const found = new Map<string, Eni>();
  for (const ids of idChunks) {
    const params: RpcParams = { ...base, ...(ids ? repeatList("NetworkInterfaceId", ids) : {}) };
    for (const eni of await eniPages(ctx, params)) found.set(eni.eniId, eni);
  }
  return [...found.values()];
}

function eniPages(ctx: Ctx, params: RpcParams): Promise<Eni[]> {
  const action = "DescribeNetworkInterfaces";
  return readPages(
    action,
    "",
    async (token): Promise<Page<Eni>> => {
      const wire: RpcParams = { ...params, MaxResults: String(ctx.pageSize) };
      if (token !== "") wire.NextToken = token;
      const body = await ctx.caller.call(action, wire);
      const listed = nestedList(body, "NetworkInterfaceSets", "NetworkInterfaceSet");
      const items: Eni[] = [];
      for (const item of listed) {
        try {
          items.push(parsed(action, body, () => parseEni(item)));
        } catch (err) {
          // An ENI in a state we do not model (e.g. Creating) is skipped, not fatal to the list.
          if (!(err instanceof CloudError && /unknown status/.test(err.detail))) throw err;
          ctx.log.warn("skipping ENI in an unknown state", { action, error: err.detail });
        }
      }
      return {
        items,
        listed: listed.length,
        next: str(body, "NextToken"),
        requestId: str(body, "RequestId"),
      };
    },
    ctx.log,
  );
}

/**
 * What one assign call asks for: single IPs or IPv4 prefixes (AssignPrivateIpAddresses,
 * a call never mixes them), or IPv6 addresses (AssignIpv6Addresses).
 */
const ASSIGN_UNITS = {
  ips: {
    action: "AssignPrivateIpAddresses",
    param: "SecondaryPrivateIpAddressCount",
    max: MAX_SECONDARY_IPS,
    parse: parseAssignedIps,
  },
  prefixes: {
    action: "AssignPrivateIpAddresses",
    param: "Ipv4PrefixCount",
    max: MAX_IPV4_PREFIXES_PER_CALL,
    parse: parseAssignedPrefixes,
  },
  ipv6: {
    action: "AssignIpv6Addresses",
    param: "Ipv6AddressCount",
    max: MAX_IPV6_PER_CALL,
    parse: parseAssignedIpv6s,
  },
} as const;

async function assign(
  ctx: Ctx,
  req: AssignPrivateIpAddressesRequest,
  unit: keyof typeof ASSIGN_UNITS,
): Promise<string[]> {
  const u = ASSIGN_UNITS[unit];
  assertEniId(req.eniId);
  assertIntInRange(req.count, 1, u.max, "count");
  const body = await ctx.caller.call(u.action, {
    NetworkInterfaceId: req.eniId,
    [u.param]: String(req.count),
    ClientToken: ctx.token(req.clientToken),
  });
  const got = parsed(u.action, body, () => u.parse(body));
  if (got.length !== req.count)
    ctx.log.warn(`${u.action} returned a different number of ${unit === "ips" ? "IPs" : unit}`, {
      eniId: req.eniId,
      asked: req.count,
      got: got.length,
      requestId: str(body, "RequestId"),
    });
  return got;
}

async function unassignPrivateIpAddresses(ctx: Ctx, eniId: string, ips: string[]): Promise<void> {
  assertEniId(eniId);
  for (const ip of ips) assertIpv4(ip);
  await unassign(ctx, eniId, "PrivateIpAddress", ips);
}

async function unassignIpv4Prefixes(ctx: Ctx, eniId: string, prefixes: string[]): Promise<void> {
  assertEniId(eniId);
  for (const p of prefixes) assertIpv4Prefix(p);
  await unassign(ctx, eniId, "Ipv4Prefix", prefixes);
}

async function unassignIpv6Addresses(ctx: Ctx, eniId: string, ips: string[]): Promise<void> {
  assertEniId(eniId);
  for (const ip of ips) assertIpv6(ip);
  for (let i = 0; i < ips.length; i += MAX_IPV6_PER_CALL)
    await unassign(ctx, eniId, "Ipv6Address", ips.slice(i, i + MAX_IPV6_PER_CALL));
}

/**
 * UnassignPrivateIpAddresses of IPs or of prefixes (a call never mixes
 * them), or UnassignIpv6Addresses of IPv6 addresses; "already free" tolerated.
 */
async function unassign(
  ctx: Ctx,
  eniId: string,
  param: "PrivateIpAddress" | "Ipv4Prefix" | "Ipv6Address",
  items: string[],
): Promise<void> {
  const unique = [...new Set(items)];
  if (unique.length === 0) return;
  const action = param === "Ipv6Address" ? "UnassignIpv6Addresses" : "UnassignPrivateIpAddresses";
  const codes = ALREADY_DONE_CODES[action];
  const send = (list: string[], tolerate: readonly CloudCode[]) =>
    ctx.caller.invoke(action, { NetworkInterfaceId: eniId, ...repeatList(param, list) }, tolerate);
  if (unique.length === 1) {
    await send(unique, codes);
    return;
  }
  try {
    await send(unique, ["InvalidEniId.NotFound"]);
  } catch (err) {
    // One address (or prefix) already free may fail the whole batch: free the rest one by one.
    if (!hasCode(err, ["InvalidIp.IpUnassigned"])) throw err;
    ctx.log.info("unassign batch hit an item already free; unassigning one by one", {
      eniId,
      param,
      count: unique.length,
    });
    for (const item of unique) await send([item], codes);
  }
}

async function describeInstanceTypes(ctx: Ctx, ids: string[]): Promise<InstanceTypeInfo[]> {
  for (const id of ids) assertInstanceType(id);
  const action = "DescribeInstanceTypes";
  const found = new Map<string, InstanceTypeInfo>();
  for (const group of chunk([...new Set(ids)], MAX_INSTANCE_TYPES_PER_CALL)) {
    const read = async (token: string): Promise<Page<InstanceTypeInfo>> => {
      const params: RpcParams = { ...repeatList("InstanceTypes", group), MaxResults: "100" };
      if (token !== "") params.NextToken = token;
      const body = await ctx.caller.call(action, params);
      const listed = nestedList(body, "InstanceTypes", "InstanceType");
      const items = listed.map((item) => parsed(action, body, () => parseInstanceType(item)));
      return {
        items,
        listed: listed.length,
        next: str(body, "NextToken"),
        requestId: str(body, "RequestId"),
      };
    };
    for (const t of await readPages(action, "", read, ctx.log)) found.set(t.instanceTypeId, t);
  }
  return [...found.values()];
}

async function describeVSwitches(ctx: Ctx, req: DescribeVSwitchesRequest): Promise<VSwitch[]> {
  const base: RpcParams = {};
  checkedParam(base, "VpcId", req.vpcId, assertVpcId);
  checkedParam(base, "ZoneId", req.zoneId, assertZoneId);
  const found = new Map<string, VSwitch>();
  if (req.vSwitchIds !== undefined) {
    for (const id of req.vSwitchIds) assertVSwitchId(id);
    // The VPC API filters by a single VSwitchId: one call per id.
    const lists = await Promise.all(
      [...new Set(req.vSwitchIds)].map((id) => vSwitchPages(ctx, { ...base, VSwitchId: id })),
    );
    for (const v of lists.flat()) found.set(v.vSwitchId, v);
  } else {
    for (const v of await vSwitchPages(ctx, base)) found.set(v.vSwitchId, v);
  }
  return [...found.values()];
}

function vSwitchPages(ctx: Ctx, params: RpcParams): Promise<VSwitch[]> {
  const action = "DescribeVSwitches";
  const read = async (cursor: string): Promise<Page<VSwitch>> => {
    const body = await ctx.caller.call(action, {
      ...params,
      PageNumber: cursor,
      PageSize: String(VSWITCH_PAGE_SIZE),
    });
    const listed = nestedList(body, "VSwitches", "VSwitch");
    const items = listed.map((item) => parsed(action, body, () => parseVSwitch(item)));
    const next = nextPageNumber(Number(cursor), VSWITCH_PAGE_SIZE, listed.length, body.TotalCount);
    return { items, listed: listed.length, next, requestId: str(body, "RequestId") };
  };
  return readPages(action, "1", read, ctx.log);
}

function listVSwitchCidrReservations(
  ctx: Ctx,
  vSwitchId: string,
  ipVersion: "IPv4" | "IPv6",
): Promise<VSwitchCidrReservation[]> {
  assertVSwitchId(vSwitchId);
  const action = "ListVSwitchCidrReservations";
  const read = async (token: string): Promise<Page<VSwitchCidrReservation>> => {
    const params: RpcParams = {
      VSwitchId: vSwitchId,
      IpVersion: ipVersion,
      VSwitchCidrReservationType: "prefix",
      MaxResults: "100",
    };
    if (token !== "") params.NextToken = token;
    const body = await ctx.caller.call(action, params);
    // A list, as the documentation shows it; the XML-style wrapping other list answers use is read too.
    const listed = Array.isArray(body.VSwitchCidrReservations)
      ? (body.VSwitchCidrReservations as unknown[])
      : nestedList(body, "VSwitchCidrReservations", "VSwitchCidrReservation");
    const items = listed.map((item) => parsed(action, body, () => parseReservation(item)));
    return { items, listed: listed.length, next: str(body, "NextToken"), requestId: str(body, "RequestId") };
  };
  return readPages(action, "", read, ctx.log);
}

export function createCloudApi(opts: CloudApiOptions): CloudApi {
  assertRegionId(opts.regionId);
  const pageSize = opts.pageSize ?? 100;
  assertIntInRange(pageSize, 1, 500, "pageSize");
  const log = (opts.logger ?? silentLogger).child({ component: "cloud" });
  const caller = createCaller(opts, opts.timeoutMs ?? 10_000, log);
  const newClientToken = opts.newClientToken ?? randomUUID;
  const token = (given: string | undefined): string => {
    const t = given ?? newClientToken();
    assertClientToken(t);
    return t;
  };
  const ctx: Ctx = { caller, log, pageSize, token };
  return {
    createNetworkInterface: (req) => createNetworkInterface(ctx, req),
    attachNetworkInterface: (eniId, instanceId) => onEni(ctx, "AttachNetworkInterface", eniId, instanceId),
    detachNetworkInterface: (eniId, instanceId) => onEni(ctx, "DetachNetworkInterface", eniId, instanceId),
    deleteNetworkInterface: (eniId) => onEni(ctx, "DeleteNetworkInterface", eniId),
    describeNetworkInterfaces: (filter) => describeNetworkInterfaces(ctx, filter),
    assignPrivateIpAddresses: (req) => assign(ctx, req, "ips"),
    unassignPrivateIpAddresses: (eniId, ips) => unassignPrivateIpAddresses(ctx, eniId, ips),
    assignIpv4Prefixes: (req) => assign(ctx, req, "prefixes"),
    unassignIpv4Prefixes: (eniId, prefixes) => unassignIpv4Prefixes(ctx, eniId, prefixes),
    assignIpv6Addresses: (req) => assign(ctx, req, "ipv6"),
    unassignIpv6Addresses: (eniId, ips) => unassignIpv6Addresses(ctx, eniId, ips),
    describeInstanceTypes: (ids) => describeInstanceTypes(ctx, ids),
    describeVSwitches: (req) => describeVSwitches(ctx, req),
    listVSwitchCidrReservations: (vSwitchId, ipVersion) =>
      listVSwitchCidrReservations(ctx, vSwitchId, ipVersion),
    close: caller.close,
  };
}
