// IP prefixes (IPv4 /28, IPv6 /80) and IPv6 addresses on ENIs, as ECS
// documents them: a prefix comes only from an Assigned CIDR reservation of the
// ENI's vSwitch, never overlaps another prefix or an assigned address, and
// counts as one address toward the ENI's quota of its family; IPv6 addresses
// come from the vSwitch's /64 outside its reservations and its system
// addresses (the first and the last nine). Every change is all or nothing and
// reaches the datapath through the state's hooks.

import { randomBytes } from "node:crypto";
import {
  blockOf,
  blocksOf,
  type Family,
  formatAddr,
  formatNet,
  type Net,
  netContains,
  netWithin,
  parseAddr,
  parseNet,
  sizeOf,
} from "./addr.js";
import { fail } from "./errors.js";
import {
  type AddressKind,
  giveBackIpv6s,
  inReservation,
  ipQuota,
  ipv4Count,
  ipv6Count,
  ipv6Quota,
  PREFIX_LENGTH,
  requireIpState,
  type SimEni,
  type SimReservation,
  type SimState,
  type SimVSwitch,
  type SimVSwitchV6,
  usableRange6,
} from "./state.js";

const PREFIX_KIND: Record<Family, AddressKind> = { 4: "ipv4Prefix", 6: "ipv6Prefix" };

const vSwitchOf = (state: SimState, eni: SimEni): SimVSwitch => state.vSwitches.get(eni.vSwitchId)!;

const prefixesOf = (eni: SimEni, family: Family): string[] =>
  family === 4 ? eni.ipv4Prefixes : eni.ipv6Prefixes;

/** The vSwitch's single addresses of a family, as bigints. */
function singles(vsw: SimVSwitch, family: Family): bigint[] {
  return family === 4 ? [...vsw.used].map(BigInt) : [...(vsw.ipv6?.used ?? [])];
}

/** Bases of the prefix-sized blocks that an assigned single address makes unusable. */
function blockedBySingles(vsw: SimVSwitch, family: Family): Set<bigint> {
  return new Set(singles(vsw, family).map((v) => blockOf(v, family, PREFIX_LENGTH[family]).base));
}

function isFree(state: SimState, net: Net, blocked: Set<bigint>): boolean {
  return !state.prefixOwner.has(formatNet(net)) && !blocked.has(net.base);
}

function assignedReservations(vsw: SimVSwitch, family: Family): SimReservation[] {
  return [...vsw.reservations.values()]
    .filter((r) => r.family === family && r.status === "Assigned")
    .sort((a, b) => a.seq - b.seq);
}

/** `count` free prefixes from the vSwitch's Assigned reservations, lowest first, or IpNotEnough. */
function freePrefixes(state: SimState, vsw: SimVSwitch, family: Family, count: number): Net[] {
  const blocked = blockedBySingles(vsw, family);
  const out: Net[] = [];
  for (const r of assignedReservations(vsw, family))
    for (const net of blocksOf(r.net, PREFIX_LENGTH[family])) {
      if (out.length === count) return out;
      if (isFree(state, net, blocked)) out.push(net);
    }
  if (out.length < count)
    fail(
      "InvalidVSwitchId.IpNotEnough",
      `The reserved CIDR blocks of the specified VSwitch "${vsw.id}" have not enough free IPv${family} prefixes.`,
    );
  return out;
}

/** Checks prefixes a caller named (already canonical /28 or /80 text). */
function namedPrefixes(state: SimState, vsw: SimVSwitch, family: Family, texts: string[]): Net[] {
  const blocked = blockedBySingles(vsw, family);
  const seen = new Set<string>();
  return texts.map((text) => {
    const net = parseNet(text, family)!;
    const cidr = family === 4 ? parseNet(vsw.cidrBlock, 4) : vsw.ipv6?.net;
    if (!cidr || !netWithin(net, cidr))
      fail("InvalidIp.Address", `The specified prefix ${text} is not in the CIDR block of the VSwitch.`);
    if (!assignedReservations(vsw, family).some((r) => netWithin(net, r.net)))
      fail(
        "InvalidIp.Address",
        `The specified prefix ${text} is not in a reserved CIDR block of the VSwitch.`,
      );
    if (seen.has(text)) fail("InvalidIp.IpRepeated", `The specified prefix ${text} is repeated.`);
    seen.add(text);
    if (!isFree(state, net, blocked))
      fail(
        "InvalidIp.IpAssigned",
        `The specified prefix ${text} is already assigned or holds an assigned IP.`,
      );
    return net;
  });
}

function requireQuota(state: SimState, eni: SimEni, family: Family, more: number): void {
  if (family === 4 && ipv4Count(eni) + more > ipQuota(state, eni)) fail("InvalidOperation.Ipv4CountExceeded");
  if (family === 6 && ipv6Count(eni) + more > ipv6Quota(state, eni))
    fail("InvalidOperation.Ipv6CountExceeded");
}

/** The vSwitch's IPv6 /64, and an instance type that takes IPv6, or the documented errors. */
function requireIpv6(state: SimState, eni: SimEni): SimVSwitchV6 {
  const vsw = vSwitchOf(state, eni);
  if (!vsw.ipv6)
    fail("InvalidVSwitch.Ipv6NotTurnOn", `The specified VSwitch "${vsw.id}" ipv6 function not turn on.`);
  const inst = eni.instanceId ? state.instances.get(eni.instanceId) : undefined;
  if (inst && inst.type.eniIpv6AddressQuantity === 0)
    fail(
      "InvalidOperation.Ipv6NotSupport",
      `The instanceType of ${inst.type.instanceTypeId} not support ipv6.`,
    );
  return vsw.ipv6;
}

