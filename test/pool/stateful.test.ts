// StatefulSet pods keep their IP: a release with `hold` cools the IP for the
// statefulHold and keeps it for the pod that returns under the same
// namespace and name (another UID, another container), across a daemon
// restart too; nobody else gets it; when the hold ends it is idle again.

import { describe, expect, it } from "vitest";
import { harness, sleep, storeOnDisk, waitFor } from "./helpers.js";

const h = harness();
const web0 = (uid: string, containerId: string) => ({
  containerId,
  ifname: "eth0",
  pod: { namespace: "db", name: "web-0", uid },
});

describe("StatefulSet IP hold", () => {
  it("gives the held IP back to the same name only, after a restart too, until the hold ends", async () => {
    const sim = await h.sim();
    const targets = { minIdle: 2, maxIdle: 4, cooldownMs: 100, statefulHoldMs: 1500 };
    const first = await h.node(sim, { targets });
    await waitFor("a filled pool", () => first.pool.summary().idle >= 2);
    const a = await first.pool.allocate(web0("u1", "c-a"));
    const released = await first.pool.release("c-a", "eth0", { hold: true });
    expect(released?.ip).toBe(a.ip);
    await first.store.flush();
    const disk = await storeOnDisk(first.stateDir);
    expect(disk.ips[a.ip]).toMatchObject({ phase: "cooling", heldFor: "db/web-0" });
    expect(disk.ips[a.ip]!.coolUntil! - Date.now()).toBeGreaterThan(1000); // the hold, not the 100 ms cooldown
    await first.stop();

    const second = await h.node(sim, { stateDir: first.stateDir, targets });
    // Another pod does not get it, even past the cooldown.
    await sleep(200);
    expect(second.store.data.ips[a.ip]?.phase).toBe("cooling");
    const other = await second.pool.allocate({
      containerId: "c-x",
      ifname: "eth0",
      pod: { namespace: "db", name: "web-1", uid: "u9" },
    });
    expect(other.ip).not.toBe(a.ip);
    const back = await second.pool.allocate(web0("u2", "c-b"));
    expect(back.ip).toBe(a.ip);
    expect(second.store.data.ips[a.ip]?.heldFor).toBeUndefined();

    // Released without hold: an ordinary cooldown, then idle for anyone.
    await second.pool.release("c-b", "eth0");
    expect(second.store.data.ips[a.ip]).toMatchObject({ phase: "cooling" });
    expect(second.store.data.ips[a.ip]?.heldFor).toBeUndefined();

    // Held again, and left: idle once the hold ends.
    const c = await second.pool.allocate(web0("u3", "c-c"));
    await second.pool.release("c-c", "eth0", { hold: true });
    await waitFor("the hold to end", () => second.store.data.ips[c.ip]?.phase === "idle", 5000);
    expect(second.store.data.ips[c.ip]?.heldFor).toBeUndefined();
  });
});
