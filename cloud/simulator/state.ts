// The simulated region: one VPC, its vSwitches, the instances and their ENIs.
// Every change of the VPC's addressing goes through the functions here, so
// the invariants (an IP belongs to at most one ENI, IPs stay inside their
// vSwitch outside its reserved addresses, MACs are unique) hold in one place.
// A datapath can hook attach, detach, assign and unassign.
//
// Beyond single IPv4 addresses an ENI carries IPv4 prefixes (/28), IPv6
// addresses and IPv6 prefixes (/80). Prefixes come only from a vSwitch's CIDR
// reservations; single addresses never come from inside one. A prefix counts
// as one address toward the ENI's quota of its family.

import { randomBytes } from "node:crypto";
import { type Cidr, cidrContains, intToIp, ipToInt, isIpv4, parseCidr } from "../../lib/net.js";
import type { EniStatus, EniType, InstanceTypeLimits } from "../types.js";
import {
  type Family,
  formatNet,
  lastOf,
  type Net,
  netContains,
  netWithin,
  parseNet,
  sizeOf,
} from "./addr.js";
import { fail } from "./errors.js";
import type { World } from "./world.js";

export interface SimEni {
  id: string;
  status: EniStatus;
  type: EniType;
  instanceId: string;
  vpcId: string;
  vSwitchId: string;
  zoneId: string;
  mac: string;
  /** Private IPv4 addresses; the primary one first. */
  ips: string[];
  /** IPv4 prefixes (/28), canonical CIDR text. */
  ipv4Prefixes: string[];
  /** IPv6 addresses, canonical (RFC 5952) text. */
  ipv6s: string[];
  /** IPv6 prefixes (/80), canonical CIDR text. */
  ipv6Prefixes: string[];
  securityGroupIds: string[];
  tags: [string, string][];
  name: string;
  description: string;
  creationTime: string;
  /** Monotonic creation order, used for stable paging. */
  seq: number;
}

export interface SimVSwitch {
  id: string;
  zoneId: string;
  cidrBlock: string;
  cidr: Cidr;
  used: Set<number>;
  cursor: number;
  creationTime: string;
  /** The vSwitch's IPv6 /64, when it has one. */
  ipv6?: SimVSwitchV6;
  /** Its reserved CIDR blocks (both families), by id. */
  reservations: Map<string, SimReservation>;
}

export interface SimVSwitchV6 {
  cidrBlock: string;
  net: Net;
  /** Single IPv6 addresses in use. */
  used: Set<bigint>;
}

export type ReservationStatus = "Assigning" | "Assigned" | "Releasing";

/** A reserved CIDR block of a vSwitch (type prefix): where IP prefixes come from. */
export interface SimReservation {
  id: string;
  vSwitchId: string;
  family: Family;
  net: Net;
  cidrBlock: string;
  name: string;
  description: string;
  status: ReservationStatus;
  creationTime: string;
  seq: number;
  tags: [string, string][];
}

/** What one Assign or Unassign changed: addresses of one kind (a call never mixes kinds). */
export type AddressKind = "ipv4" | "ipv4Prefix" | "ipv6" | "ipv6Prefix";
export interface Addresses {
  kind: AddressKind;
  values: string[];
}

export interface SimInstance {
  id: string;
  type: InstanceTypeLimits;
  zoneId: string;
  vSwitchId: string;
  netns: string;
  securityGroupIds: string[];
  primaryEniId: string;
}

/** What a datapath needs to know when the VPC changes. Hooks are awaited. */
export interface DatapathHooks {
  attach?(eni: SimEni, instance: SimInstance): Promise<void>;
  detach?(eni: SimEni, instance: SimInstance): Promise<void>;
  assign?(eni: SimEni, added: Addresses): Promise<void>;
  unassign?(eni: SimEni, removed: Addresses): Promise<void>;
}

export interface Clock {
  now(): number;
}

export interface SimState {
  regionId: string;
  vpcId: string;
  vpcCidr: string;
  /** "" when the VPC has no IPv6. */
  vpcIpv6Cidr: string;
  vSwitches: Map<string, SimVSwitch>;
  instances: Map<string, SimInstance>;
  instanceTypes: Map<string, InstanceTypeLimits & { family: string; cpu: number; memory: number }>;
  securityGroups: Set<string>;
  enis: Map<string, SimEni>;
  ipOwner: Map<string, string>;
  /** IPv6 address → ENI id. */
  ipv6Owner: Map<string, string>;
  /** Prefix (either family, canonical CIDR) → ENI id. */
  prefixOwner: Map<string, string>;
  macs: Set<string>;
  hooks: DatapathHooks;
  clock: Clock;
  seq: number;
  timers: Set<NodeJS.Timeout>;
  /** Pending attach/detach transitions, so they can be awaited by tests and shut down. */
  transitions: Map<string, Promise<void>>;
}

