// The nine OpenAPI actions of the simulator: parameter checks, the state
// change, and the documented response shape.

import { createHash } from "node:crypto";
import {
  type CloudAction,
  ECS_API_VERSION,
  ENI_STATUSES,
  VPC_API_VERSION,
  type WireAssignPrivateIpAddressesResponse,
  type WireDescribeInstanceTypesResponse,
  type WireDescribeNetworkInterfacesResponse,
  type WireDescribeVSwitchesResponse,
  type WireNetworkInterfaceSet,
} from "../types.js";
import { fail, invalid } from "./errors.js";
import { boolean, integer, ipv4, ipv4List, list, optional, type Params, required, tags } from "./params.js";
import {
  assignIps,
  attachEni,
  availableIps,
  createEni,
  deleteEni,
  detachEni,
  getEni,
  getInstance,
  MAX_SECONDARY_IPS_UNATTACHED,
  type SimEni,
  type SimState,
  unassignIps,
} from "./state.js";

export interface ActionContext {
  state: SimState;
  /** How long Attach or Detach takes to settle. */
  transitionMs(action: "AttachNetworkInterface" | "DetachNetworkInterface"): number;
  idempotency: Map<string, { fingerprint: string; result: Record<string, unknown>; expires: number }>;
  clientTokenTtlMs: number;
  /** Mark a resource busy for this request; a concurrent request on it gets Operation.Conflict. */
  lock(resourceId: string): void;
}

type Result = Record<string, unknown>;
type Handler = (ctx: ActionContext, p: Params) => Result | Promise<Result>;

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

function region(ctx: ActionContext, p: Params, isRequired = true): void {
  const r = isRequired ? required(p, "RegionId") : optional(p, "RegionId");
  if (r !== undefined && r !== ctx.state.regionId) fail("InvalidRegionId.NotFound");
}

