import { describe, expect, it } from "vitest";
import { delayFor, type RetryInfo, retry, type Schedule } from "../../lib/backoff.js";

/** Full jitter, 200 ms doubling to 5 s: the cloud API's schedule. */
const FULL: Schedule = { baseMs: 200, factor: 2, capMs: 5000, jitter: "full" };
const backoffDelay = (attempt: number, random: () => number): number => delayFor(FULL, attempt, random);

class Transient extends Error {}
class Fatal extends Error {}

/** A fake clock: sleep advances now, and every sleep is recorded. */
function fakeClock(start = 1_000_000) {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

const isTransient = (e: unknown): boolean => e instanceof Transient;

describe("delayFor with full jitter", () => {
  it("doubles its ceiling per attempt up to the cap", () => {
    const max = (attempt: number) => backoffDelay(attempt, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6, 7, 10].map(max)).toEqual([199, 399, 799, 1599, 3199, 4999, 4999, 4999]);
  });

  it("is full jitter: anywhere in [0, ceiling)", () => {
    expect(backoffDelay(3, () => 0)).toBe(0);
    expect(backoffDelay(3, () => 0.5)).toBe(400);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4, Math.random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(1600);
    }
  });
});

describe("retry", () => {
  it("returns the first success", async () => {
    let calls = 0;
    const clock = fakeClock();
    const v = await retry(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new Transient("again");
        return "done";
      },
      { isRetryable: isTransient, sleep: clock.sleep, now: clock.now, random: () => 0.5 },
    );
    expect(v).toBe("done");
    expect(calls).toBe(3);
    expect(clock.sleeps).toEqual([100, 200]);
  });

  it("does not retry a non-retryable error", async () => {
    let calls = 0;
    const clock = fakeClock();
    const p = retry(
      async () => {
        calls++;
        throw new Fatal("no");
      },
      { isRetryable: isTransient, sleep: clock.sleep, now: clock.now },
    );
    await expect(p).rejects.toBeInstanceOf(Fatal);
    expect(calls).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("stops before a backoff that would cross the deadline and rethrows the last error", async () => {
    const clock = fakeClock();
    const errors: Transient[] = [];
    const p = retry(
      async () => {
        clock.advance(1000); // each attempt takes 1 s
        const e = new Transient(`attempt ${errors.length + 1}`);
        errors.push(e);
        throw e;
      },
      {
        isRetryable: isTransient,
        baseMs: 200,
        capMs: 5000,
        maxElapsedMs: 30_000,
        maxAttempts: 1000,
        sleep: clock.sleep,
        now: clock.now,
        random: () => 0.999,
      },
    );
    const err = await p.catch((e: unknown) => e);
    expect(err).toBe(errors[errors.length - 1]);
    const elapsed = clock.now() - 1_000_000;
    expect(elapsed).toBeLessThanOrEqual(30_000 + 1000); // the last attempt may start just before the deadline
    // after the last attempt, the next sleep would have crossed the deadline
    const nextDelay = backoffDelay(errors.length, () => 0.999);
    expect(clock.now() + nextDelay).toBeGreaterThan(1_000_000 + 30_000);
    expect(errors.length).toBeGreaterThan(5);
  });

  it("honours maxAttempts", async () => {
    let calls = 0;
    const clock = fakeClock();
    await expect(
      retry(
        async () => {
          calls++;
          throw new Transient("x");
        },
        { isRetryable: isTransient, maxAttempts: 4, sleep: clock.sleep, now: clock.now },
      ),
    ).rejects.toBeInstanceOf(Transient);
    expect(calls).toBe(4);
  });

  it("calls onRetry before each sleep with attempt, delay and error", async () => {
    const infos: RetryInfo[] = [];
    const clock = fakeClock();
    await retry(
      async (attempt) => {
        if (attempt < 3) throw new Transient(`a${attempt}`);
        return 1;
      },
      {
        isRetryable: isTransient,
        sleep: clock.sleep,
        now: clock.now,
        random: () => 0.25,
        onRetry: (i) => infos.push(i),
      },
    );
    expect(infos.map((i) => [i.attempt, i.delayMs, (i.error as Error).message])).toEqual([
      [1, 50, "a1"],
      [2, 100, "a2"],
    ]);
  });

  it("stops when its signal is aborted", async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = retry(
      async () => {
        calls++;
        if (calls === 2) ac.abort();
        throw new Transient("x");
      },
      { isRetryable: isTransient, baseMs: 1, capMs: 1, signal: ac.signal },
    );
    await expect(p).rejects.toBeInstanceOf(Transient);
    expect(calls).toBe(2);
  });

  it("the real sleep is used by default and is short for tiny delays", async () => {
    const started = Date.now();
    let calls = 0;
    await retry(
      async () => {
        if (++calls < 3) throw new Transient("x");
      },
      { isRetryable: isTransient, baseMs: 2, capMs: 4 },
    );
    expect(calls).toBe(3);
    expect(Date.now() - started).toBeLessThan(500);
  });
});
