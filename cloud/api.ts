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
import { chunk, repeatList, tagParams } from "./params.js";
import {
  nestedList,
  parseAssignedIps,
  parseCreatedEni,
  parseEni,
  parseInstanceType,
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
  type InstanceTypeLimits,
  VPC_ACTIONS,
  VPC_API_VERSION,
  type VSwitch,
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
  assertRegionId,
  assertSecurityGroupId,
  assertTags,
  assertVpcId,
  assertVSwitchId,
  assertZoneId,
  InvalidArgumentError,
} from "./validate.js";

/** Error codes that mean the call's goal already holds; the call then succeeds. */
export const ALREADY_DONE_CODES = {
  DeleteNetworkInterface: ["InvalidEniId.NotFound"],
  DetachNetworkInterface: ["InvalidEniId.NotFound"],
  /** The IP is not (or no longer) on the ENI, or the ENI itself is gone. */
  UnassignPrivateIpAddresses: ["InvalidIp.IpUnassigned", "InvalidEniId.NotFound"],
} as const satisfies Partial<Record<CloudAction, readonly CloudCode[]>>;

/** ECS limits: NetworkInterfaceId.N ≤ 100 per call; secondary IPs per call ≤ 49. */
const MAX_ENI_IDS_PER_CALL = 100;
const MAX_SECONDARY_IPS = 49;
const MAX_INSTANCE_TYPES_PER_CALL = 10;
const VSWITCH_PAGE_SIZE = 50;
const MAX_PAGES = 1000;

