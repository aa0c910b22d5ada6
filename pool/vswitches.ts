// The candidate vSwitches and their free addresses (DescribeVSwitches), as
// the planner sees them; refreshed at start and at every resync.

import type { CloudApi } from "../cloud/api.js";

export interface VSwitchCache {
  refresh(): Promise<void>;
  list(): { vSwitchId: string; available: number }[];
}

export function createVSwitchCache(
  cloud: Pick<CloudApi, "describeVSwitches">,
  vSwitchIds: string[],
): VSwitchCache {
  let free = vSwitchIds.map((vSwitchId) => ({ vSwitchId, available: 0 }));
  return {
    async refresh() {
      const found = await cloud.describeVSwitches({ vSwitchIds });
      free = vSwitchIds.map((id) => ({
        vSwitchId: id,
        available: found.find((v) => v.vSwitchId === id)?.availableIpAddressCount ?? 0,
      }));
    },
    list: () => free,
  };
}