/** Available ENIs may carry at most this many secondary IPs (the documented 49). */
export const MAX_SECONDARY_IPS_UNATTACHED = 49;
/** Available ENIs may carry at most this many IPv6 addresses (documented for AssignIpv6Addresses). */
export const MAX_IPV6_UNATTACHED = 10;
/** The prefix lengths ECS assigns. */
export const PREFIX_LENGTH: Record<Family, number> = { 4: 28, 6: 80 };

export function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export function randomId(prefix: string, n = 20): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(n);
  let s = prefix;
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

function newMac(state: SimState): string {
  for (;;) {
    const b = randomBytes(3);
    const mac = `00:16:3e:${[...b].map((x) => x.toString(16).padStart(2, "0")).join(":")}`;
    if (!state.macs.has(mac)) {
      state.macs.add(mac);
      return mac;
    }
  }
}

/** Usable host addresses: all but the first and the last three. */
export function usableRange(c: Cidr): { first: number; last: number; count: number } {
  const first = c.base + 1;
  const last = c.base + c.size - 4;
  return { first, last, count: Math.max(0, last - first + 1) };
}

export function gatewayOf(c: Cidr): string {
  return intToIp(c.base + c.size - 3);
}

/** Usable IPv6 addresses of a /64: all but the first and the last nine (the gateway is the ninth-to-last). */
export function usableRange6(n: Net): { first: bigint; last: bigint } {
  return { first: n.base + 1n, last: lastOf(n) - 9n };
}

export function gateway6Of(n: Net): bigint {
  return lastOf(n) - 8n;
}

/** Whether an address (IPv4 as a number, or a bigint of the family) lies in one of the vSwitch's reserved blocks. */
export function inReservation(v: SimVSwitch, n: number | bigint, family: Family = 4): boolean {
  if (v.reservations.size === 0) return false;
  const x = BigInt(n);
  for (const r of v.reservations.values()) if (r.family === family && netContains(r.net, x)) return true;
  return false;
}

/** Free addresses held back by IPv4 reservations: single IPs never come from them. */
function reservedFree(v: SimVSwitch): number {
  let free = 0;
  for (const r of v.reservations.values()) {
    if (r.family !== 4) continue;
    free += Number(sizeOf(r.net));
    for (const n of v.used) if (netContains(r.net, BigInt(n))) free--;
  }
  return free;
}

export function availableIps(v: SimVSwitch): number {
  return usableRange(v.cidr).count - v.used.size - (v.reservations.size ? reservedFree(v) : 0);
}

export function createState(world: World, clock: Clock = { now: () => Date.now() }): SimState {
  const state: SimState = {
    regionId: world.regionId,
    vpcId: world.vpc.vpcId,
    vpcCidr: world.vpc.cidr,
    vpcIpv6Cidr: world.vpc.ipv6Cidr,
    vSwitches: new Map(),
    instances: new Map(),
    instanceTypes: new Map(),
    securityGroups: new Set(world.securityGroups),
    enis: new Map(),
    ipOwner: new Map(),
    ipv6Owner: new Map(),
    prefixOwner: new Map(),
    macs: new Set(),
    hooks: {},
    clock,
    seq: 0,
    timers: new Set(),
    transitions: new Map(),
  };
  const created = isoSeconds(clock.now());
  for (const s of world.vSwitches) {
    const cidr = parseCidr(s.cidr);
    state.vSwitches.set(s.vSwitchId, {
      id: s.vSwitchId,
      zoneId: s.zoneId,
      cidrBlock: s.cidr,
      cidr,
      used: new Set(),
      cursor: usableRange(cidr).first,
      creationTime: created,
      ...(s.ipv6Cidr ? { ipv6: vSwitchV6(s.ipv6Cidr) } : {}),
      reservations: new Map(),
    });
  }
  for (const t of world.instanceTypes) {
    state.instanceTypes.set(t.instanceTypeId, {
      instanceTypeId: t.instanceTypeId,
      eniQuantity: t.eniQuantity,
      eniPrivateIpAddressQuantity: t.eniPrivateIpAddressQuantity,
      eniIpv6AddressQuantity: t.eniIpv6AddressQuantity,
      family: t.instanceTypeFamily || t.instanceTypeId.split(".").slice(0, 2).join("."),
      cpu: t.cpuCoreCount,
      memory: t.memorySize,
    });
  }
  for (const i of world.instances) {
    const type = state.instanceTypes.get(i.instanceType)!;
    const sgs = i.securityGroupIds.length ? i.securityGroupIds : [world.securityGroups[0]!];
    const eni = createEni(state, {
      vSwitchId: i.vSwitchId,
      securityGroupIds: sgs,
      tags: [],
      secondaryCount: 0,
      // The world's primaryIp is the primary ENI's primary address, not a secondary one.
      explicitIps: [],
      ...(i.primaryIp ? { primaryIp: i.primaryIp } : {}),
      name: "",
      description: "",
      type: "Primary",
    });
    eni.status = "InUse";
    eni.instanceId = i.instanceId;
    state.instances.set(i.instanceId, {
      id: i.instanceId,
      type,
      zoneId: i.zoneId,
      vSwitchId: i.vSwitchId,
      netns: i.netns,
      securityGroupIds: sgs,
      primaryEniId: eni.id,
    });
  }
  return state;
}