export interface CreateNetworkInterfaceRequest {
  vSwitchId: string;
  securityGroupIds: string[];
  tags: Record<string, string>;
  /** Secondary IPs besides the primary one. */
  secondaryIpCount: number;
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
  describeInstanceTypes(ids: string[]): Promise<InstanceTypeLimits[]>;
  describeVSwitches(req: DescribeVSwitchesRequest): Promise<VSwitch[]>;
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

export function createCloudApi(opts: CloudApiOptions): CloudApi {
  assertRegionId(opts.regionId);
  const regionId = opts.regionId;
  const pageSize = opts.pageSize ?? 100;
  assertIntInRange(pageSize, 1, 500, "pageSize");
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const log = (opts.logger ?? silentLogger).child({ component: "cloud" });
  const newClientToken = opts.newClientToken ?? randomUUID;
  const ecs: RpcTransport = createRpcTransport({
    endpoint: opts.ecsEndpoint,
    apiVersion: ECS_API_VERSION,
    credentials: opts.credentials,
    timeoutMs,
  });
  const vpc: RpcTransport = createRpcTransport({
    endpoint: opts.vpcEndpoint,
    apiVersion: VPC_API_VERSION,
    credentials: opts.credentials,
    timeoutMs,
  });
  const limiter: ActionLimiter = createActionLimiter(opts.rateLimits);
  const closing = new AbortController();
  let closed: Promise<void> | undefined;

  /** One logical call: limiter → attempt, retried; tolerated codes resolve to undefined. */
  async function invoke(
    action: CloudAction,
    params: RpcParams,
    tolerate: readonly CloudCode[] = [],
  ): Promise<Json | undefined> {
    if (closing.signal.aborted) throw new Error(`cloud API closed: ${action} not sent`);
    const transport = isVpcAction(action) ? vpc : ecs;
    const wire: RpcParams = { RegionId: regionId, ...params };
    const started = Date.now();
    let attempts = 0;
    try {
      const body = await retry(
        () => {
          attempts++;
          return limiter.schedule(action, () => transport.call(action, wire));
        },
        {
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
        },
      );
      log.debug("cloud call", { action, attempts, ms: Date.now() - started });
      opts.observer?.call(action, (Date.now() - started) / 1000, null);
      return body;
    } catch (err) {
      if (hasCode(err, tolerate)) {
        log.info("cloud call: already done", { action, code: err.code, requestId: err.requestId });
        opts.observer?.call(action, (Date.now() - started) / 1000, null);
        return undefined;
      }
      opts.observer?.call(
        action,
        (Date.now() - started) / 1000,
        err instanceof CloudError ? err.code : "Unexpected",
      );
      if (!(err instanceof CloudError) && closing.signal.aborted)
        throw new Error(`cloud API closed: ${action} not completed`);
      throw err;
    }
  }

  async function call(action: CloudAction, params: RpcParams): Promise<Json> {
    return (await invoke(action, params)) ?? {};
  }

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

  function token(given: string | undefined): string {
    const t = given ?? newClientToken();
    assertClientToken(t);
    return t;
  }

  async function createNetworkInterface(req: CreateNetworkInterfaceRequest): Promise<Eni> {
    assertVSwitchId(req.vSwitchId);
    if (req.securityGroupIds.length === 0)
      throw new InvalidArgumentError("at least one security group id is required");
    for (const sg of req.securityGroupIds) assertSecurityGroupId(sg);
    assertTags(req.tags);
    assertIntInRange(req.secondaryIpCount, 0, MAX_SECONDARY_IPS, "secondaryIpCount");
    if (req.description !== undefined) assertDescription(req.description);
    if (req.name !== undefined) assertEniName(req.name);
    const params: RpcParams = {
      VSwitchId: req.vSwitchId,
      ...repeatList("SecurityGroupIds", req.securityGroupIds),
      ...tagParams(req.tags),
      ClientToken: token(req.clientToken),
    };
    if (req.secondaryIpCount > 0) params.SecondaryPrivateIpAddressCount = String(req.secondaryIpCount);
    if (req.description !== undefined) params.Description = req.description;
    if (req.name !== undefined) params.NetworkInterfaceName = req.name;
    const body = await call("CreateNetworkInterface", params);
    const eni = parsed("CreateNetworkInterface", body, () => parseCreatedEni(body, new Date()));
    if (Object.keys(eni.tags).length === 0) eni.tags = { ...req.tags };
    if (eni.securityGroupIds.length === 0) eni.securityGroupIds = [...req.securityGroupIds];
    if (eni.vSwitchId === "") eni.vSwitchId = req.vSwitchId;
    return eni;
  }

  async function attachNetworkInterface(eniId: string, instanceId: string): Promise<void> {
    assertEniId(eniId);
    assertInstanceId(instanceId);
    await call("AttachNetworkInterface", { NetworkInterfaceId: eniId, InstanceId: instanceId });
  }

  async function detachNetworkInterface(eniId: string, instanceId: string): Promise<void> {
    assertEniId(eniId);
    assertInstanceId(instanceId);
    await invoke(
      "DetachNetworkInterface",
      { NetworkInterfaceId: eniId, InstanceId: instanceId },
      ALREADY_DONE_CODES.DetachNetworkInterface,
    );
  }

  async function deleteNetworkInterface(eniId: string): Promise<void> {
    assertEniId(eniId);
    await invoke(
      "DeleteNetworkInterface",
      { NetworkInterfaceId: eniId },
      ALREADY_DONE_CODES.DeleteNetworkInterface,
    );
  }

  async function describeNetworkInterfaces(filter: DescribeNetworkInterfacesFilter): Promise<Eni[]> {
    const base: RpcParams = {};
    if (filter.instanceId !== undefined) {
      assertInstanceId(filter.instanceId);
      base.InstanceId = filter.instanceId;
    }
    if (filter.vSwitchId !== undefined) {
      assertVSwitchId(filter.vSwitchId);
      base.VSwitchId = filter.vSwitchId;
    }
    if (filter.tags !== undefined) {
      assertTags(filter.tags);
      Object.assign(base, tagParams(filter.tags));
    }
    if (filter.status !== undefined) base.Status = filter.status;
    if (filter.type !== undefined) base.Type = filter.type;
    if (filter.eniIds !== undefined) {
      if (filter.eniIds.length === 0) return [];
      for (const id of filter.eniIds) assertEniId(id);
    }
    const idChunks = filter.eniIds ? chunk([...new Set(filter.eniIds)], MAX_ENI_IDS_PER_CALL) : [undefined];
    const found = new Map<string, Eni>();
    for (const ids of idChunks) {
      const params: RpcParams = { ...base, ...(ids ? repeatList("NetworkInterfaceId", ids) : {}) };
      for (const eni of await describeAllPages(params)) found.set(eni.eniId, eni);
    }
    return [...found.values()];
  }

  /** Follows NextToken until it is empty (or a page is empty, or a token repeats). */
  async function describeAllPages(params: RpcParams): Promise<Eni[]> {
    const out: Eni[] = [];
    const seen = new Set<string>();
    let next = "";
    for (let page = 0; page < MAX_PAGES; page++) {
      const wire: RpcParams = { ...params, MaxResults: String(pageSize) };
      if (next !== "") wire.NextToken = next;
      const body = await call("DescribeNetworkInterfaces", wire);
      const items = nestedList(body, "NetworkInterfaceSets", "NetworkInterfaceSet");
      for (const item of items) {
        try {
          out.push(parsed("DescribeNetworkInterfaces", body, () => parseEni(item)));
        } catch (err) {
          // An ENI in a state we do not model (e.g. Creating) is skipped, not fatal to the list.
          if (!(err instanceof CloudError && /unknown status/.test(err.detail))) throw err;
          log.warn("skipping ENI in an unknown state", {
            action: "DescribeNetworkInterfaces",
            error: err.detail,
          });
        }
      }
      next = str(body, "NextToken");
      if (next === "" || items.length === 0) return out;
      if (seen.has(next)) {
        log.warn("DescribeNetworkInterfaces returned a NextToken twice; stopping", {
          requestId: str(body, "RequestId"),
        });
        return out;
      }
      seen.add(next);
    }
    throw new CloudError({
      action: "DescribeNetworkInterfaces",
      code: SYNTHETIC_CODES.invalidResponse,
      message: `more than ${MAX_PAGES} pages`,
      retryable: false,
    });
  }

  async function assignPrivateIpAddresses(req: AssignPrivateIpAddressesRequest): Promise<string[]> {
    assertEniId(req.eniId);
    assertIntInRange(req.count, 1, MAX_SECONDARY_IPS, "count");
    const body = await call("AssignPrivateIpAddresses", {
      NetworkInterfaceId: req.eniId,
      SecondaryPrivateIpAddressCount: String(req.count),
      ClientToken: token(req.clientToken),
    });
    const ips = parsed("AssignPrivateIpAddresses", body, () => parseAssignedIps(body));
    if (ips.length !== req.count)
      log.warn("AssignPrivateIpAddresses returned a different number of IPs", {
        eniId: req.eniId,
        asked: req.count,
        got: ips.length,
        requestId: str(body, "RequestId"),
      });
    return ips;
  }

  async function unassignPrivateIpAddresses(eniId: string, ips: string[]): Promise<void> {
    assertEniId(eniId);
    for (const ip of ips) assertIpv4(ip);
    const unique = [...new Set(ips)];
    if (unique.length === 0) return;
    const codes = ALREADY_DONE_CODES.UnassignPrivateIpAddresses;
    const send = (list: string[], tolerate: readonly CloudCode[]) =>
      invoke(
        "UnassignPrivateIpAddresses",
        { NetworkInterfaceId: eniId, ...repeatList("PrivateIpAddress", list) },
        tolerate,
      );
    if (unique.length === 1) {
      await send(unique, codes);
      return;
    }
    try {
      await send(unique, ["InvalidEniId.NotFound"]);
    } catch (err) {
      // One address already free may fail the whole batch: free the rest one by one.
      if (!hasCode(err, ["InvalidIp.IpUnassigned"])) throw err;
      log.info("unassign batch hit an address already free; unassigning one by one", {
        eniId,
        count: unique.length,
      });
      for (const ip of unique) await send([ip], codes);
    }
  }

  async function describeInstanceTypes(ids: string[]): Promise<InstanceTypeLimits[]> {
    for (const id of ids) assertInstanceType(id);
    const found = new Map<string, InstanceTypeLimits>();
    for (const group of chunk([...new Set(ids)], MAX_INSTANCE_TYPES_PER_CALL)) {
      let next = "";
      for (let page = 0; page < MAX_PAGES; page++) {
        const params: RpcParams = { ...repeatList("InstanceTypes", group), MaxResults: "100" };
        if (next !== "") params.NextToken = next;
        const body = await call("DescribeInstanceTypes", params);
        const items = nestedList(body, "InstanceTypes", "InstanceType");
        for (const item of items) {
          const t = parsed("DescribeInstanceTypes", body, () => parseInstanceType(item));
          found.set(t.instanceTypeId, t);
        }
        const following = str(body, "NextToken");
        if (following === "" || following === next || items.length === 0) break;
        next = following;
      }
    }
    return [...found.values()];
  }

  async function describeVSwitches(req: DescribeVSwitchesRequest): Promise<VSwitch[]> {
    const base: RpcParams = {};
    if (req.vpcId !== undefined) {
      assertVpcId(req.vpcId);
      base.VpcId = req.vpcId;
    }
    if (req.zoneId !== undefined) {
      assertZoneId(req.zoneId);
      base.ZoneId = req.zoneId;
    }
    const found = new Map<string, VSwitch>();
    if (req.vSwitchIds !== undefined) {
      for (const id of req.vSwitchIds) assertVSwitchId(id);
      // The VPC API filters by a single VSwitchId: one call per id.
      const lists = await Promise.all(
        [...new Set(req.vSwitchIds)].map((id) => vSwitchPages({ ...base, VSwitchId: id })),
      );
      for (const v of lists.flat()) found.set(v.vSwitchId, v);
    } else {
      for (const v of await vSwitchPages(base)) found.set(v.vSwitchId, v);
    }
    return [...found.values()];
  }

  async function vSwitchPages(params: RpcParams): Promise<VSwitch[]> {
    const out: VSwitch[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await call("DescribeVSwitches", {
        ...params,
        PageNumber: String(page),
        PageSize: String(VSWITCH_PAGE_SIZE),
      });
      const items = nestedList(body, "VSwitches", "VSwitch");
      for (const item of items) out.push(parsed("DescribeVSwitches", body, () => parseVSwitch(item)));
      const total = Number(String(body.TotalCount ?? Number.NaN));
      if (items.length < VSWITCH_PAGE_SIZE || (Number.isFinite(total) && page * VSWITCH_PAGE_SIZE >= total))
        break;
    }
    return out;
  }

  return {
    createNetworkInterface,
    attachNetworkInterface,
    detachNetworkInterface,
    deleteNetworkInterface,
    describeNetworkInterfaces,
    assignPrivateIpAddresses,
    unassignPrivateIpAddresses,
    describeInstanceTypes,
    describeVSwitches,
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
