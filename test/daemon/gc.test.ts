// The daemon's CNI GC (src/daemon/cni.ts) on a real pool against the real
// simulator: it releases only its own network's attachments that the
// runtime no longer lists, never an attachment of another network, of an
// unknown one, one younger than the floor, or one whose ADD is wiring the
// pod at that very moment. The kernel work sits behind the datapath port;
// here that port holds an ADD's wiring at a gate, so a GC lands exactly
// inside it (the real datapath is proven in the sandbox and cni tests).

import { describe, expect, it } from "vitest";
import type { Datapath } from "../../cni/datapath/datapath.js";
import { silentLogger } from "../../lib/log.js";
import { createCniHandlers } from "../../src/daemon/cni.js";
import { harness, pod, type TestNode, waitFor } from "../pool/helpers.js";

const h = harness();

/** The datapath port, recording what it was asked; an ADD's wiring waits while `gate` is set. */
function recordingDatapath() {
  const wired = new Set<string>();
  let gate: Promise<void> | null = null;
  let open: () => void = () => {};
  const dp: Datapath = {
    ensureEni: async () => ({ device: "eth1", table: 1003, ifindex: 3 }),
    discover: async () => {},
    async add(spec) {
      if (gate) await gate;
      wired.add(`${spec.containerId}/${spec.ifname}`);
      return {
        hostIfname: "eni00000000000",
        hostMac: "02:00:00:00:00:01",
        podMac: "02:00:00:00:00:02",
        table: 1003,
        mtu: 1500,
      };
    },
    async del(containerId, ifname) {
      wired.delete(`${containerId}/${ifname}`);
    },
    check: async () => [],
    repair: async () => ({ enisBroughtUp: [], restored: [], removed: [] }),
    close: () => {},
  };
  return {
    dp,
    wired,
    hold(): void {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release(): void {
      gate = null;
      open();
    },
  };
}

const NETNS = "/var/run/netns/gc-test";
const add = (id: string, network: string) => ({
  containerId: id,
  ifname: "eth0",
  netns: NETNS,
  network,
  pod: pod(id),
});
const ids = (n: TestNode): string[] =>
  n.pool
    .allocations()
    .map((a) => a.containerId)
    .sort();

describe("CNI GC", () => {
  it("releases only its own network's unlisted attachments", async () => {
    const node = await h.node(await h.sim(), { targets: { minIdle: 4, maxIdle: 8 } });
    const d = recordingDatapath();
    const cni = createCniHandlers({ pool: node.pool, datapath: d.dp, log: silentLogger, gcMinAgeMs: 0 });
    await cni.add(add("a1", "net-a"));
    await cni.add(add("a2", "net-a"));
    await cni.add(add("b1", "net-b"));
    // Made by the pool's own API (no network), as are allocations stored before networks were.
    await node.pool.allocate({ containerId: "x1", ifname: "eth0", pod: pod("x1") });

    const r = await cni.gc({ network: "net-a", valid: [{ containerId: "a1", ifname: "eth0" }] });
    expect(r.released.map((x) => x.containerId)).toEqual(["a2"]);
    expect(ids(node)).toEqual(["a1", "b1", "x1"]);
    expect([...d.wired].sort()).toEqual(["a1/eth0", "b1/eth0"]);
    // The other network's own GC, with nothing listed, takes only its own.
    const rb = await cni.gc({ network: "net-b", valid: [] });
    expect(rb.released.map((x) => x.containerId)).toEqual(["b1"]);
    expect(ids(node)).toEqual(["a1", "x1"]);
    // The network's name is stored with the allocation.
    expect(node.pool.allocations().find((a) => a.containerId === "a1")).toMatchObject({
      network: "net-a",
      netns: NETNS,
    });
  });

  it("never releases an attachment whose ADD is wiring the pod while the GC runs", async () => {
    const node = await h.node(await h.sim(), { targets: { minIdle: 4, maxIdle: 8 } });
    const d = recordingDatapath();
    const cni = createCniHandlers({ pool: node.pool, datapath: d.dp, log: silentLogger, gcMinAgeMs: 0 });
    d.hold();
    const adding = cni.add(add("slow", "net-a"));
    // Allocated, not yet wired: the allocation is there and the ADD is still running.
    await waitFor("the allocation of the ADD in flight", () => ids(node).includes("slow"));
    expect(cni.busy({ containerId: "slow", ifname: "eth0" })).toBe(true);
    const r = await cni.gc({ network: "net-a", valid: [] });
    expect(r.released).toEqual([]);
    d.release();
    const a = await adding;
    expect(ids(node)).toEqual(["slow"]);
    expect(d.wired.has("slow/eth0")).toBe(true);
    expect(cni.busy({ containerId: "slow", ifname: "eth0" })).toBe(false);
    // Once the ADD has answered, a GC that does not list it releases it.
    const after = await cni.gc({ network: "net-a", valid: [] });
    expect(after.released).toEqual([{ containerId: "slow", ifname: "eth0", ip: a.ip }]);
  });

  it("leaves attachments younger than its floor: the runtime listed before their ADD", async () => {
    const node = await h.node(await h.sim(), { targets: { minIdle: 2, maxIdle: 8 } });
    const d = recordingDatapath();
    let skew = 0;
    const cni = createCniHandlers({
      pool: node.pool,
      datapath: d.dp,
      log: silentLogger,
      gcMinAgeMs: 10_000,
      now: () => Date.now() + skew,
    });
    await cni.add(add("young", "net-a"));
    expect((await cni.gc({ network: "net-a", valid: [] })).released).toEqual([]);
    expect(ids(node)).toEqual(["young"]);
    skew = 10_000; // ten seconds later
    expect((await cni.gc({ network: "net-a", valid: [] })).released.map((x) => x.containerId)).toEqual([
      "young",
    ]);
  });

  it("a repeated ADD with a new namespace records it: what is stored is what is wired", async () => {
    const node = await h.node(await h.sim(), { targets: { minIdle: 2, maxIdle: 8 } });
    const d = recordingDatapath();
    const cni = createCniHandlers({ pool: node.pool, datapath: d.dp, log: silentLogger, gcMinAgeMs: 0 });
    const first = await cni.add(add("again", "net-a"));
    const second = await cni.add({ ...add("again", "net-a"), netns: "/var/run/netns/gc-test-2" });
    expect(second.ip).toBe(first.ip);
    expect(node.pool.allocations()[0]).toMatchObject({ netns: "/var/run/netns/gc-test-2" });
    expect(node.store.data.ips[first.ip]?.owner).toMatchObject({ netns: "/var/run/netns/gc-test-2" });
  });
});
