// The candidate vSwitches and their free addresses (DescribeVSwitches), as
// the planner sees them; refreshed at start and at every resync. In prefix
// mode also the IPv4 prefixes their reserved CIDR blocks can still give
// (ListVSwitchCidrReservations): free single addresses say nothing of them.

import type { CloudApi } from "../cloud/api.js";
import type { Logger } from "../lib/log.js";

export interface VSwitchFree {
  vSwitchId: string;
  /** Free single addresses. */
  available: number;
  /** Prefix mode: IPv4 prefixes its reserved blocks can still give; absent when unknown. */
  prefixes?: number;
}

export interface VSwitchCache {
  refresh(): Promise<void>;
  list(): VSwitchFree[];
}

export function createVSwitchCache(
  cloud: Pick<CloudApi, "describeVSwitches" | "listVSwitchCidrReservations">,
  vSwitchIds: string[],
  opts: { prefixes?: boolean; log?: Logger } = {},
): VSwitchCache {
  let free: VSwitchFree[] = vSwitchIds.map((vSwitchId) => ({ vSwitchId, available: 0 }));
  let warned = false;
  /** The prefixes a vSwitch's ready blocks can give; undefined when the listing failed (a RAM policy without it, say). */
  const prefixesOf = async (vSwitchId: string): Promise<number | undefined> => {
    try {
      const blocks = await cloud.listVSwitchCidrReservations(vSwitchId, "IPv4");
      return blocks.filter((b) => b.status === "Assigned").reduce((n, b) => n + b.availableCidrCount, 0);
    } catch (e) {
      if (!warned)
        opts.log?.warn(
          "cannot list the vSwitches' reserved CIDR blocks; vSwitches are chosen by free addresses",
          {
            error: String(e),
          },
        );
      warned = true;
      return undefined;
    }
  };
  return {
    async refresh() {
      const found = await cloud.describeVSwitches({ vSwitchIds });
      const prefixes = opts.prefixes ? await Promise.all(vSwitchIds.map(prefixesOf)) : [];
      free = vSwitchIds.map((id, i) => {
        const p = prefixes[i];
        return {
          vSwitchId: id,
          available: found.find((v) => v.vSwitchId === id)?.availableIpAddressCount ?? 0,
          ...(p === undefined ? {} : { prefixes: p }),
        };
      });
    },
    list: () => free,
  };
}
