// The return path for connections that enter the node through its primary
// interface (a hostPort DNAT'd to a pod): their replies must leave the way
// they came, not through the pod's ENI.

import { ipJson, run } from "../../lib/ip.js";
import { isIfname } from "../../lib/net.js";
import { HOST_VETH_PREFIX, RULE_PRIMARY_RETURN } from "../facts.js";
import type { NodeBatch } from "./pod.js";

/** The connmark bit for connections that entered through the primary interface. */
const PRIMARY_MARK = "0x80";

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
  await ipt(
    "-A",
    chain,
    "-i",
    `${HOST_VETH_PREFIX}+`,
    "-j",
    "CONNMARK",
    "--restore-mark",
    "--nfmask",
    PRIMARY_MARK,
    "--ctmask",
    PRIMARY_MARK,
  );
  await ipt("-C", "PREROUTING", "-j", chain).catch(() => ipt("-A", "PREROUTING", "-j", chain));
  await node([`rule del fwmark ${PRIMARY_MARK}/${PRIMARY_MARK} priority ${RULE_PRIMARY_RETURN}`], true);
  await node([`rule add fwmark ${PRIMARY_MARK}/${PRIMARY_MARK} lookup main priority ${RULE_PRIMARY_RETURN}`]);
}
