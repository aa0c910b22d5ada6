// The executor against the real simulator: write-ahead intents, undoing a
// failed attach (no leaked ENI), and what the cloud's refusals do to the pool
// (IpNotEnough blocks a vSwitch, EniPerInstanceLimitExceeded backs off creates).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TryAgainError } from "../../pool/pool.js";
import type { StoreDoc } from "../../pool/store.js";
import {
  calls,
  errors,
  harness,
  NODE,
  ourEnis,
  req,
  SG,
  simStats,
  sleep,
  storeOnDisk,
  type TestNode,
  VSW,
  VSW_TINY,
  waitFor,
} from "./helpers.js";

const h = harness();

const settledAt = (n: TestNode, idle: number) => () => {
  const s = n.pool.summary();
  return s.idle >= idle && s.pending === 0 && s.intents === 0;
};

/** Every ENI of ours in the cloud is a ready ENI of the store, and the other way round. */
function expectNoLeak(node: TestNode): void {
  const cloud = ourEnis(node.sim);
  for (const e of cloud) {
    expect(e.status, `${e.id} in the cloud`).toBe("InUse");
    expect(node.store.data.enis[e.id]?.phase, `${e.id} in the store`).toBe("ready");
  }
  expect(Object.keys(node.store.data.enis).sort()).toEqual(cloud.map((e) => e.id).sort());
  expect(node.store.data.intents).toEqual({});
}

const logged = (n: TestNode, msg: string) => n.logs.filter((l) => l.msg === msg);

