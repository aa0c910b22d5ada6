// Address arithmetic for both families on bigints: what IPv6 addresses, IPv4
// and IPv6 prefixes and vSwitch CIDR reservations need. Strict parsing (no
// zones, no embedded IPv4, no host bits in a CIDR) and one canonical text
// form per value (dotted quad; RFC 5952 for IPv6), so two spellings of an
// address never become two addresses.

import { IPV4 } from "../../lib/net.js";

export type Family = 4 | 6;

export interface Net {
  family: Family;
  base: bigint;
  prefix: number;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

export const bitsOf = (f: Family): number => (f === 4 ? 32 : 128);

export function sizeOf(n: Net): bigint {
  return 1n << BigInt(bitsOf(n.family) - n.prefix);
}

export function lastOf(n: Net): bigint {
  return n.base + sizeOf(n) - 1n;
}

function parseV4(s: string): bigint | undefined {
  if (!IPV4.test(s)) return undefined;
  return s.split(".").reduce((acc, p) => acc * 256n + BigInt(p), 0n);
}

function groups(part: string): number[] | undefined {
  if (part === "") return [];
  const out: number[] = [];
  for (const g of part.split(":")) {
    if (!HEX_GROUP.test(g)) return undefined;
    out.push(Number.parseInt(g, 16));
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  if (s.length > 39 || s.split("::").length > 2) return undefined;
  const [head = "", tail] = s.split("::");
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  if (!left || !right) return undefined;
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const all = [...left, ...Array<number>(tail === undefined ? 0 : missing).fill(0), ...right];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** An address of the family, or undefined when the text is not one. */
export function parseAddr(s: string, family: Family): bigint | undefined {
  return family === 4 ? parseV4(s) : parseV6(s);
}

function formatV6(v: bigint): string {
  const gs = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (≥ 2) of zero groups, the first one on a tie.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && gs[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = gs.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(":");
  return `${hex.slice(0, best.at).join(":")}::${hex.slice(best.at + best.len).join(":")}`;
}

export function formatAddr(v: bigint, family: Family): string {
  if (family === 6) return formatV6(v);
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join(".");
}

/** The canonical text of an address, or undefined when it is not one of the family. */
export function canonicalAddr(s: string, family: Family): string | undefined {
  const v = parseAddr(s, family);
  return v === undefined ? undefined : formatAddr(v, family);
}

/** A CIDR of the family without host bits, or undefined. */
export function parseNet(s: string, family: Family): Net | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const base = parseAddr(m[1]!, family);
  const prefix = Number(m[2]);
  if (base === undefined || prefix > bitsOf(family)) return undefined;
  const net: Net = { family, base, prefix };
  return base % sizeOf(net) === 0n ? net : undefined;
}

export function formatNet(n: Net): string {
  return `${formatAddr(n.base, n.family)}/${n.prefix}`;
}

export function netContains(n: Net, v: bigint): boolean {
  return v >= n.base && v <= lastOf(n);
}

/** Whether `inner` lies entirely inside `outer` (same family). */
export function netWithin(inner: Net, outer: Net): boolean {
  return inner.family === outer.family && netContains(outer, inner.base) && netContains(outer, lastOf(inner));
}

export function netsOverlap(a: Net, b: Net): boolean {
  return a.family === b.family && a.base <= lastOf(b) && b.base <= lastOf(a);
}

/** The aligned blocks of length `prefix` inside `n`, in address order. */
export function* blocksOf(n: Net, prefix: number): Generator<Net> {
  const step = 1n << BigInt(bitsOf(n.family) - prefix);
  for (let b = n.base; b <= lastOf(n); b += step) yield { family: n.family, base: b, prefix };
}

/** The block of length `prefix` that holds `v`. */
export function blockOf(v: bigint, family: Family, prefix: number): Net {
  const size = 1n << BigInt(bitsOf(family) - prefix);
  return { family, base: v - (v % size), prefix };
}
