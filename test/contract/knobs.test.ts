// The simulator's knobs, changed at run time over the admin API: per-action
// throttling, injected faults (counted, random, after the effect) and latency.

import { describe, expect, it } from "vitest";
import { expectErrorShape, simHarness } from "../helpers/sim.js";

const h = simHarness();

describe("throttling", () => {
  it("a token bucket per action: the third quick call gets Throttling (400), other actions are unaffected", async () => {
    const c = await h.start();
    await c.knob("throttle", { DescribeNetworkInterfaces: { qps: 1, burst: 2 } });
    const got = await c.admin("throttle");
    expect(got.body).toEqual({ DescribeNetworkInterfaces: { qps: 1, burst: 2 } });
    await c.describe();
    await c.describe();
    const e = await c.callError("DescribeNetworkInterfaces", {});
    expect([e.code, e.status]).toEqual(["Throttling", 400]);
    expectErrorShape(e);
    for (let i = 0; i < 5; i++) {
      const r = await c.call<{ InstanceTypes: unknown }>("DescribeInstanceTypes", {});
      expect(r.InstanceTypes).toBeDefined();
    }
    await c.create();
    await c.call("DescribeVSwitches", {});
    const stats = await c.admin<{ errors: Record<string, Record<string, number>> }>("stats");
    expect(stats.body.errors.DescribeNetworkInterfaces?.Throttling).toBe(1);
    expect(stats.body.errors.DescribeInstanceTypes).toBeUndefined();
  });

  it('"*" applies to every action and the bucket refills at qps', async () => {
    const c = await h.start({ throttle: { "*": { qps: 20, burst: 1 } } });
    await c.call("DescribeVSwitches", {});
    expect((await c.callError("DescribeVSwitches", {})).code).toBe("Throttling");
    // Buckets are per action: another action still has its token.
    await c.call("DescribeInstanceTypes", {});
    await new Promise((r) => setTimeout(r, 120)); // 20 qps → a token every 50 ms
    await c.call("DescribeVSwitches", {});
  });
});

describe("faults", () => {
  it("a counted fault: one 500 InternalError on Create, then success; the failed call created nothing", async () => {
    const c = await h.start();
    await c.knob("faults", {
      actions: { CreateNetworkInterface: { code: "InternalError", rate: 1, count: 1 } },
    });
    const e = await c.callError("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
    });
    expect([e.code, e.status]).toEqual(["InternalError", 500]);
    expectErrorShape(e);
    expect(await c.describeAll({ Type: "Secondary" })).toEqual([]);
    const r = await c.create();
    expect(r.NetworkInterfaceId).toMatch(/^eni-/);
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
    await c.create();
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(2);
  });

  it("errorRate 1 with errorCodes [ServiceUnavailable] → 503 on every action", async () => {
    const c = await h.start();
    await c.knob("faults", { errorRate: 1, errorCodes: ["ServiceUnavailable"] });
    for (const action of ["DescribeNetworkInterfaces", "DescribeInstanceTypes", "DescribeVSwitches"]) {
      const e = await c.callError(action, {});
      expect([e.code, e.status], action).toEqual(["ServiceUnavailable", 503]);
      expectErrorShape(e);
    }
    await c.knob("faults", { errorRate: 0 });
    expect((await c.describe()).NetworkInterfaceSets.NetworkInterfaceSet).toHaveLength(2);
  });

  it("afterEffect: the error is returned but the ENI exists, and ClientToken recovers it", async () => {
    const c = await h.start();
    await c.knob("faults", {
      actions: { CreateNetworkInterface: { code: "InternalError", rate: 1, count: 1, afterEffect: true } },
    });
    const params = { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1", ClientToken: "lost-reply" };
    const e = await c.callError("CreateNetworkInterface", params);
    expect([e.code, e.status]).toEqual(["InternalError", 500]);
    const enis = await c.describeAll({ Type: "Secondary" });
    expect(enis).toHaveLength(1);
    expect(enis[0]!.Status).toBe("Available");
    const retry = await c.call<{ NetworkInterfaceId: string }>("CreateNetworkInterface", params);
    expect(retry.NetworkInterfaceId).toBe(enis[0]!.NetworkInterfaceId);
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
  });

  it("rejects an invalid knob body with a 400 naming the key, and keeps the old setting", async () => {
    const c = await h.start();
    await c.knob("faults", { actions: { DeleteNetworkInterface: { code: "InternalError", rate: 1 } } });
    const cases: [string, unknown, string][] = [
      [
        "faults",
        { actions: { CreateNetworkInterface: { rate: 2 } } },
        "faults.actions.CreateNetworkInterface.rate",
      ],
      ["faults", { actions: { NoSuchAction: { rate: 1 } } }, "faults.actions.NoSuchAction"],
      ["faults", { errorRat: 1 }, "faults.errorRat"],
      ["faults", "{not json", ""],
      ["throttle", { DescribeNetworkInterfaces: { qps: 1 } }, "throttle.DescribeNetworkInterfaces.burst"],
      ["throttle", { NoSuchAction: { qps: 1, burst: 1 } }, "throttle.NoSuchAction"],
      ["latency", { AttachNetworkInterface: -5 }, "latencyMs.AttachNetworkInterface"],
      ["latency", { AttachNetworkInterface: [1, 2, 3] }, "latencyMs.AttachNetworkInterface"],
    ];
    for (const [knob, body, key] of cases) {
      const r = await c.admin<{ error: string }>(knob, "PUT", body);
      expect(r.status, `${knob} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error, `${knob} ${JSON.stringify(body)}`).toContain(key);
    }
    const faults = await c.admin<{ actions: Record<string, { rate: number }> }>("faults");
    expect(Object.keys(faults.body.actions)).toEqual(["DeleteNetworkInterface"]);
    expect((await c.admin("throttle")).body).toEqual({});
  });
});

describe("latency", () => {
  it("the latency knob delays the action (a behaviour check, not a benchmark)", async () => {
    const c = await h.start();
    const t0 = Date.now();
    await c.call("DescribeInstanceTypes", {});
    const fast = Date.now() - t0;
    await c.knob("latency", { DescribeInstanceTypes: 150 });
    const t1 = Date.now();
    await c.call("DescribeInstanceTypes", {});
    const slow = Date.now() - t1;
    expect(slow).toBeGreaterThanOrEqual(100);
    expect(slow).toBeGreaterThan(fast);
    // Other actions keep their speed.
    const t2 = Date.now();
    await c.call("DescribeVSwitches", {});
    expect(Date.now() - t2).toBeLessThan(100);
  });

  it("a fault's latencyMs also delays its error", async () => {
    const c = await h.start();
    await c.knob("faults", {
      actions: { DescribeVSwitches: { code: "ServiceUnavailable", rate: 1, count: 1, latencyMs: 150 } },
    });
    const t0 = Date.now();
    const e = await c.callError("DescribeVSwitches", {});
    expect(e.status).toBe(503);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });
});
