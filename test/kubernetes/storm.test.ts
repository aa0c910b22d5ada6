// Cloud failures as the API server sees them. A failure storm: the pool's only vSwitch is a
// /28 and runs out of addresses, then 50 pods are added. Every ADD fails
// with TryAgainLater; the API server gets a handful of Events (repeats are
// counted on one object, new Warning Events per reason are rate-limited),
// the Node says VSwitchIPExhausted in an Event and in ENIPoolReady.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWorld } from "../../cloud/simulator/world.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { type KubeSandbox, kubeSandbox, until } from "./helpers.js";

const PREFIX = `ews${process.pid % 100000}`;

describe("a failure storm: the vSwitch is exhausted and 50 pods are added", () => {
  let k: KubeSandbox;

  beforeAll(async () => {
    const world = parseWorld({
      regionId: "cn-hangzhou",
      credentials: [{ accessKeyId: "LTAI-storm", accessKeySecret: "storm-secret" }],
      vpc: { vpcId: "vpc-storm", cidr: "10.0.0.0/16" },
      vSwitches: [
        { vSwitchId: "vsw-node", zoneId: "cn-hangzhou-k", cidr: "10.0.1.0/24" },
        // 16 addresses, 4 reserved: 12 for ENIs and pods.
        { vSwitchId: "vsw-tiny", zoneId: "cn-hangzhou-k", cidr: "10.0.9.0/28" },
      ],
      securityGroups: ["sg-storm"],
      instanceTypes: [{ instanceTypeId: "ecs.g7.xlarge", eniQuantity: 4, eniPrivateIpAddressQuantity: 10 }],
      instances: [
        {
          instanceId: "i-storm-a",
          instanceType: "ecs.g7.xlarge",
          zoneId: "cn-hangzhou-k",
          vSwitchId: "vsw-node",
          netns: `${PREFIX}-node-a`,
        },
      ],
      latencyMs: { "*": [2, 5], AttachNetworkInterface: 50, DetachNetworkInterface: 50 },
      datapath: { vpcNetns: `${PREFIX}-vpc` },
    });
    k = await kubeSandbox({
      prefix: PREFIX,
      world,
      sets: [
        "eni.vSwitchIds=[vsw-tiny]",
        "pool.minIdle=30",
        "pool.maxIdle=30",
        "pool.allocateTimeoutSeconds=0.3",
        "kubernetes.checkSeconds=1",
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await k?.close();
  }, 60_000);

  it("fills the vSwitch, then 50 failing ADDs make a few Events", async () => {
    const nodeName = k.node.nodeName!;
    const cond = await until(
      "ENIPoolReady False",
      async () => {
        const n = await k.core.readNodeStatus({ name: nodeName });
        const c = n.status?.conditions?.find((x) => x.type === "ENIPoolReady");
        return c?.status === "False" ? c : null;
      },
      60_000,
    );
    expect(cond.reason).toBe("VSwitchIPExhausted");
    expect(cond.message).toContain("vsw-tiny");

    // Take every address the pool has, then 50 more pods, 10 at a time.
    const taken: string[] = [];
    for (let i = 0; ; i++) {
      const r = await k.add({
        name: `fill-${i}`,
        uid: `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`,
      });
      if (r.code !== 0) {
        expect(JSON.parse(r.out)).toMatchObject({ code: 11 });
        break;
      }
      taken.push(r.ip);
      expect(taken.length).toBeLessThanOrEqual(12);
    }
    expect(taken.length).toBeGreaterThan(0);
    const before = await k.stats();
    const codes: number[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const rs = await Promise.all(
        Array.from({ length: 10 }, (_, j) => {
          const n = batch * 10 + j;
          return k.add({ name: `storm-${n}`, uid: `11111111-0000-0000-0000-${String(n).padStart(12, "0")}` });
        }),
      );
      for (const r of rs) {
        expect(r.out, `plugin exit ${r.code} with nothing on stdout`).not.toBe("");
        codes.push((JSON.parse(r.out) as { code: number }).code);
      }
    }
    expect(codes).toEqual(Array(50).fill(11));

    const after = await until("the events to be sent", async () => {
      const s = await k.stats();
      return s.events.created > before.events.created ? s : null;
    });
    // Failed ADDs: at most the per-reason budget of new Events, the rest suppressed.
    const created = after.events.created - before.events.created;
    const suppressed = after.events.suppressed - before.events.suppressed;
    console.log(`50 failing ADDs → ${created} Events created, ${suppressed} suppressed`);
    expect(created).toBeLessThanOrEqual(6);
    expect(created + suppressed).toBeGreaterThanOrEqual(50);

    const list = await k.core.listNamespacedEvent({ namespace: "default" });
    const ours = list.items.filter((e) => e.source?.component === "eniway");
    const failed = ours.filter((e) => e.reason === "AllocIPFailed");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(5);
    // The Event says why: the vSwitch that is out of addresses.
    expect(failed[0]?.message).toMatch(/vsw-tiny has no free addresses/);
    // The cloud's failure on the Node: one Event, counted.
    const exhausted = ours.filter((e) => e.reason === "VSwitchIPExhausted");
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]?.involvedObject.name).toBe(nodeName);
    expect(exhausted[0]?.message).toContain("IpNotEnough");
    expect(ours.length).toBeLessThan(30);
  }, 180_000);
});

describe("attaches that fail: the Node hears it and ENIPoolReady follows the cloud", () => {
  let k: KubeSandbox;
  const P = `ewa${process.pid % 100000}`;

  beforeAll(async () => {
    const world = sandboxWorld(1, P);
    // Every attach fails with a definite (not retried) error until the test clears it.
    world.faults.actions.AttachNetworkInterface = {
      code: "InvalidOperation.AvailabilityZoneMismatch",
      rate: 1,
      count: 0,
      latencyMs: 0,
      afterEffect: false,
    };
    k = await kubeSandbox({ prefix: P, world, sets: ["pool.minIdle=2", "kubernetes.checkSeconds=1"] });
  }, 120_000);

  afterAll(async () => {
    await k?.close();
  }, 60_000);

  it("says AttachENIFailed on the Node, sets CloudAPIErrors, and is ready again once attaches work", async () => {
    const nodeName = k.node.nodeName!;
    const condition = async () =>
      (await k.core.readNodeStatus({ name: nodeName })).status?.conditions?.find(
        (c) => c.type === "ENIPoolReady",
      );
    const failing = await until("ENIPoolReady False", async () => {
      const c = await condition();
      return c?.status === "False" ? c : null;
    });
    expect(failing.reason).toBe("CloudAPIErrors");
    expect(failing.message).toMatch(/^AttachENIFailed: .*InvalidOperation\.AvailabilityZoneMismatch/);
    const events = await until("AttachENIFailed", async () => {
      const e = await k.events("Node", nodeName);
      return e.has("AttachENIFailed") ? e : null;
    });
    expect(events.get("AttachENIFailed")?.objects).toBe(1);

    const put = await fetch(`${k.sb.sim.url}/admin/faults`, { method: "PUT", body: JSON.stringify({}) });
    expect(put.status).toBe(200);
    const ready = await until(
      "ENIPoolReady True",
      async () => {
        const c = await condition();
        return c?.status === "True" ? c : null;
      },
      90_000,
    );
    expect(ready.reason).toBe("PoolReady");
    expect(new Date(ready.lastTransitionTime!).getTime()).toBeGreaterThan(
      new Date(failing.lastTransitionTime!).getTime(),
    );
  }, 150_000);
});
