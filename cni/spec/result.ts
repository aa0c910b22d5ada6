// The ADD result, built from what the daemon wired in the version the
// configuration asks for. Sources as in spec.ts ([spec] = the CNI SPEC.md of
// each version, section 5 "Result Types"; [skel] = libcni's types packages).

import { isObject } from "../../lib/json.js";
import { versionAtLeast } from "./spec.js";

/** What a successful ADD wired. */
export interface AddAnswer {
  ip: string;
  prefix: number;
  gateway: string;
  /** Dual stack: the pod's IPv6 address (a /128) and its gateway. */
  ip6?: string;
  gateway6?: string;
  podMac: string;
  hostIfname: string;
  hostMac: string;
  eniId?: string;
  mtu?: number;
}

const ipVersion = (address: string): string => (address.includes(":") ? "6" : "4");

/**
 * The ADD result in the requested version.
 * - 1.0.0 [spec]: interfaces {name, mac, sandbox}; ips {address, gateway,
 *   interface} — 1.0.0 removed ips[].version.
 * - 1.1.0 [spec]: as 1.0.0, and interfaces may carry `mtu` (new in 1.1.0,
 *   like `socketPath` and `pciID`, which a veth has not).
 * - 0.3.0, 0.3.1 and 0.4.0 [spec]: same shape as 1.0.0 but every ips entry
 *   carries "version": "4" or "6" (0.4.0 only added CHECK and prevResult on DEL).
 * A prevResult handed to an ADD is passed through with our interfaces
 * appended ([spec] ADD: "it MUST handle prevResult by either passing it
 * through, or modifying it appropriately").
 */
export function addResult(
  version: string,
  a: AddAnswer,
  ifname: string,
  netns: string,
  dns: Record<string, unknown>,
  prev?: Record<string, unknown>,
): Record<string, unknown> {
  const v1 = versionAtLeast(version, "1.0.0");
  const withMtu = versionAtLeast(version, "1.1.0") && typeof a.mtu === "number";
  const list = (x: unknown): Record<string, unknown>[] =>
    Array.isArray(x) ? x.filter((e): e is Record<string, unknown> => isObject(e)) : [];

  const prevIfaces = list(prev?.interfaces);
  const ips = list(prev?.ips).map((ip) => {
    const { version: _v, ...rest } = ip;
    if (v1) return rest;
    return { version: typeof ip.address === "string" ? ipVersion(ip.address) : "4", ...rest };
  });
  const routes = list(prev?.routes);
  const prevDns = isObject(prev?.dns) && Object.keys(prev.dns).length > 0 ? prev.dns : undefined;

  const host: Record<string, unknown> = { name: a.hostIfname, mac: a.hostMac };
  const pod: Record<string, unknown> = { name: ifname, mac: a.podMac };
  if (withMtu) {
    host.mtu = a.mtu;
    pod.mtu = a.mtu;
  }
  pod.sandbox = netns;
  const podIndex = prevIfaces.length + 1;
  const entry = (address: string, gateway: string): Record<string, unknown> => ({
    ...(v1 ? {} : { version: ipVersion(address) }),
    interface: podIndex,
    address,
    gateway,
  });
  const ours = [entry(`${a.ip}/${a.prefix}`, a.gateway)];
  const ourRoutes = [{ dst: "0.0.0.0/0", gw: a.gateway }];
  if (a.ip6 && a.gateway6) {
    ours.push(entry(`${a.ip6}/128`, a.gateway6));
    ourRoutes.push({ dst: "::/0", gw: a.gateway6 });
  }

  return {
    cniVersion: version,
    interfaces: [...prevIfaces, host, pod],
    ips: [...ips, ...ours],
    routes: [...routes, ...ourRoutes],
    dns: prevDns ?? dns,
  };
}