function vSwitchV6(cidrBlock: string): SimVSwitchV6 {
  const net = parseNet(cidrBlock, 6);
  if (!net) throw new Error(`invalid IPv6 CIDR ${cidrBlock}`);
  return { cidrBlock: formatNet(net), net, used: new Set() };
}

/** Take `count` free addresses from a vSwitch (next-fit, skipping reserved blocks), or fail with IpNotEnough. */
export function takeIps(vsw: SimVSwitch, count: number, explicit: string[] = []): string[] {
  if (availableIps(vsw) < count + explicit.length)
    fail("InvalidVSwitchId.IpNotEnough", `The specified VSwitch "${vsw.id}" has not enough IpAddress.`);
  const range = usableRange(vsw.cidr);
  const out: string[] = [];
  const seen = new Set<number>();
  for (const ip of explicit) {
    if (!isIpv4(ip)) fail("InvalidIp.Address");
    const n = ipToInt(ip);
    if (!cidrContains(vsw.cidr, n) || n < range.first || n > range.last) fail("InvalidIp.Address");
    if (inReservation(vsw, n))
      fail("InvalidIp.Address", `The specified IP address ${ip} is in a reserved CIDR block of the VSwitch.`);
    if (vsw.used.has(n) || seen.has(n)) fail("InvalidPrivateIpAddress.Duplicated");
    seen.add(n);
  }
  for (const n of seen) {
    vsw.used.add(n);
    out.push(intToIp(n));
  }
  let cursor = vsw.cursor;
  while (out.length < count + explicit.length) {
    if (cursor > range.last) cursor = range.first;
    if (!vsw.used.has(cursor) && !inReservation(vsw, cursor)) {
      vsw.used.add(cursor);
      out.push(intToIp(cursor));
    }
    cursor++;
  }
  vsw.cursor = cursor;
  return out;
}

function giveBackIps(state: SimState, vsw: SimVSwitch, ips: string[]): void {
  for (const ip of ips) {
    vsw.used.delete(ipToInt(ip));
    state.ipOwner.delete(ip);
  }
}

/** Frees IPv6 addresses (canonical text) of a vSwitch. */
export function giveBackIpv6s(state: SimState, vsw: SimVSwitch, ips: string[]): void {
  for (const ip of ips) {
    const net = parseNet(`${ip}/128`, 6);
    if (net) vsw.ipv6?.used.delete(net.base);
    state.ipv6Owner.delete(ip);
  }
}

export interface NewEni {
  vSwitchId: string;
  securityGroupIds: string[];
  tags: [string, string][];
  secondaryCount: number;
  explicitIps: string[];
  primaryIp?: string;
  name: string;
  description: string;
  type: EniType;
}

