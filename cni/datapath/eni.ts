// ENI bring-up: find the device by MAC in the node namespace, set it up with
// its MTU, and give it a routing table whose default route goes via the
// vSwitch gateway on that device.

import { ipBatch, ipJson, writeProcSys } from "../../lib/ip.js";
import { isIpv4, isMac } from "../../lib/net.js";
import { eniDevice, type Link } from "./kernel.js";
import { check } from "./names.js";

export interface EniDevice {
  device: string;
  ifindex: number;
  table: number;
}

export async function bringUpEni(
  ns: string,
  eni: { mac: string; gateway: string; mtu: number },
): Promise<EniDevice> {
  check(eni.mac, isMac, "ENI MAC");
  check(eni.gateway, isIpv4, "gateway");
  const found = eniDevice(await ipJson<Link[]>(ns, ["link", "show"]), eni.mac);
  if (!found) throw new Error(`no device with MAC ${eni.mac} in the node namespace yet`);
  const { link, table } = found;
  // Replies to pods arrive on the ENI from anywhere; strict reverse-path filtering would drop them.
  await writeProcSys(ns, { [`net/ipv4/conf/${link.ifname}/rp_filter`]: "0" });
  await ipBatch(ns, [
    `link set dev ${link.ifname} mtu ${eni.mtu} up`,
    `route replace ${eni.gateway}/32 dev ${link.ifname} scope link table ${table}`,
    `route replace default via ${eni.gateway} dev ${link.ifname} table ${table}`,
  ]);
  return { device: link.ifname, ifindex: link.ifindex, table };
}
