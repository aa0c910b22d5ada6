// Wire (ECS/VPC JSON) to domain types. Tolerant of what the real API varies on
// (single items not wrapped in arrays, Key/Value vs TagKey/TagValue tags, a
// missing Type) and strict about what eniway relies on (ids, IPs, status).

import { isObject, type Json } from "../lib/json.js";
import { canonicalIpv6, isIpv4, isIpv4Prefix } from "../lib/net.js";
import {
  ENI_STATUSES,
  type Eni,
  type EniStatus,
  type EniType,
  type InstanceTypeLimits,
  type VSwitch,
  type VSwitchCidrReservation,
} from "./types.js";

export class ResponseShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResponseShapeError";
  }
}

function obj(o: Json, key: string): Json {
  const v = o[key];
  return isObject(v) ? v : {};
}

/** `{Outer: {Inner: [...]}}` → the array (a lone item is wrapped). */
export function nestedList(o: Json, outer: string, inner: string): unknown[] {
  const v = obj(o, outer)[inner];
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

export function str(o: Json, key: string): string {
  const v = o[key];
  if (v === undefined || v === null) return "";
  return typeof v === "string" ? v : String(v);
}

export function requiredStr(o: Json, key: string, what: string): string {
  const v = str(o, key);
  if (v === "") throw new ResponseShapeError(`${what}: missing ${key}`);
  return v;
}

/** Numbers may arrive as numbers, numeric strings or json-bigint BigNumbers. */
export function num(o: Json, key: string, what: string): number {
  const v = o[key];
  const n = typeof v === "number" ? v : typeof v === "string" || isObject(v) ? Number(String(v)) : Number.NaN;
  if (!Number.isFinite(n)) throw new ResponseShapeError(`${what}: ${key} is not a number`);
  return n;
}

export function parseTags(o: Json): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of nestedList(o, "Tags", "Tag")) {
    if (!isObject(t)) continue;
    const key = str(t, "TagKey") || str(t, "Key");
    if (key !== "") out[key] = str(t, "TagValue") || str(t, "Value");
  }
  return out;
}

function parseStatus(v: string, what: string): EniStatus {
  const s = ENI_STATUSES.find((x) => x === v);
  if (!s) throw new ResponseShapeError(`${what}: unknown status ${JSON.stringify(v)}`);
  return s;
}

function parseType(v: string): EniType {
  // Terway treats a missing Type as Secondary; Trunk/Member ENIs are not ours to manage.
  return v === "Primary" ? "Primary" : "Secondary";
}

function privateIps(o: Json, what: string): { primaryIp: string; privateIps: string[] } {
  const sets = nestedList(o, "PrivateIpSets", "PrivateIpSet").filter(isObject);
  let primaryIp = str(o, "PrivateIpAddress");
  const primaryFromSet = sets.find((s) => s.Primary === true || s.Primary === "true");
  if (primaryIp === "" && primaryFromSet) primaryIp = str(primaryFromSet, "PrivateIpAddress");
  const others = sets.map((s) => str(s, "PrivateIpAddress")).filter((ip) => ip !== primaryIp);
  const ips = primaryIp === "" ? others : [primaryIp, ...others];
  const bad = ips.find((ip) => !isIpv4(ip));
  if (bad !== undefined)
    throw new ResponseShapeError(`${what}: ${JSON.stringify(bad)} is not an IPv4 address`);
  return { primaryIp, privateIps: [...new Set(ips)] };
}

/** The /28s of `Ipv4PrefixSets.Ipv4PrefixSet[].Ipv4Prefix` (Describe and Create), each checked. */
function ipv4Prefixes(o: Json, what: string): string[] {
  const prefixes = nestedList(o, "Ipv4PrefixSets", "Ipv4PrefixSet")
    .filter(isObject)
    .map((s) => str(s, "Ipv4Prefix"));
  return checkedPrefixes(prefixes, what);
}

function checkedPrefixes(prefixes: string[], what: string): string[] {
  const bad = prefixes.find((p) => !isIpv4Prefix(p));
  if (bad !== undefined)
    throw new ResponseShapeError(`${what}: ${JSON.stringify(bad)} is not an IPv4 /28 prefix`);
  return [...new Set(prefixes)];
}

/** IPv6 addresses as the cloud wrote them → canonical text; one that is not an address fails the answer. */
function checkedIpv6s(list: unknown[], what: string): string[] {
  const out: string[] = [];
  for (const v of list) {
    const c = typeof v === "string" ? canonicalIpv6(v) : null;
    if (c === null) throw new ResponseShapeError(`${what}: ${JSON.stringify(v)} is not an IPv6 address`);
    out.push(c);
  }
  return [...new Set(out)];
}

/** `Ipv6Sets.Ipv6Set[].Ipv6Address` of Describe and Create. */
function ipv6s(o: Json, what: string): string[] {
  return checkedIpv6s(
    nestedList(o, "Ipv6Sets", "Ipv6Set")
      .filter(isObject)
      .map((s) => s.Ipv6Address),
    what,
  );
}

/** The addresses AssignIpv6Addresses assigned (`Ipv6Sets.Ipv6Address`). */
export function parseAssignedIpv6s(w: unknown): string[] {
  if (!isObject(w)) throw new ResponseShapeError("AssignIpv6Addresses response is not an object");
  return checkedIpv6s(nestedList(w, "Ipv6Sets", "Ipv6Address"), "AssignIpv6Addresses");
}