export function createEni(state: SimState, req: NewEni): SimEni {
  const vsw = state.vSwitches.get(req.vSwitchId);
  if (!vsw) return fail("InvalidVSwitchId.NotFound");
  const total = 1 + req.secondaryCount + req.explicitIps.length;
  if (availableIps(vsw) < total)
    fail("InvalidVSwitchId.IpNotEnough", `The specified VSwitch "${vsw.id}" has not enough IpAddress.`);
  const primary = req.primaryIp ? takeIps(vsw, 0, [req.primaryIp]) : takeIps(vsw, 1);
  let ips: string[];
  try {
    ips = [...primary, ...takeIps(vsw, req.secondaryCount, req.explicitIps)];
  } catch (e) {
    giveBackIps(state, vsw, primary);
    throw e;
  }
  const eni: SimEni = {
    id: randomId("eni-"),
    status: "Available",
    type: req.type,
    instanceId: "",
    vpcId: state.vpcId,
    vSwitchId: vsw.id,
    zoneId: vsw.zoneId,
    mac: newMac(state),
    ips,
    ipv4Prefixes: [],
    ipv6s: [],
    ipv6Prefixes: [],
    securityGroupIds: [...req.securityGroupIds],
    tags: req.tags.map(([k, v]) => [k, v]),
    name: req.name,
    description: req.description,
    creationTime: isoSeconds(state.clock.now()),
    seq: state.seq++,
  };
  for (const ip of ips) state.ipOwner.set(ip, eni.id);
  state.enis.set(eni.id, eni);
  return eni;
}

export function getEni(state: SimState, id: string): SimEni {
  const eni = state.enis.get(id);
  if (!eni) return fail("InvalidEniId.NotFound");
  return eni;
}

export function getInstance(state: SimState, id: string): SimInstance {
  const inst = state.instances.get(id);
  if (!inst) return fail("InvalidEcsId.NotFound");
  return inst;
}

/** ENIs attached or attaching to an instance, the primary included. */
export function enisOf(state: SimState, instanceId: string): SimEni[] {
  return [...state.enis.values()].filter((e) => e.instanceId === instanceId);
}

/** The most private IPv4 addresses (prefixes count one each) the ENI may carry where it is now. */
export function ipQuota(state: SimState, eni: SimEni): number {
  const inst = eni.instanceId ? state.instances.get(eni.instanceId) : undefined;
  return inst ? inst.type.eniPrivateIpAddressQuantity : MAX_SECONDARY_IPS_UNATTACHED + 1;
}

/** The most IPv6 addresses (prefixes count one each) the ENI may carry where it is now. */
export function ipv6Quota(state: SimState, eni: SimEni): number {
  const inst = eni.instanceId ? state.instances.get(eni.instanceId) : undefined;
  return inst ? inst.type.eniIpv6AddressQuantity : MAX_IPV6_UNATTACHED;
}

/** What counts toward each family's quota: addresses plus prefixes. */
export const ipv4Count = (eni: SimEni): number => eni.ips.length + eni.ipv4Prefixes.length;
export const ipv6Count = (eni: SimEni): number => eni.ipv6s.length + eni.ipv6Prefixes.length;

export function schedule(state: SimState, key: string, delayMs: number, work: () => Promise<void>): void {
  const done = new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      state.timers.delete(t);
      work()
        .catch(() => {})
        .finally(() => {
          state.transitions.delete(key);
          resolve();
        });
    }, delayMs);
    state.timers.add(t);
  });
  state.transitions.set(key, done);
}

export function attachEni(state: SimState, eni: SimEni, inst: SimInstance, delayMs: number): void {
  if (eni.type === "Primary") fail("InvalidOperation.InvalidEniType");
  if (eni.status !== "Available") fail("InvalidOperation.InvalidEniState");
  if (eni.zoneId !== inst.zoneId) fail("InvalidOperation.AvailabilityZoneMismatch");
  if (enisOf(state, inst.id).length >= inst.type.eniQuantity) fail("EniPerInstanceLimitExceeded");
  if (ipv4Count(eni) > inst.type.eniPrivateIpAddressQuantity) fail("InvalidOperation.Ipv4CountExceeded");
  if (ipv6Count(eni) > 0 && inst.type.eniIpv6AddressQuantity === 0) fail("InvalidOperation.Ipv6NotSupport");
  if (ipv6Count(eni) > inst.type.eniIpv6AddressQuantity) fail("InvalidOperation.Ipv6CountExceeded");
  eni.status = "Attaching";
  eni.instanceId = inst.id;
  schedule(state, eni.id, delayMs, async () => {
    if (state.enis.get(eni.id) !== eni || eni.status !== "Attaching") return;
    await state.hooks.attach?.(eni, inst);
    eni.status = "InUse";
  });
}

