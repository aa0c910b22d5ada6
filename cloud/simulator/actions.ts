// The OpenAPI actions of the simulator: parameter checks, the state change,
// and the documented response shape. The ENI and vSwitch actions live here;
// IPv6 (actions-ipv6.ts) and vSwitch CIDR reservations
// (actions-reservations.ts) in their own files.

import {
  ECS_API_VERSION,
  ENI_STATUSES,
  type SimAction,
  VPC_API_VERSION,
  type WireAssignPrivateIpAddressesResponse,
  type WireDescribeInstanceTypesResponse,
  type WireDescribeNetworkInterfacesResponse,
  type WireDescribeVSwitchesResponse,
  type WireNetworkInterfaceSet,
} from "../types.js";
import { assignIpv6Addresses, type Ipv6Request, unassignIpv6Addresses, withIpv6 } from "./actions-ipv6.js";
import { reservationsActions } from "./actions-reservations.js";
import { assignPrefixes, unassignPrefixes } from "./addressing.js";
import { fail, invalid } from "./errors.js";
import {
  type ActionContext,
  type AddressRequest,
  addressRequest,
  decodeToken,
  encodeToken,
  eniParam,
  type Handler,
  IPV4_PREFIXES,
  idempotent,
  nameOrDescription,
  queryKey,
  region,
} from "./handler.js";
import {
  boolean,
  exclusive,
  integer,
  ipv4,
  ipv4List,
  ipv6List,
  list,
  optional,
  type Params,
  prefixList,
  required,
  tags,
} from "./params.js";
import {
  assignIps,
  attachEni,
  availableIps,
  createEni,
  deleteEni,
  detachEni,
  getInstance,
  MAX_SECONDARY_IPS_UNATTACHED,
  PREFIX_LENGTH,
  type SimEni,
  unassignIps,
} from "./state.js";

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
    Ipv6Sets: { Ipv6Set: e.ipv6s.map((ip) => ({ Ipv6Address: ip })) },
    Ipv4PrefixSets: { Ipv4PrefixSet: e.ipv4Prefixes.map((x) => ({ Ipv4Prefix: x })) },
    Ipv6PrefixSets: { Ipv6PrefixSet: e.ipv6Prefixes.map((x) => ({ Ipv6Prefix: x })) },
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
  const singles = singlesRequested(explicit, count);
  const prefixes = addressRequest(p, IPV4_PREFIXES);
  exclusive([
    { label: "PrivateIpAddress.N or SecondaryPrivateIpAddressCount", present: singles },
    { label: "Ipv4Prefix.N or Ipv4PrefixCount", present: prefixes !== undefined },
  ]);
  const v6 = withIpv6(p);
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
    await withPrefixesAndIpv6(ctx, eni, prefixes, v6);
    const { InstanceId: _i, CreationTime: _c, ...rest } = renderEni(eni);
    return { ...rest, OwnerId: "1234567890123456" };
  });
};

/** Whether single secondary IPv4 addresses were asked for (PrivateIpAddress.N, or a count above 0). */
function singlesRequested(explicit: string[], count: number | undefined): boolean {
  exclusive([
    { label: "PrivateIpAddress.N", present: explicit.length > 0 },
    { label: "SecondaryPrivateIpAddressCount", present: count !== undefined },
  ]);
  return explicit.length > 0 || (count ?? 0) > 0;
}