function eniParam(ctx: ActionContext, p: Params): SimEni {
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
async function idempotent(
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

export function renderEni(e: SimEni): WireNetworkInterfaceSet {
  return {
    NetworkInterfaceId: e.id,
    Status: e.status,
    Type: e.type,
    InstanceId: e.instanceId,
    VpcId: e.vpcId,
    VSwitchId: e.vSwitchId,
    ZoneId: e.zoneId,
    MacAddress: e.mac,
    PrivateIpAddress: e.ips[0] ?? "",
    NetworkInterfaceName: e.name,
    Description: e.description,
    CreationTime: e.creationTime,
    ResourceGroupId: "",
    ServiceManaged: false,
    SecurityGroupIds: { SecurityGroupId: [...e.securityGroupIds] },
    PrivateIpSets: { PrivateIpSet: e.ips.map((ip, i) => ({ PrivateIpAddress: ip, Primary: i === 0 })) },
    Ipv6Sets: { Ipv6Set: [] },
    Tags: { Tag: e.tags.map(([k, v]) => ({ TagKey: k, TagValue: v })) },
  };
}

function securityGroups(ctx: ActionContext, p: Params): string[] {
  const one = optional(p, "SecurityGroupId");
  const many = list(p, "SecurityGroupIds", 10);
  if (one !== undefined && many.length > 0)
    fail("InvalidParameter.Conflict", "SecurityGroupId and SecurityGroupIds.N cannot be specified together.");
  const sgs = one !== undefined ? [one] : many;
  if (sgs.length === 0) required(p, "SecurityGroupId");
  for (const sg of sgs) if (!ctx.state.securityGroups.has(sg)) fail("InvalidSecurityGroupId.NotFound");
  return sgs;
}

function nameOrDescription(p: Params, key: string, max: number, pattern?: RegExp): string {
  const v = optional(p, key) ?? "";
  if (v === "") return v;
  if (v.length < 2 || v.length > max || /^https?:\/\//.test(v) || (pattern && !pattern.test(v)))
    fail("InvalidParameter", invalid(key).message);
  return v;
}

const createNetworkInterface: Handler = (ctx, p) => {
  region(ctx, p);
  const vSwitchId = required(p, "VSwitchId");
  if (!ctx.state.vSwitches.has(vSwitchId)) fail("InvalidVSwitchId.NotFound");
  const sgs = securityGroups(ctx, p);
  const type = optional(p, "InstanceType") ?? "Secondary";
  if (type !== "Secondary")
    fail("InvalidParameter", invalid("InstanceType", "only Secondary is supported").message);
  const explicit = ipv4List(p, "PrivateIpAddress", MAX_SECONDARY_IPS_UNATTACHED);
  const count = integer(p, "SecondaryPrivateIpAddressCount", 0, MAX_SECONDARY_IPS_UNATTACHED);
  if (count !== undefined && explicit.length > 0)
    fail(
      "InvalidParameter.Conflict",
      "PrivateIpAddress.N and SecondaryPrivateIpAddressCount cannot be specified together.",
    );
  const tagList = tags(p);
  const name = nameOrDescription(
    p,
    "NetworkInterfaceName",
    128,
    /^[A-Za-z\u4e00-\u9fa5][\w:.\u4e00-\u9fa5-]*$/,
  );
  const description = nameOrDescription(p, "Description", 256);
  const primaryIp = ipv4(p, "PrimaryIpAddress");
  return idempotent(ctx, "CreateNetworkInterface", p, async () => {
    const eni = createEni(ctx.state, {
      vSwitchId,
      securityGroupIds: sgs,
      tags: tagList,
      secondaryCount: count ?? 0,
      explicitIps: explicit,
      ...(primaryIp ? { primaryIp } : {}),
      name,
      description,
      type: "Secondary",
    });
    const { InstanceId: _i, CreationTime: _c, ...rest } = renderEni(eni);
    return { ...rest, OwnerId: "1234567890123456" };
  });
};

const attachNetworkInterface: Handler = (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const inst = getInstance(ctx.state, required(p, "InstanceId"));
  ctx.lock(eni.id);
  attachEni(ctx.state, eni, inst, ctx.transitionMs("AttachNetworkInterface"));
  return {};
};

const detachNetworkInterface: Handler = (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const inst = getInstance(ctx.state, required(p, "InstanceId"));
  ctx.lock(eni.id);
  detachEni(ctx.state, eni, inst, ctx.transitionMs("DetachNetworkInterface"));
  return {};
};

const deleteNetworkInterface: Handler = (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  ctx.lock(eni.id);
  deleteEni(ctx.state, eni);
  return {};
};

const assignPrivateIpAddresses: Handler = (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const explicit = ipv4List(p, "PrivateIpAddress", 10);
  const count = integer(p, "SecondaryPrivateIpAddressCount", 1, MAX_SECONDARY_IPS_UNATTACHED);
  if (count !== undefined && explicit.length > 0)
    fail(
      "InvalidParameter.Conflict",
      "PrivateIpAddress.N and SecondaryPrivateIpAddressCount cannot be specified together.",
    );
  if (count === undefined && explicit.length === 0) required(p, "SecondaryPrivateIpAddressCount");
  return idempotent(ctx, "AssignPrivateIpAddresses", p, async () => {
    ctx.lock(eni.id);
    const ips = await assignIps(ctx.state, eni, count ?? 0, explicit);
    const body: Omit<WireAssignPrivateIpAddressesResponse, "RequestId"> = {
      AssignedPrivateIpAddressesSet: { NetworkInterfaceId: eni.id, PrivateIpSet: { PrivateIpAddress: ips } },
    };
    return body;
  });
};

const unassignPrivateIpAddresses: Handler = async (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const ips = ipv4List(p, "PrivateIpAddress", 50);
  if (ips.length === 0) required(p, "PrivateIpAddress.1");
  ctx.lock(eni.id);
  await unassignIps(ctx.state, eni, ips);
  return {};
};

/** Opaque cursor: the last item's position, bound to the query it came from. */
function encodeToken(position: number, query: string): string {
  return Buffer.from(`v1:${position}:${query}`).toString("base64");
}

function decodeToken(token: string | undefined, query: string): number {
  if (token === undefined) return -1;
  const m = /^v1:(\d+):(.*)$/.exec(Buffer.from(token, "base64").toString("utf8"));
  if (!m || m[2] !== query) fail("InvalidParameter", invalid("NextToken").message);
  return Number(m[1]);
}

function queryKey(p: Params): string {
  const keys = Object.keys(p)
    .filter((k) => !COMMON.has(k) && !["NextToken", "MaxResults", "PageNumber", "PageSize"].includes(k))
    .sort();
  return createHash("sha1")
    .update(keys.map((k) => `${k}=${p[k]}`).join("&"))
    .digest("hex")
    .slice(0, 12);
}

const describeNetworkInterfaces: Handler = (ctx, p) => {
  region(ctx, p);
  const ids = new Set(list(p, "NetworkInterfaceId", 100));
  const privateIps = new Set(list(p, "PrivateIpAddress", 100));
  const tagFilter = tags(p, 20, true);
  const status = optional(p, "Status");
  if (status !== undefined && !(ENI_STATUSES as readonly string[]).includes(status))
    fail("InvalidParameter", invalid("Status").message);
  const type = optional(p, "Type");
  if (type !== undefined && type !== "Primary" && type !== "Secondary")
    fail("InvalidParameter", invalid("Type").message);
  const f = {
    instanceId: optional(p, "InstanceId"),
    vSwitchId: optional(p, "VSwitchId"),
    vpcId: optional(p, "VpcId"),
    primary: optional(p, "PrimaryIpAddress"),
    sg: optional(p, "SecurityGroupId"),
    name: optional(p, "NetworkInterfaceName"),
  };
  const tokenMode = p.NextToken !== undefined || p.MaxResults !== undefined;
  const maxResults = integer(p, "MaxResults", 1, 500) ?? 10;
  const pageNumber = integer(p, "PageNumber", 1, 1_000_000) ?? 1;
  const pageSize = integer(p, "PageSize", 1, 100) ?? 10;
  const query = queryKey(p);
  const after = decodeToken(optional(p, "NextToken"), query);
  const match = (e: SimEni): boolean =>
    (ids.size === 0 || ids.has(e.id)) &&
    (privateIps.size === 0 || e.ips.some((ip) => privateIps.has(ip))) &&
    (f.instanceId === undefined || e.instanceId === f.instanceId) &&
    (f.vSwitchId === undefined || e.vSwitchId === f.vSwitchId) &&
    (f.vpcId === undefined || e.vpcId === f.vpcId) &&
    (f.primary === undefined || e.ips[0] === f.primary) &&
    (f.sg === undefined || e.securityGroupIds.includes(f.sg)) &&
    (f.name === undefined || e.name === f.name) &&
    (status === undefined || e.status === status) &&
    (type === undefined || e.type === type) &&
    tagFilter.every(([k, v]) => e.tags.some(([tk, tv]) => tk === k && (v === "" || tv === v)));
  const all = [...ctx.state.enis.values()].filter(match).sort((a, b) => a.seq - b.seq);
  let page: SimEni[];
  let next = "";
  const body: Partial<WireDescribeNetworkInterfacesResponse> = {};
  if (tokenMode) {
    page = all.filter((e) => e.seq > after).slice(0, maxResults);
    // Like the real API, a full page carries a token even when nothing follows it.
    if (page.length === maxResults) next = encodeToken(page[page.length - 1]!.seq, query);
  } else {
    page = all.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
    if (pageNumber * pageSize < all.length) next = encodeToken(page[page.length - 1]!.seq, query);
    Object.assign(body, { TotalCount: all.length, PageNumber: pageNumber, PageSize: pageSize });
  }
  return {
    ...body,
    NextToken: next,
    NetworkInterfaceSets: { NetworkInterfaceSet: page.map(renderEni) },
  };
};

const describeInstanceTypes: Handler = (ctx, p) => {
  region(ctx, p, false);
  const wanted = new Set(list(p, "InstanceTypes", 100));
  const family = optional(p, "InstanceTypeFamily");
  const max = integer(p, "MaxResults", 1, 1600) ?? 100;
  const query = queryKey(p);
  const after = decodeToken(optional(p, "NextToken"), query);
  const all = [...ctx.state.instanceTypes.values()]
    .filter((t) => (wanted.size === 0 || wanted.has(t.instanceTypeId)) && (!family || t.family === family))
    .map((t, i) => ({ t, i }));
  const page = all.filter(({ i }) => i > after).slice(0, max);
  const last = page[page.length - 1];
  const more = last !== undefined && all.some(({ i }) => i > last.i);
  const body: Omit<WireDescribeInstanceTypesResponse, "RequestId"> = {
    NextToken: more && last ? encodeToken(last.i, query) : "",
    InstanceTypes: {
      InstanceType: page.map(({ t }) => ({
        InstanceTypeId: t.instanceTypeId,
        InstanceTypeFamily: t.family,
        CpuCoreCount: t.cpu,
        MemorySize: t.memory,
        EniQuantity: t.eniQuantity,
        EniPrivateIpAddressQuantity: t.eniPrivateIpAddressQuantity,
        EniIpv6AddressQuantity: t.eniIpv6AddressQuantity,
        EniTotalQuantity: t.eniQuantity,
        EniTrunkSupported: false,
      })),
    },
  };
  return body;
};

const describeVSwitches: Handler = (ctx, p) => {
  region(ctx, p);
  const id = optional(p, "VSwitchId");
  const vpcId = optional(p, "VpcId");
  const zoneId = optional(p, "ZoneId");
  const isDefault = boolean(p, "IsDefault");
  const pageNumber = integer(p, "PageNumber", 1, 1_000_000) ?? 1;
  const pageSize = integer(p, "PageSize", 1, 50) ?? 10;
  const all = [...ctx.state.vSwitches.values()].filter(
    (v) =>
      (id === undefined || v.id === id) &&
      (vpcId === undefined || vpcId === ctx.state.vpcId) &&
      (zoneId === undefined || v.zoneId === zoneId) &&
      isDefault !== true,
  );
  const body: Omit<WireDescribeVSwitchesResponse, "RequestId"> = {
    TotalCount: all.length,
    PageNumber: pageNumber,
    PageSize: pageSize,
    VSwitches: {
      VSwitch: all.slice((pageNumber - 1) * pageSize, pageNumber * pageSize).map((v) => ({
        VSwitchId: v.id,
        VpcId: ctx.state.vpcId,
        Status: "Available",
        CidrBlock: v.cidrBlock,
        ZoneId: v.zoneId,
        AvailableIpAddressCount: availableIps(v),
        VSwitchName: v.id,
        Description: "",
        CreationTime: v.creationTime,
        IsDefault: false,
        ResourceGroupId: "",
      })),
    },
  };
  return body;
};

export const ACTIONS: Record<CloudAction, { version: string; handler: Handler }> = {
  CreateNetworkInterface: { version: ECS_API_VERSION, handler: createNetworkInterface },
  AttachNetworkInterface: { version: ECS_API_VERSION, handler: attachNetworkInterface },
  DetachNetworkInterface: { version: ECS_API_VERSION, handler: detachNetworkInterface },
  DeleteNetworkInterface: { version: ECS_API_VERSION, handler: deleteNetworkInterface },
  DescribeNetworkInterfaces: { version: ECS_API_VERSION, handler: describeNetworkInterfaces },
  AssignPrivateIpAddresses: { version: ECS_API_VERSION, handler: assignPrivateIpAddresses },
  UnassignPrivateIpAddresses: { version: ECS_API_VERSION, handler: unassignPrivateIpAddresses },
  DescribeInstanceTypes: { version: ECS_API_VERSION, handler: describeInstanceTypes },
  DescribeVSwitches: { version: VPC_API_VERSION, handler: describeVSwitches },
};