export function detachEni(state: SimState, eni: SimEni, inst: SimInstance, delayMs: number): void {
  if (eni.type === "Primary") fail("InvalidOperation.DetachPrimaryEniNotAllowed");
  if (eni.status !== "InUse" || eni.instanceId !== inst.id) fail("InvalidOperation.InvalidEniState");
  eni.status = "Detaching";
  schedule(state, eni.id, delayMs, async () => {
    if (state.enis.get(eni.id) !== eni || eni.status !== "Detaching") return;
    await state.hooks.detach?.(eni, inst);
    eni.status = "Available";
    eni.instanceId = "";
  });
}

export function deleteEni(state: SimState, eni: SimEni): void {
  if (eni.type === "Primary") fail("InvalidOperation.InvalidEniType");
  if (eni.status !== "Available") fail("InvalidOperation.InvalidEniState");
  const vsw = state.vSwitches.get(eni.vSwitchId)!;
  giveBackIps(state, vsw, eni.ips);
  giveBackIpv6s(state, vsw, eni.ipv6s);
  for (const p of [...eni.ipv4Prefixes, ...eni.ipv6Prefixes]) state.prefixOwner.delete(p);
  state.macs.delete(eni.mac);
  state.enis.delete(eni.id);
}

export function requireIpState(eni: SimEni): void {
  if (eni.status !== "Available" && eni.status !== "InUse") fail("InvalidOperation.InvalidEniState");
}

export async function assignIps(
  state: SimState,
  eni: SimEni,
  count: number,
  explicit: string[],
): Promise<string[]> {
  requireIpState(eni);
  if (ipv4Count(eni) + count + explicit.length > ipQuota(state, eni))
    fail("InvalidOperation.Ipv4CountExceeded");
  const vsw = state.vSwitches.get(eni.vSwitchId)!;
  const ips = takeIps(vsw, count, explicit);
  for (const ip of ips) state.ipOwner.set(ip, eni.id);
  eni.ips.push(...ips);
  await state.hooks.assign?.(eni, { kind: "ipv4", values: ips });
  return ips;
}

export async function unassignIps(state: SimState, eni: SimEni, ips: string[]): Promise<void> {
  requireIpState(eni);
  for (const ip of ips) {
    const i = eni.ips.indexOf(ip);
    if (i <= 0) fail("InvalidIp.IpUnassigned", `The specified IP address ${ip} is not assigned to the ENI.`);
  }
  eni.ips = eni.ips.filter((ip) => !ips.includes(ip));
  giveBackIps(state, state.vSwitches.get(eni.vSwitchId)!, ips);
  await state.hooks.unassign?.(eni, { kind: "ipv4", values: ips });
}

export function stopState(state: SimState): void {
  for (const t of state.timers) clearTimeout(t);
  state.timers.clear();
  state.transitions.clear();
}

/** Check the VPC's invariants; returns a list of violations (empty when sound). */
export function checkInvariants(state: SimState): string[] {
  const problems: string[] = [];
  const owner = new Map<string, string>();
  const macs = new Set<string>();
  const perInstance = new Map<string, number>();
  for (const eni of state.enis.values()) {
    if (macs.has(eni.mac)) problems.push(`MAC ${eni.mac} is used twice`);
    macs.add(eni.mac);
    const vsw = state.vSwitches.get(eni.vSwitchId);
    if (!vsw) {
      problems.push(`${eni.id} is in unknown vSwitch ${eni.vSwitchId}`);
      continue;
    }
    const range = usableRange(vsw.cidr);
    for (const ip of eni.ips) {
      const prev = owner.get(ip);
      if (prev) problems.push(`${ip} is on ${prev} and ${eni.id}`);
      owner.set(ip, eni.id);
      const n = ipToInt(ip);
      if (n < range.first || n > range.last)
        problems.push(`${ip} of ${eni.id} is outside the usable range of ${vsw.id}`);
      if (!vsw.used.has(n)) problems.push(`${ip} of ${eni.id} is not marked used in ${vsw.id}`);
      if (state.ipOwner.get(ip) !== eni.id) problems.push(`${ip} owner index is wrong`);
    }
    if (eni.instanceId) perInstance.set(eni.instanceId, (perInstance.get(eni.instanceId) ?? 0) + 1);
    problems.push(
      ...quotaProblems(state, eni),
      ...ipv6Problems(state, eni, vsw),
      ...prefixProblems(state, eni, vsw),
    );
  }
  for (const [id, n] of perInstance) {
    const inst = state.instances.get(id);
    if (inst && n > inst.type.eniQuantity)
      problems.push(`${id} has ${n} ENIs, above ${inst.type.eniQuantity}`);
  }
  for (const vsw of state.vSwitches.values()) {
    const owned = [...vsw.used].filter((n) => owner.has(intToIp(n))).length;
    if (owned !== vsw.used.size) problems.push(`${vsw.id} has ${vsw.used.size - owned} leaked addresses`);
  }
  if (owner.size !== state.ipOwner.size) problems.push("owner index has stale entries");
  problems.push(...indexProblems(state));
  return problems;
}