/** A NetworkInterfaceSet item of DescribeNetworkInterfaces. */
export function parseEni(w: unknown): Eni {
  if (!isObject(w)) throw new ResponseShapeError("NetworkInterfaceSet item is not an object");
  const eniId = requiredStr(w, "NetworkInterfaceId", "NetworkInterfaceSet item");
  const what = `ENI ${eniId}`;
  const { primaryIp, privateIps: ips } = privateIps(w, what);
  return {
    eniId,
    status: parseStatus(str(w, "Status"), what),
    type: parseType(str(w, "Type")),
    instanceId: str(w, "InstanceId") || str(obj(w, "Attachment"), "InstanceId"),
    vpcId: str(w, "VpcId"),
    vSwitchId: str(w, "VSwitchId"),
    zoneId: str(w, "ZoneId"),
    macAddress: str(w, "MacAddress").toLowerCase(),
    primaryIp,
    privateIps: ips,
    ipv4Prefixes: ipv4Prefixes(w, what),
    ipv6s: ipv6s(w, what),
    securityGroupIds: nestedList(w, "SecurityGroupIds", "SecurityGroupId").map(String),
    tags: parseTags(w),
    creationTime: str(w, "CreationTime"),
  };
}

/** CreateNetworkInterface's response; it has no CreationTime, so `now` stands in. */
export function parseCreatedEni(w: unknown, now: Date): Eni {
  if (!isObject(w)) throw new ResponseShapeError("CreateNetworkInterface response is not an object");
  const eni = parseEni({ Status: "Available", ...w });
  if (eni.creationTime === "") eni.creationTime = `${now.toISOString().slice(0, 19)}Z`;
  return eni;
}

export function parseAssignedIps(w: unknown): string[] {
  if (!isObject(w)) throw new ResponseShapeError("AssignPrivateIpAddresses response is not an object");
  const ips = nestedList(obj(w, "AssignedPrivateIpAddressesSet"), "PrivateIpSet", "PrivateIpAddress").map(
    String,
  );
  const bad = ips.find((ip) => !isIpv4(ip));
  if (bad !== undefined)
    throw new ResponseShapeError(`AssignPrivateIpAddresses: ${JSON.stringify(bad)} is not an IPv4 address`);
  return ips;
}

/** The prefixes AssignPrivateIpAddresses assigned (`AssignedPrivateIpAddressesSet.Ipv4PrefixSet.Ipv4Prefixes`). */
export function parseAssignedPrefixes(w: unknown): string[] {
  if (!isObject(w)) throw new ResponseShapeError("AssignPrivateIpAddresses response is not an object");
  const prefixes = nestedList(obj(w, "AssignedPrivateIpAddressesSet"), "Ipv4PrefixSet", "Ipv4Prefixes").map(
    String,
  );
  return checkedPrefixes(prefixes, "AssignPrivateIpAddresses");
}

/** An instance type's ENI quotas and its vCPUs (CpuCoreCount; 0 when the answer lacks it). */
export type InstanceTypeInfo = InstanceTypeLimits & { cpuCoreCount: number };

export function parseInstanceType(w: unknown): InstanceTypeInfo {
  if (!isObject(w)) throw new ResponseShapeError("InstanceType item is not an object");
  const id = requiredStr(w, "InstanceTypeId", "InstanceType item");
  const what = `instance type ${id}`;
  return {
    instanceTypeId: id,
    eniQuantity: num(w, "EniQuantity", what),
    eniPrivateIpAddressQuantity: num(w, "EniPrivateIpAddressQuantity", what),
    eniIpv6AddressQuantity:
      w.EniIpv6AddressQuantity === undefined ? 0 : num(w, "EniIpv6AddressQuantity", what),
    cpuCoreCount: w.CpuCoreCount === undefined ? 0 : num(w, "CpuCoreCount", what),
  };
}

/** An item of ListVSwitchCidrReservations' VSwitchCidrReservations. */
export function parseReservation(w: unknown): VSwitchCidrReservation {
  if (!isObject(w)) throw new ResponseShapeError("VSwitchCidrReservation item is not an object");
  const id = requiredStr(w, "VSwitchCidrReservationId", "VSwitchCidrReservation item");
  const what = `reservation ${id}`;
  return {
    reservationId: id,
    vSwitchId: str(w, "VSwitchId"),
    cidr: str(w, "VSwitchCidrReservationCidr"),
    ipVersion: str(w, "IpVersion") === "IPv6" ? "IPv6" : "IPv4",
    status: str(w, "Status"),
    assignedCidrCount: num(w, "AssignedCidrCount", what),
    availableCidrCount: num(w, "AvailableCidrCount", what),
  };
}

export function parseVSwitch(w: unknown): VSwitch {
  if (!isObject(w)) throw new ResponseShapeError("VSwitch item is not an object");
  const id = requiredStr(w, "VSwitchId", "VSwitch item");
  const what = `vSwitch ${id}`;
  return {
    vSwitchId: id,
    vpcId: str(w, "VpcId"),
    zoneId: str(w, "ZoneId"),
    cidrBlock: requiredStr(w, "CidrBlock", what),
    availableIpAddressCount: num(w, "AvailableIpAddressCount", what),
    status: str(w, "Status") === "Pending" ? "Pending" : "Available",
    ipv6CidrBlock: str(w, "Ipv6CidrBlock"),
  };
}
