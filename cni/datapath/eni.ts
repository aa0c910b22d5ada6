// ENI bring-up: find the device by MAC in the node namespace, set it up with
// its MTU, and give it a routing table whose default route goes via the
// vSwitch gateway on that device.

import { ipBatch, ipJson, writeProcSys } from "../../lib/ip.js";
import { isIpv4, isIpv6, isMac } from "../../lib/net.js";
import { eniDevice, type Link } from "./kernel.js";
import { check } from "./names.js";

export interface EniDevice {
  device: string;
  ifindex: number;
  table: number;
}

/**
 * With `gateway6` (dual stack) the device also gets IPv6 (without duplicate
 * address detection, so its link-local address reaches the gateway at once)
 * and its table an IPv6 default route via that gateway.
 */
export async function bringUpEni(
  ns: string,
  eni: { mac: string; gateway: string; gateway6?: string; mtu: number },
): Promise<EniDevice> {
  check(eni.mac, isMac, "ENI MAC");
  check(eni.gateway, isIpv4, "gateway");
  if (eni.gateway6) check(eni.gateway6, isIpv6, "IPv6 gateway");
  const found = eniDevice(await ipJson<Link[]>(ns, ["link", "show"]), eni.mac);
  if (!found) throw new Error(`no device with MAC ${eni.mac} in the node namespace yet`);
  const { link, table } = found;
  // Replies to pods arrive on the ENI from anywhere; strict reverse-path filtering would drop them.
  await writeProcSys(ns, { [`net/ipv4/conf/${link.ifname}/rp_filter`]: "0" });
  // No DAD, so its link-local address reaches the IPv6 gateway at once. A device attached after
  // the node's settings (NODE_SYSCTLS_IPV6) has it already; in a container /proc/sys is
  // read-only, and one attached before them goes through DAD once (a second or two) instead.
  if (eni.gateway6)
    await writeProcSys(ns, { [`net/ipv6/conf/${link.ifname}/accept_dad`]: "0" }).catch(() => {});
  await ipBatch(ns, [
    `link set dev ${link.ifname} mtu ${eni.mtu} up`,
    `route replace ${eni.gateway}/32 dev ${link.ifname} scope link table ${table}`,
    `route replace default via ${eni.gateway} dev ${link.ifname} table ${table}`,
    ...(eni.gateway6
      ? [
          `route replace ${eni.gateway6}/128 dev ${link.ifname} table ${table}`,
          `route replace ::/0 via ${eni.gateway6} dev ${link.ifname} table ${table}`,
        ]
      : []),
  ]);
  return { device: link.ifname, ifindex: link.ifindex, table };
}
