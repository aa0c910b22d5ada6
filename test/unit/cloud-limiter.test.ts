import { afterEach, describe, expect, it } from "vitest";
import {
  type ActionLimiter,
  bucketSettings,
  createActionLimiter,
  DEFAULT_RATE_LIMITS,
  resolveRateLimits,
} from "../../cloud/limiter.js";
import { ALL_ACTIONS } from "../../cloud/types.js";

let limiter: ActionLimiter | undefined;
afterEach(async () => {
  await limiter?.stop();
  limiter = undefined;
});

describe("rate limit settings", () => {
  it("has a default for every action", () => {
    for (const a of ALL_ACTIONS) expect(DEFAULT_RATE_LIMITS[a]).toBeDefined();
    expect(DEFAULT_RATE_LIMITS.DescribeNetworkInterfaces).toEqual({ qps: 20, burst: 40 });
    expect(DEFAULT_RATE_LIMITS.CreateNetworkInterface).toEqual({ qps: 10, burst: 20 });
    expect(DEFAULT_RATE_LIMITS.UnassignPrivateIpAddresses).toEqual({ qps: 10, burst: 20 });
    expect(DEFAULT_RATE_LIMITS.DescribeInstanceTypes).toEqual({ qps: 5, burst: 10 });
    expect(DEFAULT_RATE_LIMITS.DescribeVSwitches).toEqual({ qps: 5, burst: 10 });
  });

  it("maps qps and burst onto a reservoir that refills at qps", () => {
    expect(bucketSettings({ qps: 20, burst: 40 })).toMatchObject({
      reservoir: 40,
      reservoirIncreaseInterval: 50,
      reservoirIncreaseAmount: 1,
      reservoirIncreaseMaximum: 40,
      heartbeatInterval: 50,
    });
    expect(bucketSettings({ qps: 5, burst: 10 })).toMatchObject({
      reservoirIncreaseInterval: 200,
      reservoirIncreaseAmount: 1,
    });
    expect(bucketSettings({ qps: 1000, burst: 2000 })).toMatchObject({
      reservoirIncreaseInterval: 100,
      reservoirIncreaseAmount: 100,
    });
    expect(bucketSettings({ qps: 0.5, burst: 1 })).toMatchObject({
      reservoirIncreaseInterval: 2000,
      reservoirIncreaseAmount: 1,
    });
    for (const qps of [0.5, 3, 7, 20, 99, 150, 1234]) {
      const s = bucketSettings({ qps, burst: 5000 });
      expect(s.reservoirIncreaseInterval).toBeGreaterThanOrEqual(10);
      const rate = (s.reservoirIncreaseAmount * 1000) / s.reservoirIncreaseInterval;
      expect(Math.abs(rate - qps) / qps).toBeLessThan(0.05);
    }
  });

  it("rejects nonsense limits", () => {
    expect(() => bucketSettings({ qps: 0, burst: 1 })).toThrow(/qps/);
    expect(() => bucketSettings({ qps: 1, burst: 0 })).toThrow(/burst/);
    expect(() => bucketSettings({ qps: 1, burst: 1, maxConcurrent: 0 })).toThrow(/maxConcurrent/);
  });

  it("applies per-action overrides on top of the defaults", () => {
    const r = resolveRateLimits({ AttachNetworkInterface: { qps: 2 } });
    expect(r.AttachNetworkInterface).toEqual({ qps: 2, burst: 20 });
    expect(r.DetachNetworkInterface).toEqual({ qps: 10, burst: 20 });
  });
});

describe("createActionLimiter", () => {
  it("lets a burst through at once, then paces at qps", async () => {
    limiter = createActionLimiter({ AttachNetworkInterface: { qps: 10, burst: 3 } });
    const l = limiter;
    const started = Date.now();
    const times = await Promise.all(
      Array.from({ length: 5 }, () => l.schedule("AttachNetworkInterface", async () => Date.now() - started)),
    );
    times.sort((a, b) => a - b);
    expect(times[2]!).toBeLessThan(60); // the burst of 3 runs at once
    expect(times[3]!).toBeGreaterThanOrEqual(80); // then one token per 100 ms
    expect(times[4]!).toBeGreaterThanOrEqual(180);
    expect(times[4]!).toBeLessThan(1000);
  });

  it("keeps actions independent", async () => {
    limiter = createActionLimiter({ AttachNetworkInterface: { qps: 1, burst: 1 } });
    const l = limiter;
    await l.schedule("AttachNetworkInterface", async () => 1);
    const started = Date.now();
    await l.schedule("DetachNetworkInterface", async () => 1);
    expect(Date.now() - started).toBeLessThan(50);
  });

  it("caps concurrency per action", async () => {
    limiter = createActionLimiter({ DeleteNetworkInterface: { qps: 1000, burst: 100, maxConcurrent: 2 } });
    const l = limiter;
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        l.schedule("DeleteNetworkInterface", async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });

  it("stop() drops waiting jobs and refuses new ones", async () => {
    limiter = createActionLimiter({ DescribeVSwitches: { qps: 0.1, burst: 1 } });
    const l = limiter;
    await l.schedule("DescribeVSwitches", async () => 1);
    const waiting = l.schedule("DescribeVSwitches", async () => 2).catch((e: unknown) => e);
    await l.stop();
    expect(String(await waiting)).toMatch(/stopped/);
    await expect(l.schedule("DescribeVSwitches", async () => 3)).rejects.toThrow(/stopped/);
  });
});