function quotaProblems(state: SimState, eni: SimEni): string[] {
  const out: string[] = [];
  const inst = eni.instanceId ? state.instances.get(eni.instanceId) : undefined;
  const where = inst ? `the quota of ${inst.type.instanceTypeId}` : "the unattached limit";
  if (ipv4Count(eni) > ipQuota(state, eni))
    out.push(`${eni.id} has ${ipv4Count(eni)} IPv4 addresses and prefixes, above ${where}`);
  if (ipv6Count(eni) > ipv6Quota(state, eni))
    out.push(`${eni.id} has ${ipv6Count(eni)} IPv6 addresses and prefixes, above ${where}`);
  return out;
}

function ipv6Problems(state: SimState, eni: SimEni, vsw: SimVSwitch): string[] {
  const out: string[] = [];
  if (eni.ipv6s.length > 0 && !vsw.ipv6) out.push(`${eni.id} has IPv6 addresses in ${vsw.id} without IPv6`);
  for (const ip of eni.ipv6s) {
    const v = parseNet(`${ip}/128`, 6)?.base;
    if (state.ipv6Owner.get(ip) !== eni.id) out.push(`${ip} IPv6 owner index is wrong`);
    if (v === undefined || !vsw.ipv6) continue;
    const range = usableRange6(vsw.ipv6.net);
    if (v < range.first || v > range.last)
      out.push(`${ip} of ${eni.id} is outside the usable range of ${vsw.id}`);
    if (!vsw.ipv6.used.has(v)) out.push(`${ip} of ${eni.id} is not marked used in ${vsw.id}`);
    if (inReservation(vsw, v, 6)) out.push(`${ip} of ${eni.id} is inside a reserved CIDR block`);
  }
  return out;
}

/** Problems of one prefix of an ENI: owner index, length, origin (a reservation), no assigned address inside. */
function prefixProblem(state: SimState, eni: SimEni, vsw: SimVSwitch, p: string, family: Family): string[] {
  const out: string[] = [];
  const net = parseNet(p, family);
  if (state.prefixOwner.get(p) !== eni.id) out.push(`prefix ${p} owner index is wrong`);
  if (!net || net.prefix !== PREFIX_LENGTH[family]) return [...out, `${p} of ${eni.id} is not a prefix`];
  if (![...vsw.reservations.values()].some((r) => r.family === family && netWithin(net, r.net)))
    out.push(`prefix ${p} of ${eni.id} is outside every reserved CIDR block of ${vsw.id}`);
  const singles = family === 4 ? [...vsw.used].map(BigInt) : [...(vsw.ipv6?.used ?? [])];
  if (singles.some((v) => netContains(net, v)))
    out.push(`prefix ${p} of ${eni.id} holds an assigned address`);
  return out;
}

function prefixProblems(state: SimState, eni: SimEni, vsw: SimVSwitch): string[] {
  return [
    ...eni.ipv4Prefixes.flatMap((p) => prefixProblem(state, eni, vsw, p, 4)),
    ...eni.ipv6Prefixes.flatMap((p) => prefixProblem(state, eni, vsw, p, 6)),
  ];
}

/** Every IPv6 address and prefix in the indexes belongs to the ENI the index names. */
function indexProblems(state: SimState): string[] {
  const out: string[] = [];
  for (const [ip, id] of state.ipv6Owner)
    if (!state.enis.get(id)?.ipv6s.includes(ip)) out.push(`IPv6 owner index has a stale ${ip}`);
  for (const [p, id] of state.prefixOwner) {
    const e = state.enis.get(id);
    if (!e || (!e.ipv4Prefixes.includes(p) && !e.ipv6Prefixes.includes(p)))
      out.push(`prefix owner index has a stale ${p}`);
  }
  for (const vsw of state.vSwitches.values()) {
    const held = [...state.enis.values()].filter((e) => e.vSwitchId === vsw.id).flatMap((e) => e.ipv6s);
    if (vsw.ipv6 && vsw.ipv6.used.size !== held.length) out.push(`${vsw.id} has leaked IPv6 addresses`);
  }
  return out;
}
