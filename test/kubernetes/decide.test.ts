// The Kubernetes side's pure decisions: which IPs no pod holds, what
// ENIPoolReady says, and the node's pod capacity.

import { describe, expect, it } from "vitest";
import type { PodInfo } from "../../src/kubernetes/api.js";
import {
  goneCandidates,
  goneOnLiveGet,
  type HeldIp,
  maxPods,
  poolCondition,
} from "../../src/kubernetes/decide.js";

const pod = (name: string, uid: string, extra: Partial<PodInfo> = {}): PodInfo => ({
  namespace: "default",
  name,
  uid,
  statefulSet: false,
  hostNetwork: false,
  podIp: "",
  createdAt: 0,
  annotations: {},
  labels: {},
  nodeName: "node-a",
  ports: [],
  ...extra,
});
const held = (name: string, uid: string, assignedAt: number): HeldIp => ({
  containerId: `c-${name}`,
  ifname: "eth0",
  ip: "10.0.1.5",
  pod: { namespace: name ? "default" : "", name, uid },
  assignedAt,
});

describe("goneCandidates", () => {
  const GRACE = 60_000;
  const run = (
    allocations: HeldIp[],
    cache: PodInfo[],
    now: number,
    missingSince = new Map<string, number>(),
    synced = true,
  ) =>
    goneCandidates({
      allocations,
      cached: (ns, name) => cache.find((p) => p.namespace === ns && p.name === name),
      synced,
      now,
      graceMs: GRACE,
      missingSince,
    });

  it("checks an allocation only after its pod was missing for the whole grace", () => {
    const a = held("web", "u1", 0);
    const first = run([a], [], 100_000);
    expect(first.check).toEqual([]);
    expect(first.missingSince.get("c-web/eth0")).toBe(100_000);
    expect(run([a], [], 159_999, first.missingSince).check).toEqual([]);
    expect(run([a], [], 160_000, first.missingSince).check).toEqual([a]);
  });

  it("never checks a pod younger than the grace, even when it was never cached", () => {
    const a = held("new", "u1", 100_000);
    const m = run([a], [], 100_000).missingSince;
    expect(run([a], [], 150_000, m).check).toEqual([]);
    expect(run([a], [], 160_000, m).check).toEqual([a]);
  });

  it("forgets the suspicion when the pod is cached again; another UID is not the pod", () => {
    const a = held("web", "u1", 0);
    const m = run([a], [], 0).missingSince;
    expect(run([a], [pod("web", "u1")], 30_000, m).missingSince.size).toBe(0);
    expect(run([a], [pod("web", "u2")], 30_000, m).missingSince.get("c-web/eth0")).toBe(0);
    expect(run([a], [pod("web", "")], 30_000, m).missingSince.size).toBe(0);
  });

  it("leaves allocations made outside Kubernetes alone, and everything before the first list", () => {
    expect(run([held("", "", 0)], [], 1e9, new Map([["c-/eth0", 0]])).check).toEqual([]);
    const a = held("web", "u1", 0);
    const r = run([a], [], 1e9, new Map([["c-web/eth0", 0]]), false);
    expect(r.check).toEqual([]);
    expect(r.missingSince.get("c-web/eth0")).toBe(0);
  });

  it("releases on NotFound or another UID, never when the live pod is the same", () => {
    const a = held("web", "u1", 0);
    expect(goneOnLiveGet(a, null)).toBe(true);
    expect(goneOnLiveGet(a, pod("web", "u2"))).toBe(true);
    expect(goneOnLiveGet(a, pod("web", "u1"))).toBe(false);
    expect(goneOnLiveGet(held("web", "", 0), pod("web", "u9"))).toBe(false);
  });
});

describe("poolCondition", () => {
  const base = {
    now: 1000,
    vSwitchIds: ["vsw-a", "vsw-b"],
    blockedVSwitches: {},
    createBackoffUntil: 0,
    enis: 1,
    maxEnis: 2,
    lastFailure: null,
  };
  it("is True while the pool can grow or is full by design", () => {
    expect(poolCondition(base)).toMatchObject({ status: "True", reason: "PoolReady" });
    expect(
      poolCondition({
        ...base,
        enis: 2,
        createBackoffUntil: 5000,
        lastFailure: { reason: "ENIQuotaExceeded", message: "x", at: 0 },
      }),
    ).toMatchObject({ status: "True" });
  });
  it("says VSwitchIPExhausted only when every vSwitch is blocked now", () => {
    expect(poolCondition({ ...base, blockedVSwitches: { "vsw-a": 5000 } }).status).toBe("True");
    expect(poolCondition({ ...base, blockedVSwitches: { "vsw-a": 5000, "vsw-b": 500 } }).status).toBe("True");
    expect(poolCondition({ ...base, blockedVSwitches: { "vsw-a": 5000, "vsw-b": 5000 } })).toMatchObject({
      status: "False",
      reason: "VSwitchIPExhausted",
    });
  });
  it("names the quota or the cloud errors while creates back off", () => {
    const failing = { ...base, createBackoffUntil: 5000 };
    expect(
      poolCondition({ ...failing, lastFailure: { reason: "ENIQuotaExceeded", message: "quota", at: 0 } }),
    ).toMatchObject({
      status: "False",
      reason: "ENIQuotaExceeded",
    });
    expect(
      poolCondition({ ...failing, lastFailure: { reason: "AttachENIFailed", message: "timeout", at: 0 } }),
    ).toMatchObject({
      status: "False",
      reason: "CloudAPIErrors",
      message: "AttachENIFailed: timeout",
    });
    expect(
      poolCondition({
        ...failing,
        createBackoffUntil: 999,
        lastFailure: { reason: "AttachENIFailed", message: "t", at: 0 },
      }).status,
    ).toBe("True");
  });
});

describe("maxPods", () => {
  it("is secondary ENIs × IPs per ENI", () => {
    expect(maxPods({ maxSecondaryEnis: 2, ipsPerEni: 6 })).toBe(12);
    expect(maxPods({ maxSecondaryEnis: 0, ipsPerEni: 10 })).toBe(0);
  });

  it("follows the mode; prefix mode is capped as the AWS VPC CNI caps it (110, or 250 above 30 vCPUs)", () => {
    const cases: [limits: Parameters<typeof maxPods>[0], mode: "ip" | "prefix", pods: number][] = [
      // Prefix mode: each ENI's primary IP and a /28 in each of its other slots.
      [{ maxSecondaryEnis: 1, ipsPerEni: 3 }, "prefix", 1 + 2 * 16],
      [{ maxSecondaryEnis: 2, ipsPerEni: 6 }, "prefix", 110],
      [{ maxSecondaryEnis: 2, ipsPerEni: 6, cpuCount: 30 }, "prefix", 110],
      [{ maxSecondaryEnis: 2, ipsPerEni: 6, cpuCount: 32 }, "prefix", 162],
      [{ maxSecondaryEnis: 7, ipsPerEni: 30, cpuCount: 64 }, "prefix", 250],
      [{ maxSecondaryEnis: 0, ipsPerEni: 6 }, "prefix", 0],
      // ip mode: the ENIs' quota is the limit, uncapped (the AWS VPC CNI caps prefix delegation only).
      [{ maxSecondaryEnis: 7, ipsPerEni: 20, cpuCount: 16 }, "ip", 140],
      [{ maxSecondaryEnis: 7, ipsPerEni: 30, cpuCount: 64 }, "ip", 210],
    ];
    for (const [limits, mode, pods] of cases)
      expect(maxPods(limits, mode), JSON.stringify([limits, mode])).toBe(pods);
  });
});
