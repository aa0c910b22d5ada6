// Two kinds of pod traffic that must leave through the node's primary
// interface, not through the pod's ENI: replies to connections that entered
// through the primary interface (a hostPort DNAT'd to a pod), and
// connections kube-proxy masquerades to the node's address (a pod to a
// NodePort, DNAT'd to a pod of another node). Through the pod's ENI, with
// the node's address as source, the VPC's source check drops them.

import { ipJson, run } from "../../lib/ip.js";
import { isIfname } from "../../lib/net.js";
import { HOST_VETH_PREFIX, RULE_MASQUERADED, RULE_PRIMARY_RETURN } from "../facts.js";
import type { NodeBatch } from "./pod.js";

/** The connmark bit for connections that entered through the primary interface. */
const PRIMARY_MARK = "0x80";
/** kube-proxy's mark for traffic it masquerades (its --iptables-masquerade-bit, 14 by default). */
export const KUBE_PROXY_MASQUERADE_MARK = "0x4000";

/**
 * Connections that enter the node through its primary interface to a local
 * address (a hostPort DNAT'd to a pod) must answer through that interface:
 * the pod's `from` rule would send the reply out of the pod's ENI with the
 * node's address as source, and the VPC's source check drops it. As the AWS
 * VPC CNI does: mark such connections, restore the mark on the pod's packets,
 * and route marked packets by the main table.
 */
export async function connmarkReturnPath(ns: string, node: NodeBatch): Promise<void> {
  const routes = await ipJson<{ dst: string; dev?: string }[]>(ns, ["route", "show", "table", "main"]);
  const primary = routes.find((r) => r.dst === "default")?.dev;
  if (!primary || !isIfname(primary)) throw new Error("the node namespace has no default route");
  const ipt = (...args: string[]): Promise<string> =>
    run(ns, ["iptables", "-w", "5", "-t", "mangle", ...args]);
  const chain = "ENIWAY-PREROUTING";
  await ipt("-N", chain).catch(() => "");
  await ipt("-F", chain);
  await ipt(
    "-A",
    chain,
    "-i",
    primary,
    "-m",
    "addrtype",
    "--dst-type",
    "LOCAL",
    "--limit-iface-in",
    "-j",
    "CONNMARK",
    "--set-xmark",
    `${PRIMARY_MARK}/${PRIMARY_MARK}`,
  );
  // A pod's packets carry their connection's marks again, so they are routed as its first packet was.
  const both = `0x${(Number(PRIMARY_MARK) | Number(KUBE_PROXY_MASQUERADE_MARK)).toString(16)}`;
  await ipt(
    "-A",
    chain,
    "-i",
    `${HOST_VETH_PREFIX}+`,
    "-j",
    "CONNMARK",
    "--restore-mark",
    "--nfmask",
    both,
    "--ctmask",
    both,
  );
  await ipt("-C", "PREROUTING", "-j", chain).catch(() => ipt("-A", "PREROUTING", "-j", chain));
  // kube-proxy marks only a connection's first packet (in nat PREROUTING, before routing): keep its
  // mark with the connection (mangle POSTROUTING runs before kube-proxy clears it in nat POSTROUTING).
  const post = "ENIWAY-POSTROUTING";
  await ipt("-N", post).catch(() => "");
  await ipt("-F", post);
  await ipt(
    "-A",
    post,
    "-m",
    "mark",
    "--mark",
    `${KUBE_PROXY_MASQUERADE_MARK}/${KUBE_PROXY_MASQUERADE_MARK}`,
    "-j",
    "CONNMARK",
    "--save-mark",
    "--nfmask",
    KUBE_PROXY_MASQUERADE_MARK,
    "--ctmask",
    KUBE_PROXY_MASQUERADE_MARK,
  );
  await ipt("-C", "POSTROUTING", "-j", post).catch(() => ipt("-A", "POSTROUTING", "-j", post));
  const rules: [mark: string, priority: number][] = [
    [PRIMARY_MARK, RULE_PRIMARY_RETURN],
    [KUBE_PROXY_MASQUERADE_MARK, RULE_MASQUERADED],
  ];
  await node(
    rules.map(([mark, prio]) => `rule del fwmark ${mark}/${mark} priority ${prio}`),
    true,
  );
  await node(rules.map(([mark, prio]) => `rule add fwmark ${mark}/${mark} lookup main priority ${prio}`));
}