describe("executor against the simulator", () => {
  it("writes a create intent with its ClientToken to disk before the call, and clears it after", async () => {
    const dir = await h.tempDir();
    // What the store file held at the instant each Create reached the cloud.
    const seen: StoreDoc[] = [];
    const sim = await h.sim(
      { latencyMs: { CreateNetworkInterface: 200, AttachNetworkInterface: 100 } },
      {
        onAction: (a) => {
          if (a === "CreateNetworkInterface")
            seen.push(JSON.parse(readFileSync(join(dir, "pool.json"), "utf8")) as StoreDoc);
        },
      },
    );
    const node = await h.node(sim, { stateDir: dir, targets: { minIdle: 2, maxIdle: 4 } });
    await waitFor("the pool to fill", settledAt(node, 2));
    expect(seen).toHaveLength(1);
    const intents = Object.values(seen[0]!.intents);
    expect(intents).toHaveLength(1);
    // minIdle now, plus maxIdle − minIdle of headroom.
    expect(intents[0]).toMatchObject({ kind: "create", vSwitchId: VSW, ipCount: 4 });
    expect(intents[0]!.kind === "create" && intents[0]!.clientToken).toMatch(/^[0-9a-f-]{36}$/);
    await node.store.flush();
    expect((await storeOnDisk(node.stateDir)).intents).toEqual({});
    expectNoLeak(node);
  });

  it("writes an assign intent to disk before AssignPrivateIpAddresses and adds the IPs as idle", async () => {
    const dir = await h.tempDir();
    const seen: StoreDoc[] = [];
    const sim = await h.sim(
      {},
      {
        onAction: (a) => {
          if (a === "AssignPrivateIpAddresses")
            seen.push(JSON.parse(readFileSync(join(dir, "pool.json"), "utf8")) as StoreDoc);
        },
      },
    );
    const node = await h.node(sim, { stateDir: dir, targets: { minIdle: 2, maxIdle: 2 } });
    await waitFor("a warm pool", settledAt(node, 2));
    const eniId = Object.keys(node.store.data.enis)[0]!;
    expect(sim.state.enis.get(eniId)!.ips).toHaveLength(2);
    node.targets.minIdle = 5; // more demand: the ready ENI gets 3 more IPs
    node.targets.maxIdle = 8;
    node.pool.kick();
    await waitFor("the assign to land", settledAt(node, 5));
    expect(seen).toHaveLength(1);
    expect(Object.values(seen[0]!.intents)).toEqual([
      expect.objectContaining({ kind: "assign", eniId, count: 3, clientToken: expect.any(String) }),
    ]);
    expect(sim.state.enis.get(eniId)!.ips).toHaveLength(5);
    expect(Object.keys(node.store.data.ips).sort()).toEqual([...sim.state.enis.get(eniId)!.ips].sort());
    expect(calls(await simStats(sim), "AssignPrivateIpAddresses")).toBe(1);
    expectNoLeak(node);
  });

  for (const code of ["InternalError", "InvalidOperation.InvalidEcsState"]) {
    it(`an attach that fails (${code}) deletes the new ENI in the cloud and leaves no intent`, async () => {
      const sim = await h.sim();
      const stats0 = await simStats(sim);
      await fetch(`${sim.url}/admin/faults`, {
        method: "PUT",
        body: JSON.stringify({ actions: { AttachNetworkInterface: { code, rate: 1 } } }),
      });
      const node = await h.node(sim, { targets: { minIdle: 2 } });
      await waitFor("a failed attach to be undone", () => logged(node, "ENI deleted").length >= 1, 8000);
      const failed = logged(node, "attach failed; deleting the ENI").map((l) => String(l.eniId));
      expect(failed.length).toBeGreaterThanOrEqual(1);
      // The cloud really refused (and a retryable code was retried by the client).
      const during = await simStats(sim);
      const refused =
        errors(during, "AttachNetworkInterface", code) - errors(stats0, "AttachNetworkInterface", code);
      if (code === "InternalError") expect(refused).toBeGreaterThan(failed.length);
      else expect(refused).toBeGreaterThanOrEqual(failed.length);

      await fetch(`${sim.url}/admin/faults`, { method: "PUT", body: JSON.stringify({ actions: {} }) });
      await waitFor("the pool to fill once attach works", settledAt(node, 2), 8000);
      // The ENIs whose attach failed are gone from the cloud, not left Available.
      const deleted = logged(node, "ENI deleted").map((l) => String(l.eniId));
      for (const id of deleted) expect(sim.state.enis.has(id), `${id} still exists`).toBe(false);
      expect(ourEnis(sim).filter((e) => e.status === "Available")).toEqual([]);
      expect(ourEnis(sim)).toHaveLength(1);
      expectNoLeak(node);
      await node.store.flush();
      expect((await storeOnDisk(node.stateDir)).intents).toEqual({});
      const s = await simStats(sim);
      expect(calls(s, "CreateNetworkInterface")).toBe(deleted.length + 1);
    });
  }

  it("a persistent attach failure does not hammer the cloud with create/delete cycles", async () => {
    const sim = await h.sim({ latencyMs: {} });
    await fetch(`${sim.url}/admin/faults`, {
      method: "PUT",
      body: JSON.stringify({
        actions: { AttachNetworkInterface: { code: "InvalidOperation.InvalidEcsState", rate: 1 } },
      }),
    });
    const node = await h.node(sim, { targets: { minIdle: 2 } });
    await sleep(1000);
    const s = await simStats(sim);
    // A node whose attaches keep failing should back off, as it does after EniPerInstanceLimitExceeded.
    expect(calls(s, "CreateNetworkInterface")).toBeLessThanOrEqual(5);
    await node.stop();
    expect(ourEnis(sim)).toEqual([]);
  });

  it("a persistently refused assign does not hammer the cloud either", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, { targets: { minIdle: 2, maxIdle: 2 } });
    await waitFor("a warm pool", settledAt(node, 2));
    await fetch(`${sim.url}/admin/faults`, {
      method: "PUT",
      body: JSON.stringify({
        actions: { AssignPrivateIpAddresses: { code: "InvalidOperation.InvalidEniState", rate: 1 } },
      }),
    });
    node.targets.minIdle = 4;
    node.targets.maxIdle = 4;
    node.pool.kick();
    await sleep(1000);
    const s = await simStats(sim);
    expect(calls(s, "AssignPrivateIpAddresses")).toBeGreaterThanOrEqual(1);
    expect(calls(s, "AssignPrivateIpAddresses")).toBeLessThanOrEqual(5);
    expect(node.store.data.intents).toEqual({});
  });

  it("an attach slower than attachTimeoutMs is undone: the ENI is deleted once it settles", async () => {
    const sim = await h.sim({ latencyMs: { AttachNetworkInterface: 700, DetachNetworkInterface: 50 } });
    const node = await h.node(sim, {
      targets: { minIdle: 1 },
      executor: { attachTimeoutMs: 300 },
      staleIntentMs: 0,
    });
    await waitFor(
      "the attach to time out",
      () => logged(node, "attach failed; deleting the ENI").length >= 1,
      5000,
    );
    const first = String(logged(node, "attach failed; deleting the ENI")[0]!.eniId);
    // The store still tracks it until it is really gone; a resync finishes the job.
    await waitFor(
      "the timed-out ENI to be deleted",
      async () => {
        await node.resync();
        // The store forgets the ENI right after the cloud's delete answers: wait for both.
        return !sim.state.enis.has(first) && node.store.data.enis[first] === undefined;
      },
      8000,
      200,
    );
    expect(sim.state.enis.has(first)).toBe(false);
    expect(node.store.data.enis[first]).toBeUndefined();
    expect(Object.values(node.store.data.intents).filter((i) => "eniId" in i && i.eniId === first)).toEqual(
      [],
    );
  });

  it("InvalidVSwitchId.IpNotEnough on create blocks the vSwitch (persisted) and stops creates there", async () => {
    const sim = await h.sim();
    await fetch(`${sim.url}/admin/faults`, {
      method: "PUT",
      body: JSON.stringify({
        actions: { CreateNetworkInterface: { code: "InvalidVSwitchId.IpNotEnough", rate: 1 } },
      }),
    });
    const t0 = Date.now();
    const node = await h.node(sim, {
      targets: { minIdle: 2, allocateTimeoutMs: 600 },
      executor: { vSwitchBlockMs: 60_000 },
    });
    await waitFor("the vSwitch to be blocked", () => node.store.data.blockedVSwitches[VSW]);
    const until = node.store.data.blockedVSwitches[VSW]!;
    expect(until).toBeGreaterThanOrEqual(t0 + 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 60_000);
    await node.store.flush();
    expect((await storeOnDisk(node.stateDir)).blockedVSwitches[VSW]).toBe(until);
    expect(node.pool.summary().blockedVSwitches[VSW]).toBe(until);
    // No retry storm: while blocked, no more creates in it, and an allocation cannot be served.
    const err = await node.pool.allocate(req(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TryAgainError);
    const s = await simStats(sim);
    expect(calls(s, "CreateNetworkInterface")).toBe(1);
    expect(errors(s, "CreateNetworkInterface", "InvalidVSwitchId.IpNotEnough")).toBe(1);
    expect(node.store.data.intents).toEqual({});
    expect(ourEnis(sim)).toEqual([]);
  });

  it("a /29 vSwitch that runs out behind the pool's back gets blocked; the others are used", async () => {
    const sim = await h.sim();
    const outsider = h.client(sim);
    const node = await h.node(sim, {
      targets: { minIdle: 0, allocateTimeoutMs: 800 },
      vSwitchIds: [VSW_TINY],
    });
    // The pool believes 4 addresses are free; someone else takes them all.
    await outsider.createNetworkInterface({
      vSwitchId: VSW_TINY,
      securityGroupIds: [SG],
      tags: { team: "other" },
      secondaryIpCount: 3,
    });
    const err = await node.pool.allocate(req(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TryAgainError);
    expect(node.store.data.blockedVSwitches[VSW_TINY]).toBeGreaterThan(Date.now());
    expect(errors(await simStats(sim), "CreateNetworkInterface", "InvalidVSwitchId.IpNotEnough")).toBe(1);
    expect(ourEnis(sim)).toEqual([]);
    expect(node.store.data.intents).toEqual({});
  });

  it("EniPerInstanceLimitExceeded backs off creates and deletes the ENI that could not attach", async () => {
    const sim = await h.sim();
    const outsider = h.client(sim);
    // Someone else fills the instance's two secondary ENI slots.
    const foreign: string[] = [];
    for (let i = 0; i < 2; i++) {
      const e = await outsider.createNetworkInterface({
        vSwitchId: VSW,
        securityGroupIds: [SG],
        tags: { team: "other" },
        secondaryIpCount: 0,
      });
      await outsider.attachNetworkInterface(e.eniId, NODE);
      foreign.push(e.eniId);
    }
    await sim.settle();
    const t0 = Date.now();
    const node = await h.node(sim, { targets: { minIdle: 2 }, executor: { eniLimitBackoffMs: 60_000 } });
    await waitFor("create backoff", () => node.store.data.createBackoffUntil > 0);
    expect(node.store.data.createBackoffUntil).toBeGreaterThanOrEqual(t0 + 60_000);
    await waitFor(
      "the refused ENI to be deleted",
      () => ourEnis(sim).length === 0 && node.pool.summary().intents === 0,
    );
    await node.store.flush();
    expect((await storeOnDisk(node.stateDir)).createBackoffUntil).toBe(node.store.data.createBackoffUntil);
    await sleep(300);
    const s = await simStats(sim);
    expect(errors(s, "AttachNetworkInterface", "EniPerInstanceLimitExceeded")).toBe(1);
    expect(calls(s, "CreateNetworkInterface")).toBe(3); // the two foreign ones and ours, no more
    // The foreign ENIs are untouched.
    for (const id of foreign)
      expect(sim.state.enis.get(id)).toMatchObject({ status: "InUse", instanceId: NODE });
    expect(node.store.data.enis).toEqual({});
  });

  it("an unassign the cloud refuses puts the IPs back to idle; the next try succeeds", async () => {
    const sim = await h.sim();
    const node = await h.node(sim, {
      targets: { minIdle: 5, maxIdle: 8, idleReclaimMs: 0, cooldownMs: 0 },
    });
    await waitFor("a warm pool", settledAt(node, 5));
    await fetch(`${sim.url}/admin/faults`, {
      method: "PUT",
      body: JSON.stringify({
        actions: {
          UnassignPrivateIpAddresses: { code: "InvalidOperation.InvalidEniState", rate: 1, count: 1 },
        },
      }),
    });
    node.targets.minIdle = 0;
    node.targets.maxIdle = 2;
    await waitFor(
      "the refusal",
      async () =>
        errors(await simStats(sim), "UnassignPrivateIpAddresses", "InvalidOperation.InvalidEniState") === 1,
    );
    await waitFor(
      "the reclaim to succeed after the refusal",
      () => ourEnis(sim).reduce((n, e) => n + e.ips.length, 0) === 2 && node.pool.summary().intents === 0,
    );
    expect(node.pool.summary()).toMatchObject({ idle: 2, releasing: 0 });
    expectNoLeak(node);
  });
});