/** Assigns `count` prefixes, or the named ones, of a family; returns them (canonical CIDR text). */
export async function assignPrefixes(
  state: SimState,
  eni: SimEni,
  family: Family,
  count: number,
  named: string[],
): Promise<string[]> {
  requireIpState(eni);
  if (family === 6) requireIpv6(state, eni);
  requireQuota(state, eni, family, count + named.length);
  const vsw = vSwitchOf(state, eni);
  const nets = named.length
    ? namedPrefixes(state, vsw, family, named)
    : freePrefixes(state, vsw, family, count);
  const added = nets.map(formatNet);
  for (const p of added) state.prefixOwner.set(p, eni.id);
  prefixesOf(eni, family).push(...added);
  await state.hooks.assign?.(eni, { kind: PREFIX_KIND[family], values: added });
  return added;
}

export async function unassignPrefixes(
  state: SimState,
  eni: SimEni,
  family: Family,
  prefixes: string[],
): Promise<void> {
  requireIpState(eni);
  const mine = prefixesOf(eni, family);
  for (const p of prefixes)
    if (!mine.includes(p))
      fail("InvalidIp.IpUnassigned", `The specified prefix ${p} is not assigned to the ENI.`);
  const rest = mine.filter((p) => !prefixes.includes(p));
  if (family === 4) eni.ipv4Prefixes = rest;
  else eni.ipv6Prefixes = rest;
  for (const p of prefixes) state.prefixOwner.delete(p);
  await state.hooks.unassign?.(eni, { kind: PREFIX_KIND[family], values: prefixes });
}

/** `count` random free addresses of the /64 (ECS "randomly generates" them), or IpNotEnough. */
function randomIpv6s(vsw: SimVSwitch, v6: SimVSwitchV6, count: number): bigint[] {
  const { first, last } = usableRange6(v6.net);
  const out = new Set<bigint>();
  for (let i = 0; i < 1000 * count && out.size < count; i++) {
    const v = v6.net.base + BigInt(`0x${randomBytes(8).toString("hex")}`);
    if (v >= first && v <= last && !v6.used.has(v) && !inReservation(vsw, v, 6)) out.add(v);
  }
  if (out.size < count)
    fail("InvalidVSwitchId.IpNotEnough", `The specified VSwitch "${vsw.id}" has not enough IPv6 addresses.`);
  return [...out];
}

/** Checks IPv6 addresses a caller named (canonical text). */
function namedIpv6s(state: SimState, vsw: SimVSwitch, v6: SimVSwitchV6, texts: string[]): bigint[] {
  const { first, last } = usableRange6(v6.net);
  const seen = new Set<bigint>();
  return texts.map((text) => {
    const v = parseAddr(text, 6)!;
    if (!netContains(v6.net, v) || v < first || v > last || inReservation(vsw, v, 6))
      fail("InvalidIp.Address", `The specified ipAddress "${text}" is invalid.`);
    if (seen.has(v)) fail("InvalidIp.IpRepeated", `The specified ipAddress "${text}" is(are) repeated.`);
    seen.add(v);
    if (v6.used.has(v) || state.ipv6Owner.has(text))
      fail("InvalidIp.IpAssigned", `The specified ipAddress "${text}" is already assigned.`);
    return v;
  });
}

/** Assigns `count` random IPv6 addresses, or the named ones; returns them (canonical text). */
export async function assignIpv6s(
  state: SimState,
  eni: SimEni,
  count: number,
  named: string[],
): Promise<string[]> {
  requireIpState(eni);
  const v6 = requireIpv6(state, eni);
  requireQuota(state, eni, 6, count + named.length);
  const vsw = vSwitchOf(state, eni);
  const values = named.length ? namedIpv6s(state, vsw, v6, named) : randomIpv6s(vsw, v6, count);
  const added = values.map((v) => formatAddr(v, 6));
  for (const v of values) v6.used.add(v);
  for (const ip of added) state.ipv6Owner.set(ip, eni.id);
  eni.ipv6s.push(...added);
  await state.hooks.assign?.(eni, { kind: "ipv6", values: added });
  return added;
}

export async function unassignIpv6s(state: SimState, eni: SimEni, ips: string[]): Promise<void> {
  requireIpState(eni);
  for (const ip of ips)
    if (!eni.ipv6s.includes(ip))
      fail("InvalidIp.IpUnassigned", `The specified IPv6 address ${ip} is not assigned to the ENI.`);
  eni.ipv6s = eni.ipv6s.filter((ip) => !ips.includes(ip));
  giveBackIpv6s(state, vSwitchOf(state, eni), ips);
  await state.hooks.unassign?.(eni, { kind: "ipv6", values: ips });
}

/** How many prefixes of a reservation are assigned, and how many more it could give. */
export function reservationUsage(
  state: SimState,
  r: SimReservation,
): { assigned: number; available: number } {
  const vsw = state.vSwitches.get(r.vSwitchId)!;
  const len = PREFIX_LENGTH[r.family];
  const total = Number(sizeOf(r.net) >> BigInt((r.family === 4 ? 32 : 128) - len));
  let assigned = 0;
  for (const [p] of state.prefixOwner) {
    const net = parseNet(p, r.family);
    if (net && netWithin(net, r.net)) assigned++;
  }
  const blocked = [...blockedBySingles(vsw, r.family)].filter((b) => netContains(r.net, b)).length;
  return { assigned, available: Math.max(0, total - assigned - blocked) };
}
