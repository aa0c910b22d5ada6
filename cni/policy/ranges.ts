// IPv4 address ranges as inclusive [first, last] integers: what an ipBlock
// with its excepts and a set of pod addresses come to, merged so that nft's
// interval sets get no overlapping elements.

import { intToIp, ipToInt, isIpv4 } from "../../lib/net.js";

export type Range = readonly [first: number, last: number];

/** A CIDR's addresses (host bits ignored, as the API server accepts them); null if it is not IPv4. */
export function cidrRange(cidr: string): Range | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) return null;
  const size = 2 ** (32 - Number(m[2]));
  const base = ipToInt(m[1]!) - (ipToInt(m[1]!) % size);
  return [base, base + size - 1];
}

/** Sorted, with overlapping and adjacent ranges joined. */
export function merge(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The addresses of `from` that are in none of `minus`. */
export function subtract(from: readonly Range[], minus: readonly Range[]): Range[] {
  let out = merge(from);
  for (const [a, b] of merge(minus)) {
    out = out.flatMap(([x, y]): Range[] => {
      if (b < x || a > y) return [[x, y]];
      const keep: Range[] = [];
      if (x < a) keep.push([x, a - 1]);
      if (y > b) keep.push([b + 1, y]);
      return keep;
    });
  }
  return out;
}

export const single = (ip: string): Range => [ipToInt(ip), ipToInt(ip)];

export function contains(ranges: readonly Range[], ip: string): boolean {
  const n = ipToInt(ip);
  return ranges.some(([a, b]) => n >= a && n <= b);
}

/** nft's element syntax: an address, or first-last. */
export function formatRange([a, b]: Range): string {
  return a === b ? intToIp(a) : `${intToIp(a)}-${intToIp(b)}`;
}
