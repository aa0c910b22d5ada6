// Network identifiers, each rule stated once: IPv4 addresses and CIDR
// arithmetic (on unsigned 32-bit integers), MAC addresses and interface
// names. Imports nothing, so the standalone CNI plugin may use it too.

/** A dotted-quad IPv4 address without leading zeros. */
export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A MAC address as the kernel and the metadata service print it: lower case, colon-separated. */
export const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * The interface names eniway creates and accepts (the pod's CNI_IFNAME, host
 * veths, ENI devices): 1 to 15 letters, digits, '_', '.' or '-', not "." or
 * "..". Narrower than the kernel's rule (no '/', ':' or white space), so that
 * every such name is also one safe token on an `ip -batch` line.
 */
export const IFNAME = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,15}$/;

/**
 * A network namespace path (CNI_NETNS, a node's namespace): absolute, at most
 * 4096 bytes, no control characters, so it is one safe argument and one line.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: namespace paths exclude control characters
export const NETNS_PATH = /^\/[^\x00-\x1f]{1,4095}$/;

/** A network namespace name as `ip netns` keeps it (a file in /run/netns). */
export const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The name in a path `ip netns` manages (/var/run/netns/NAME or /run/netns/NAME), else null. */
export function netnsNameOf(path: string): string | null {
  const m = /^\/(?:var\/)?run\/netns\/([^/]+)$/.exec(path);
  return m?.[1] && NETNS_NAME.test(m[1]) ? m[1] : null;
}

export const isIpv4 = (s: string): boolean => IPV4.test(s);

/**
 * An IPv6 address in its canonical text (RFC 5952: lower case, the longest
 * run of zero groups compressed), or null when `s` is not one (no zone, no prefix).
 */
export function canonicalIpv6(s: string): string | null {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(s) || !s.includes(":")) return null;
  try {
    return new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
}

/** An IPv6 address in canonical text: what eniway stores, compares and hands to the kernel. */
export const isIpv6 = (s: string): boolean => canonicalIpv6(s) === s;
export const isMac = (s: string): boolean => MAC.test(s);
export const isIfname = (s: string): boolean => IFNAME.test(s);

export interface Cidr {
  base: number; // network address
  prefix: number;
  size: number; // number of addresses
}

export function ipToInt(s: string): number {
  if (!isIpv4(s)) throw new Error(`invalid IPv4 address: ${JSON.stringify(s)}`);
  return s.split(".").reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function parseCidr(s: string): Cidr {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) throw new Error(`invalid CIDR: ${JSON.stringify(s)}`);
  const prefix = Number(m[2]);
  const size = 2 ** (32 - prefix);
  const ip = ipToInt(m[1]!);
  const base = ip - (ip % size);
  if (base !== ip) throw new Error(`invalid CIDR: ${JSON.stringify(s)} has host bits set`);
  return { base, prefix, size };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + c.size;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

export function prefixToNetmask(prefix: number): string {
  return intToIp(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** An IPv4 prefix as ENIs carry them: a /28, 16 addresses, every one a pod's IP. */
export const IPV4_PREFIX_LENGTH = 28;
export const IPV4_PREFIX_SIZE = 2 ** (32 - IPV4_PREFIX_LENGTH);

/** A /28 without host bits set, e.g. 10.0.1.64/28. */
export function isIpv4Prefix(s: string): boolean {
  const m = /^([0-9.]+)\/28$/.exec(s);
  return m !== null && isIpv4(m[1]!) && ipToInt(m[1]!) % IPV4_PREFIX_SIZE === 0;
}

/** The 16 addresses of a /28, lowest first. */
export function ipv4PrefixAddresses(prefix: string): string[] {
  if (!isIpv4Prefix(prefix)) throw new Error(`invalid IPv4 prefix: ${JSON.stringify(prefix)}`);
  const base = ipToInt(prefix.slice(0, prefix.indexOf("/")));
  return Array.from({ length: IPV4_PREFIX_SIZE }, (_, i) => intToIp(base + i));
}
