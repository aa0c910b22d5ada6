// Checks on every value that reaches the cloud or the metadata service, so a
// malformed identifier fails here, clearly, before anything is sent.

import {
  CLIENT_TOKEN,
  ENI_ID,
  INSTANCE_ID,
  INSTANCE_TYPE,
  matches,
  REGION_ID,
  ROLE_NAME,
  type Rule,
  SECURITY_GROUP_ID,
  TAG_KEY,
  TAG_VALUE,
  VPC_ID,
  VSWITCH_ID,
  ZONE_ID,
} from "../lib/ids.js";
import { isIpv4, isIpv4Prefix, isIpv6, isMac } from "../lib/net.js";

/** ECS: IPv6 addresses per AssignIpv6Addresses and UnassignIpv6Addresses (Ipv6AddressCount, Ipv6Address.N). */
export const MAX_IPV6_PER_CALL = 10;
/** ECS: IPv4 prefixes per AssignPrivateIpAddresses or CreateNetworkInterface (Ipv4PrefixCount, Ipv4Prefix.N). */
export const MAX_IPV4_PREFIXES_PER_CALL = 10;

export class InvalidArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidArgumentError";
  }
}

function show(value: unknown): string {
  const s = typeof value === "string" ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function check(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new InvalidArgumentError(`invalid ${what}: ${show(value)}`);
}

/** A string that follows the rule (lib/ids.ts). */
function follows(rule: Rule, v: unknown): v is string {
  return isStr(v) && matches(rule, v);
}

export function isStr(v: unknown): v is string {
  return typeof v === "string";
}

export function assertEniId(v: unknown): asserts v is string {
  check(follows(ENI_ID, v), "ENI id", v);
}
export function assertInstanceId(v: unknown): asserts v is string {
  check(follows(INSTANCE_ID, v), "instance id", v);
}
export function assertVSwitchId(v: unknown): asserts v is string {
  check(follows(VSWITCH_ID, v), "vSwitch id", v);
}
export function assertVpcId(v: unknown): asserts v is string {
  check(follows(VPC_ID, v), "VPC id", v);
}
export function assertSecurityGroupId(v: unknown): asserts v is string {
  check(follows(SECURITY_GROUP_ID, v), "security group id", v);
}
export function assertRegionId(v: unknown): asserts v is string {
  check(follows(REGION_ID, v), "region id", v);
}
export function assertZoneId(v: unknown): asserts v is string {
  check(follows(ZONE_ID, v), "zone id", v);
}
export function assertInstanceType(v: unknown): asserts v is string {
  check(follows(INSTANCE_TYPE, v), "instance type", v);
}
export function assertIpv4(v: unknown): asserts v is string {
  check(isStr(v) && isIpv4(v), "IPv4 address", v);
}
export function assertIpv6(v: unknown): asserts v is string {
  check(isStr(v) && isIpv6(v), "IPv6 address (canonical text)", v);
}
/** An IPv4 /28 prefix without host bits, as ENIs carry them. */
export function assertIpv4Prefix(v: unknown): asserts v is string {
  check(isStr(v) && isIpv4Prefix(v), "IPv4 prefix (a /28)", v);
}
/** Lower-case, colon-separated, as the metadata service lists them. */
export function assertMac(v: unknown): asserts v is string {
  check(isStr(v) && isMac(v), "MAC address", v);
}
export function assertRamRoleName(v: unknown): asserts v is string {
  check(follows(ROLE_NAME, v), "RAM role name", v);
}

/** ECS: at most 64 printable ASCII characters. */
export function assertClientToken(v: unknown): asserts v is string {
  check(follows(CLIENT_TOKEN, v), "ClientToken", v);
}

export function assertIntInRange(v: unknown, min: number, max: number, what: string): asserts v is number {
  check(typeof v === "number" && Number.isInteger(v) && v >= min && v <= max, `${what} (${min}..${max})`, v);
}

/** ECS tag rules: key 1..128 chars, not starting with aliyun or acs:, no URLs; value ≤128. At most 20. */
export function assertTags(tags: Record<string, string>): void {
  const entries = Object.entries(tags);
  if (entries.length > 20) throw new InvalidArgumentError(`too many tags: ${entries.length} (at most 20)`);
  for (const [k, v] of entries) {
    check(matches(TAG_KEY, k), "tag key", k);
    check(follows(TAG_VALUE, v), `value of tag ${show(k)}`, v);
  }
}

/** ENI description: 2..256 characters, not starting with http:// or https://. */
export function assertDescription(v: unknown): asserts v is string {
  check(isStr(v) && v.length >= 2 && v.length <= 256 && !/^https?:\/\//i.test(v), "description", v);
}

/** ENI name: 2..128 characters, starting with a letter; letters, digits, ':', '_', '-', '.'. */
export function assertEniName(v: unknown): asserts v is string {
  check(isStr(v) && /^[\p{L}][\p{L}0-9:_.-]{1,127}$/u.test(v), "ENI name", v);
}
