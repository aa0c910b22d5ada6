// Reading RPC request parameters the way the OpenAPI gateway does:
// flat string keys, repeated lists as `Name.N`, tag lists as `Tag.N.Key`.

import { isIpv4 } from "../../lib/net.js";
import { canonicalAddr, type Family, formatNet, parseNet } from "./addr.js";
import { ApiFailure, fail, invalid, missing } from "./errors.js";

export type Params = Record<string, string>;

export function required(p: Params, name: string): string {
  const v = p[name];
  if (v === undefined || v === "") throw new ApiFailure(missing(name));
  return v;
}

export function optional(p: Params, name: string): string | undefined {
  const v = p[name];
  return v === undefined || v === "" ? undefined : v;
}

export function integer(p: Params, name: string, min: number, max: number): number | undefined {
  const v = optional(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) fail("InvalidParameter", invalid(name, "must be an integer").message);
  const n = Number(v);
  if (n < min || n > max)
    fail("InvalidParameter", invalid(name, `must be between ${min} and ${max}`).message);
  return n;
}

export function boolean(p: Params, name: string): boolean | undefined {
  const v = optional(p, name);
  if (v === undefined) return undefined;
  if (v !== "true" && v !== "false") fail("InvalidParameter", invalid(name, "must be true or false").message);
  return v === "true";
}

/** `Name.1`, `Name.2`, … in index order; N must lie in 1..max. */
export function list(p: Params, name: string, max: number): string[] {
  const re = new RegExp(`^${name.replace(/\./g, "\\.")}\\.(\\d+)$`);
  const items: [number, string][] = [];
  for (const [k, v] of Object.entries(p)) {
    const m = re.exec(k);
    if (!m) continue;
    const n = Number(m[1]);
    if (n < 1 || n > max)
      fail("InvalidParameter", invalid(`${name}.N`, `accepts N from 1 to ${max}`).message);
    if (v !== "") items.push([n, v]);
  }
  return items.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

/** An optional dotted-quad IPv4 address; anything else is an InvalidParameter naming the key. */
export function ipv4(p: Params, name: string): string | undefined {
  const v = optional(p, name);
  if (v !== undefined && !isIpv4(v))
    fail("InvalidParameter", invalid(name, "must be an IPv4 address").message);
  return v;
}

/** `Name.N` IPv4 addresses (see `list`), each checked like `ipv4`. */
export function ipv4List(p: Params, name: string, max: number): string[] {
  const items = list(p, name, max);
  for (const v of items)
    if (!isIpv4(v)) fail("InvalidParameter", invalid(`${name}.N`, "must hold IPv4 addresses").message);
  return items;
}

/** `Tag.N.Key` / `Tag.N.Value` pairs, validated as ECS documents them. */
export function tags(p: Params, max = 20, forFilter = false): [string, string][] {
  const byN = new Map<number, { key?: string; value?: string }>();
  for (const [k, v] of Object.entries(p)) {
    const m = /^Tag\.(\d+)\.(Key|Value)$/.exec(k);
    if (!m) continue;
    const n = Number(m[1]);
    if (n < 1) fail("InvalidParameter", invalid("Tag.N", "starts at 1").message);
    const e = byN.get(n) ?? {};
    if (m[2] === "Key") e.key = v;
    else e.value = v;
    byN.set(n, e);
  }
  if (byN.size > max) fail("QuotaExceed.Tags", `At most ${max} tags can be specified.`);
  const out: [string, string][] = [];
  const keys = new Set<string>();
  for (const n of [...byN.keys()].sort((a, b) => a - b)) {
    const { key, value = "" } = byN.get(n)!;
    if (key === undefined || key === "") {
      if (forFilter && !key) continue;
      fail("InvalidTagKey.Malformed", `The specified Tag.${n}.Key is not valid.`);
    }
    if (!forFilter) {
      if (key.length > 128 || /^(aliyun|acs:)/i.test(key) || /https?:\/\//.test(key))
        fail("InvalidTagKey.Malformed", `The specified Tag.${n}.Key is not valid.`);
      if (value.length > 128 || /^acs:/i.test(value) || /https?:\/\//.test(value))
        fail("InvalidTagValue.Malformed", `The specified Tag.${n}.Value is not valid.`);
    }
    if (keys.has(key)) fail("Duplicate.TagKey");
    keys.add(key);
    out.push([key, value]);
  }
  return out;
}

/** `Name.N` IPv6 addresses (see `list`), in canonical form; anything else is an InvalidParameter. */
export function ipv6List(p: Params, name: string, max: number): string[] {
  return list(p, name, max).map((v) => {
    const c = canonicalAddr(v, 6);
    if (c === undefined) fail("InvalidParameter", invalid(`${name}.N`, "must hold IPv6 addresses").message);
    return c;
  });
}

/** `Name.N` prefixes of a family (see `list`) of exactly `length` bits, without host bits, canonical. */
export function prefixList(p: Params, name: string, family: Family, length: number, max: number): string[] {
  return list(p, name, max).map((v) => {
    const net = parseNet(v, family);
    if (!net || net.prefix !== length)
      fail("InvalidParameter", invalid(`${name}.N`, `must hold IPv${family} /${length} prefixes`).message);
    return formatNet(net);
  });
}

/** A CIDR of a family without host bits, canonical; anything else is an InvalidParameter naming the key. */
export function cidrParam(p: Params, name: string, family: Family): string | undefined {
  const v = optional(p, name);
  if (v === undefined) return undefined;
  const net = parseNet(v, family);
  if (!net) fail("InvalidParameter", invalid(name, `must be an IPv${family} CIDR block`).message);
  return formatNet(net);
}

/** At most one of the named parameter groups may be present; each group is present when any key is. */
export function exclusive(groups: { label: string; present: boolean }[]): void {
  const given = groups.filter((g) => g.present);
  if (given.length > 1)
    fail(
      "InvalidParameter.Conflict",
      `${given.map((g) => g.label).join(" and ")} cannot be specified together.`,
    );
}
