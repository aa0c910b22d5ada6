// ENI bring-up: find the device by MAC in the node namespace, set it up with
// its MTU, and give it a routing table whose default route goes via the
// vSwitch gateway on that device.

import { ipBatch, ipJson, sysctl } from "./ip.js";
import { check, ENI_TABLE_BASE, IPV4, MAC } from "./names.js";

export interface EniDevice {
  device: string;
  ifindex: number;
  table: number;
}

interface LinkJson {
  ifindex: number;
  ifname: string;
  address?: string;
  flags?: string[];
  mtu?: number;
}

export async function findByMac(
  ns: string,
  mac: string,
): Promise<{ ifname: string; ifindex: number; up: boolean } | null> {
  const links = await ipJson<LinkJson[]>(ns, ["link", "show"]);
  const l = links.find((x) => x.address?.toLowerCase() === mac.toLowerCase());
  return l ? { ifname: l.ifname, ifindex: l.ifindex, up: l.flags?.includes("UP") ?? false } : null;
}

export async function bringUpEni(
  ns: string,
  eni: { mac: string; gateway: string; mtu: number },
): Promise<EniDevice> {
  check(eni.mac, MAC, "ENI MAC");
  check(eni.gateway, IPV4, "gateway");
  const link = await findByMac(ns, eni.mac);
  if (!link) throw new Error(`no device with MAC ${eni.mac} in the node namespace yet`);
  const table = ENI_TABLE_BASE + link.ifindex;
  // Replies to pods arrive on the ENI from anywhere; strict reverse-path filtering would drop them.
  await sysctl(ns, { [`net.ipv4.conf.${link.ifname}.rp_filter`]: "0" });
  await ipBatch(ns, [
    `link set dev ${link.ifname} mtu ${eni.mtu} up`,
    `route replace ${eni.gateway}/32 dev ${link.ifname} scope link table ${table}`,
    `route replace default via ${eni.gateway} dev ${link.ifname} table ${table}`,
  ]);
  return { device: link.ifname, ifindex: link.ifindex, table };
}

/** Is the ENI's device up with its table's default route? */
export async function checkEni(ns: string, eni: { mac: string; gateway: string }): Promise<string[]> {
  const link = await findByMac(ns, eni.mac);
  if (!link) return [`no device with MAC ${eni.mac}`];
  const problems: string[] = [];
  if (!link.up) problems.push(`${link.ifname} is down`);
  const table = ENI_TABLE_BASE + link.ifindex;
  const routes = await ipJson<{ dst: string; gateway?: string; dev?: string }[]>(ns, [
    "route",
    "show",
    "table",
    String(table),
  ]);
  if (!routes.some((r) => r.dst === "default" && r.gateway === eni.gateway && r.dev === link.ifname))
    problems.push(`table ${table} has no default route via ${eni.gateway} dev ${link.ifname}`);
  return problems;
}