/** A new ENI's prefixes and IPv6 (CreateNetworkInterface); on failure the ENI is deleted again. */
async function withPrefixesAndIpv6(
  ctx: ActionContext,
  eni: SimEni,
  prefixes: AddressRequest | undefined,
  v6: Ipv6Request,
): Promise<void> {
  try {
    if (prefixes) await assignPrefixes(ctx.state, eni, 4, prefixes.count, prefixes.named);
    await v6.apply(ctx.state, eni);
  } catch (e) {
    deleteEni(ctx.state, eni);
    throw e;
  }
}

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
  const singles = singlesRequested(explicit, count);
  const prefixes = addressRequest(p, IPV4_PREFIXES);
  exclusive([
    { label: "PrivateIpAddress.N or SecondaryPrivateIpAddressCount", present: singles },
    { label: "Ipv4Prefix.N or Ipv4PrefixCount", present: prefixes !== undefined },
  ]);
  if (!singles && !prefixes) required(p, "SecondaryPrivateIpAddressCount");
  return idempotent(ctx, "AssignPrivateIpAddresses", p, async () => {
    ctx.lock(eni.id);
    const ips = prefixes ? [] : await assignIps(ctx.state, eni, count ?? 0, explicit);
    const assigned = prefixes ? await assignPrefixes(ctx.state, eni, 4, prefixes.count, prefixes.named) : [];
    const body: Omit<WireAssignPrivateIpAddressesResponse, "RequestId"> = {
      AssignedPrivateIpAddressesSet: {
        NetworkInterfaceId: eni.id,
        PrivateIpSet: { PrivateIpAddress: ips },
        Ipv4PrefixSet: { Ipv4Prefixes: assigned },
      },
    };
    return body;
  });
};

const unassignPrivateIpAddresses: Handler = async (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const ips = ipv4List(p, "PrivateIpAddress", 50);
  const prefixes = prefixList(p, "Ipv4Prefix", 4, PREFIX_LENGTH[4], 10);
  exclusive([
    { label: "PrivateIpAddress.N", present: ips.length > 0 },
    { label: "Ipv4Prefix.N", present: prefixes.length > 0 },
  ]);
  if (ips.length === 0 && prefixes.length === 0) required(p, "PrivateIpAddress.1");
  ctx.lock(eni.id);
  if (prefixes.length) await unassignPrefixes(ctx.state, eni, 4, prefixes);
  else await unassignIps(ctx.state, eni, ips);
  return {};
};

const describeNetworkInterfaces: Handler = (ctx, p) => {
  region(ctx, p);
  const ids = new Set(list(p, "NetworkInterfaceId", 100));
  const privateIps = new Set(list(p, "PrivateIpAddress", 100));
  const ipv6s = new Set(ipv6List(p, "Ipv6Address", 100));
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
    (ipv6s.size === 0 || e.ipv6s.some((ip) => ipv6s.has(ip))) &&
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
        EnabledIpv6: v.ipv6 !== undefined,
        ...(v.ipv6 ? { Ipv6CidrBlock: v.ipv6.cidrBlock } : {}),
      })),
    },
  };
  return body;
};

export const ACTIONS: Record<SimAction, { version: string; handler: Handler }> = {
  CreateNetworkInterface: { version: ECS_API_VERSION, handler: createNetworkInterface },
  AttachNetworkInterface: { version: ECS_API_VERSION, handler: attachNetworkInterface },
  DetachNetworkInterface: { version: ECS_API_VERSION, handler: detachNetworkInterface },
  DeleteNetworkInterface: { version: ECS_API_VERSION, handler: deleteNetworkInterface },
  DescribeNetworkInterfaces: { version: ECS_API_VERSION, handler: describeNetworkInterfaces },
  AssignPrivateIpAddresses: { version: ECS_API_VERSION, handler: assignPrivateIpAddresses },
  UnassignPrivateIpAddresses: { version: ECS_API_VERSION, handler: unassignPrivateIpAddresses },
  DescribeInstanceTypes: { version: ECS_API_VERSION, handler: describeInstanceTypes },
  DescribeVSwitches: { version: VPC_API_VERSION, handler: describeVSwitches },
  AssignIpv6Addresses: { version: ECS_API_VERSION, handler: assignIpv6Addresses },
  UnassignIpv6Addresses: { version: ECS_API_VERSION, handler: unassignIpv6Addresses },
  ...reservationsActions(VPC_API_VERSION),
};
