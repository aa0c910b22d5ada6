// The datastore alone, over a real store in a temp dir: each named
// transition, what is on disk once it resolves (read back by a reopened
// store), composed transitions landing in one write, a refused transition
// rolling back its whole write, and the ENI generations reconcile reads.

import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ipv4PrefixAddresses } from "../../lib/net.js";
import { packageRoot } from "../../lib/process.js";
import { createDatastore, type Datastore, TransitionError } from "../../pool/datastore/datastore.js";
import {
  type Owner,
  openStore,
  STORE_BASE_FORMAT,
  STORE_PREFIX_FORMAT,
  type Store,
  type StoreDoc,
} from "../../pool/store.js";

const INSTANCE = "i-ds";
const ENI = { eniId: "eni-1", mac: "00:16:3e:00:00:01", vSwitchId: "vsw-a", primaryIp: "10.0.1.10" };
const NET = { gateway: "10.0.1.253", cidr: "10.0.1.0/24" };
const IPS = ["10.0.1.10", "10.0.1.11", "10.0.1.12"];

const owner = (name: string, netns = `/var/run/netns/${name}`): Owner => ({
  containerId: `c-${name}`,
  ifname: "eth0",
  pod: { namespace: "default", name, uid: `uid-${name}` },
  network: "eniway",
  netns,
});

interface Fixture {
  dir: string;
  store: Store;
  ds: Datastore;
  /** Durable writes so far. */
  writes(): number;
  /** The clock the datastore reads (ms). */
  clock: { t: number };
  /** The file as it is on disk now. */
  onDisk(): Promise<StoreDoc>;
  /** Close the store and open it again: what a restart reads. */
  reopen(): Promise<StoreDoc>;
}

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function fixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "eniway-datastore-test-"));
  dirs.push(dir);
  let writes = 0;
  const store = await openStore(dir, INSTANCE, () => writes++);
  stores.push(store);
  const clock = { t: 1_000 };
  return {
    dir,
    store,
    ds: createDatastore(store, () => clock.t),
    writes: () => writes,
    clock,
    onDisk: async () => JSON.parse(await readFile(join(dir, "pool.json"), "utf8")) as StoreDoc,
    async reopen() {
      await store.close();
      stores.splice(stores.indexOf(store), 1);
      const again = await openStore(dir, INSTANCE);
      stores.push(again);
      return structuredClone(again.data);
    },
  };
}

/** A ready ENI with IPS idle. */
async function readyEni(f: Fixture): Promise<void> {
  await f.ds.write((tx) => {
    tx.eniAttaching(ENI);
    tx.addIdle(ENI.eniId, IPS);
  });
  await f.ds.write((tx) => tx.eniReady(ENI.eniId, NET));
}

/** A refused write: rejects with TransitionError, changes nothing in memory and writes nothing. */
async function expectRefused(f: Fixture, write: () => Promise<unknown>, why: RegExp): Promise<void> {
  const before = structuredClone(f.store.data);
  const writes = f.writes();
  await expect(write()).rejects.toThrow(why);
  await expect(write()).rejects.toBeInstanceOf(TransitionError);
  expect(f.store.data).toEqual(before);
  await f.ds.flush();
  expect(f.writes()).toBe(writes + 1); // the flush's own, nothing before it
}

describe("IP transitions", () => {
  it("assign: an idle IP on a ready ENI goes to its owner, durable when the write resolves", async () => {
    const f = await fixture();
    await readyEni(f);
    f.clock.t = 5_000;
    const rec = await f.ds.write((tx) => tx.assign(IPS[1]!, owner("a")));
    const expected = {
      ip: IPS[1],
      eniId: ENI.eniId,
      phase: "assigned",
      owner: owner("a"),
      assignedAt: 5_000,
    };
    expect(rec).toMatchObject(expected);
    expect((await f.onDisk()).ips[IPS[1]!]).toMatchObject(expected);
    expect((await f.reopen()).ips[IPS[1]!]).toMatchObject(expected);
  });

  it("refuses to assign an IP that is not idle, is unknown, or whose ENI is not ready", async () => {
    const f = await fixture();
    await f.ds.write((tx) => {
      tx.eniAttaching(ENI);
      tx.addIdle(ENI.eniId, IPS);
    });
    await expectRefused(f, () => f.ds.write((tx) => tx.assign(IPS[0]!, owner("a"))), /not ready/);
    await f.ds.write((tx) => tx.eniReady(ENI.eniId, NET));
    await f.ds.write((tx) => tx.assign(IPS[0]!, owner("a")));
    await expectRefused(f, () => f.ds.write((tx) => tx.assign(IPS[0]!, owner("b"))), /it is assigned/);
    await expectRefused(f, () => f.ds.write((tx) => tx.assign("10.9.9.9", owner("b"))), /not in the pool/);
    expect(f.ds.ip(IPS[0]!)?.owner).toEqual(owner("a"));
  });

  it("re-own replaces the owner's namespace path and network, only of an assigned IP", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("a")));
    await f.ds.write((tx) => tx.reown(IPS[1]!, { netns: "/var/run/netns/new", network: "other" }));
    expect((await f.onDisk()).ips[IPS[1]!]?.owner).toEqual({
      ...owner("a"),
      netns: "/var/run/netns/new",
      network: "other",
    });
    await expectRefused(
      f,
      () => f.ds.write((tx) => tx.reown(IPS[2]!, { netns: "", network: "" })),
      /cannot re-own .* idle/,
    );
  });

  it("cool: an assigned IP cools until now + forMs, held for its pod's name; only that name gets it back", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("web-0")));
    f.clock.t = 2_000;
    await f.ds.write((tx) => tx.cool(IPS[1]!, { forMs: 300, heldFor: "default/web-0" }));
    const cooled = { phase: "cooling", coolUntil: 2_300, heldFor: "default/web-0" };
    expect(f.ds.ip(IPS[1]!)).toMatchObject(cooled);
    expect(f.ds.ip(IPS[1]!)?.owner).toBeUndefined();
    expect((await f.reopen()).ips[IPS[1]!]).toMatchObject(cooled);
    await expectRefused(f, () => f.ds.write((tx) => tx.assign(IPS[1]!, owner("web-1"))), /cooling/);
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("web-0")));
    expect(f.ds.ip(IPS[1]!)).toMatchObject({ phase: "assigned" });
    expect(f.ds.ip(IPS[1]!)?.heldFor).toBeUndefined();
    expect(f.ds.ip(IPS[1]!)?.coolUntil).toBeUndefined();
    await expectRefused(f, () => f.ds.write((tx) => tx.cool(IPS[2]!, { forMs: 1, heldFor: null })), /idle/);
  });

  it("expireCooling: IPs whose cooling ended are idle since it ended; the others stay", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => {
      tx.assign(IPS[1]!, owner("a"));
      tx.assign(IPS[2]!, owner("b"));
    });
    await f.ds.write((tx) => {
      tx.cool(IPS[1]!, { forMs: 100, heldFor: "default/a" });
      tx.cool(IPS[2]!, { forMs: 500, heldFor: null });
    });
    f.clock.t = 1_200;
    expect(await f.ds.write((tx) => tx.expireCooling())).toBe(1);
    const disk = await f.onDisk();
    expect(disk.ips[IPS[1]!]).toEqual({ ip: IPS[1], eniId: ENI.eniId, phase: "idle", idleSince: 1_100 });
    expect(disk.ips[IPS[2]!]).toMatchObject({ phase: "cooling", coolUntil: 1_500 });
    // Nothing more to expire: no write at all.
    const writes = f.writes();
    expect(await f.ds.write((tx) => tx.expireCooling())).toBe(0);
    expect(f.writes()).toBe(writes);
  });

  it("addIdle adds only IPs new to the pool (never overwrites a pod's) and only to a known ENI", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("a")));
    f.clock.t = 3_000;
    const added = await f.ds.write((tx) => tx.addIdle(ENI.eniId, [IPS[1]!, "10.0.1.13"]));
    expect(added).toEqual(["10.0.1.13"]);
    expect(f.ds.ip(IPS[1]!)).toMatchObject({ phase: "assigned", owner: owner("a") });
    expect((await f.reopen()).ips["10.0.1.13"]).toEqual({
      ip: "10.0.1.13",
      eniId: ENI.eniId,
      phase: "idle",
      idleSince: 3_000,
    });
    await expectRefused(f, () => f.ds.write((tx) => tx.addIdle("eni-x", ["10.0.2.1"])), /not in the pool/);
  });

  it("takeForRelease takes idle IPs of that ENI only; giveBack and forget end the release", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.assign(IPS[0]!, owner("a")));
    const taken = await f.ds.write((tx) =>
      tx.takeForRelease(ENI.eniId, [IPS[0]!, IPS[1]!, IPS[2]!, "10.9.9.9"]),
    );
    expect(taken).toEqual([IPS[1], IPS[2]]);
    expect((await f.onDisk()).ips[IPS[1]!]?.phase).toBe("releasing");
    await f.ds.write((tx) => {
      tx.giveBack([IPS[1]!]);
      tx.forget([IPS[2]!, IPS[0]!]);
    });
    const disk = await f.reopen();
    expect(disk.ips[IPS[1]!]?.phase).toBe("idle");
    expect(disk.ips[IPS[2]!]).toBeUndefined();
    // forget takes only releasing IPs: the pod's stays.
    expect(disk.ips[IPS[0]!]?.phase).toBe("assigned");
  });

  it("dropIp forgets an IP the cloud no longer has, whatever its phase, and hands back its record", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("a")));
    const dropped = await f.ds.write((tx) => tx.dropIp(IPS[1]!));
    expect(dropped?.owner).toEqual(owner("a"));
    expect((await f.onDisk()).ips[IPS[1]!]).toBeUndefined();
    expect(await f.ds.write((tx) => tx.dropIp(IPS[1]!))).toBeUndefined();
  });
});

describe("prefix transitions", () => {
  const P1 = "10.0.1.64/28";
  const P2 = "10.0.1.80/28";
  const addressesOf = (prefix: string): string[] => ipv4PrefixAddresses(prefix);

  it("addIdlePrefixes adds a new prefix's 16 addresses idle, each with its prefix; a known prefix is left alone", async () => {
    const f = await fixture();
    await readyEni(f);
    f.clock.t = 2_000;
    expect(await f.ds.write((tx) => tx.addIdlePrefixes(ENI.eniId, [P1, P1]))).toEqual([P1]);
    const gen = f.ds.generation(ENI.eniId);
    await f.ds.write((tx) => tx.assign("10.0.1.70", owner("a")));
    // Known already (one of its addresses a pod's): nothing changes, the ENI's generation stays.
    expect(await f.ds.write((tx) => tx.addIdlePrefixes(ENI.eniId, [P1]))).toEqual([]);
    expect(f.ds.generation(ENI.eniId)).toBe(gen);
    const disk = await f.reopen();
    expect(disk.format).toBe(STORE_PREFIX_FORMAT);
    for (const ip of addressesOf(P1))
      expect(disk.ips[ip]).toMatchObject({
        eniId: ENI.eniId,
        prefix: P1,
        phase: ip === "10.0.1.70" ? "assigned" : "idle",
      });
    expect(Object.keys(disk.ips)).toHaveLength(IPS.length + 16);
    await expectRefused(
      f,
      () => f.ds.write((tx) => tx.addIdlePrefixes("eni-other", [P2])),
      /not in the pool/,
    );
  });

  it("takePrefixesForRelease takes a prefix only when all 16 addresses are idle (cooling counts as in use); giveBack and forget end it", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.addIdlePrefixes(ENI.eniId, [P1, P2]));
    await f.ds.write((tx) => tx.assign("10.0.1.81", owner("a")));
    await f.ds.write((tx) => tx.cool("10.0.1.81", { forMs: 1_000, heldFor: null }));
    expect(await f.ds.write((tx) => tx.takePrefixesForRelease(ENI.eniId, [P1, P2]))).toEqual([P1]);
    expect(
      f.ds
        .ips()
        .filter((r) => r.prefix === P1)
        .every((r) => r.phase === "releasing"),
    ).toBe(true);
    expect(f.ds.ips().filter((r) => r.prefix === P2 && r.phase === "idle")).toHaveLength(15);
    // Of another ENI, or released already: nothing.
    expect(await f.ds.write((tx) => tx.takePrefixesForRelease("eni-other", [P2]))).toEqual([]);
    expect(await f.ds.write((tx) => tx.takePrefixesForRelease(ENI.eniId, [P1]))).toEqual([]);
    // A single IP is not a prefix's: takeForRelease leaves a prefix's address alone.
    expect(await f.ds.write((tx) => tx.takeForRelease(ENI.eniId, ["10.0.1.82", IPS[1]!]))).toEqual([IPS[1]]);
    await f.ds.write((tx) => tx.giveBack(addressesOf(P1)));
    expect(
      f.ds
        .ips()
        .filter((r) => r.prefix === P1)
        .every((r) => r.phase === "idle"),
    ).toBe(true);
    await f.ds.write((tx) => tx.takePrefixesForRelease(ENI.eniId, [P1]));
    await f.ds.write((tx) => tx.forget(addressesOf(P1)));
    const disk = await f.reopen();
    expect(addressesOf(P1).filter((ip) => disk.ips[ip])).toEqual([]);
    expect(addressesOf(P2).filter((ip) => disk.ips[ip])).toHaveLength(16);
  });

  it("a prefix's address is assigned, cooled and expired as any IP; dropPrefix forgets all 16 whatever their phase", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.addIdlePrefixes(ENI.eniId, [P1]));
    await f.ds.write((tx) => tx.assign("10.0.1.64", owner("a")));
    const dropped = await f.ds.write((tx) => tx.dropPrefix(ENI.eniId, P1));
    expect(dropped.map((r) => r.ip).sort()).toEqual([...addressesOf(P1)].sort());
    expect(dropped.find((r) => r.ip === "10.0.1.64")?.owner).toEqual(owner("a"));
    expect(await f.ds.write((tx) => tx.dropPrefix(ENI.eniId, P1))).toEqual([]);
    const disk = await f.reopen();
    expect(Object.keys(disk.ips).sort()).toEqual([...IPS].sort());
    // Nothing of a prefix is left: the store is written as the older format again.
    expect(disk.format).toBe(STORE_BASE_FORMAT);
  });

  it("an ENI with prefixes is deletable only with all its addresses idle; deleting takes them all", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.addIdlePrefixes(ENI.eniId, [P1]));
    await f.ds.write((tx) => tx.assign("10.0.1.79", owner("a")));
    expect(f.ds.deletable(ENI.eniId)).toBe(false);
    await f.ds.write((tx) => tx.cool("10.0.1.79", { forMs: 0, heldFor: null }));
    await f.ds.write((tx) => tx.expireCooling());
    expect(f.ds.deletable(ENI.eniId)).toBe(true);
    await f.ds.write((tx) => tx.eniDeleting(ENI.eniId));
    expect(f.ds.ips().every((r) => r.phase === "releasing")).toBe(true);
    expect(await f.ds.write((tx) => tx.dropEni(ENI.eniId))).toHaveLength(IPS.length + 16);
  });
});

describe("ENI transitions", () => {
  it("attaching → ready (its idle IPs idle from then) → deleting (IPs releasing) → dropped with its IPs", async () => {
    const f = await fixture();
    await f.ds.write((tx) => {
      tx.eniAttaching(ENI);
      tx.addIdle(ENI.eniId, IPS);
    });
    expect((await f.onDisk()).enis[ENI.eniId]).toEqual({
      ...ENI,
      phase: "attaching",
      gateway: "",
      cidr: "",
      createdAt: 1_000,
    });
    f.clock.t = 4_000;
    await f.ds.write((tx) => tx.eniReady(ENI.eniId, NET));
    let disk = await f.reopen();
    expect(disk.enis[ENI.eniId]).toMatchObject({ phase: "ready", ...NET, createdAt: 1_000 });
    for (const ip of IPS) expect(disk.ips[ip]?.idleSince).toBe(4_000);
    expect(f.ds.deletable(ENI.eniId)).toBe(true);
    await f.ds.write((tx) => tx.eniDeleting(ENI.eniId));
    disk = await f.onDisk();
    expect(disk.enis[ENI.eniId]?.phase).toBe("deleting");
    for (const ip of IPS) expect(disk.ips[ip]?.phase).toBe("releasing");
    const dropped = await f.ds.write((tx) => tx.dropEni(ENI.eniId));
    expect(dropped.map((r) => r.ip)).toEqual(IPS);
    disk = await f.reopen();
    expect(disk.enis).toEqual({});
    expect(disk.ips).toEqual({});
  });

  it("refuses an ENI it has already, deleting one in use, and making a deleting one ready", async () => {
    const f = await fixture();
    await readyEni(f);
    await expectRefused(f, () => f.ds.write((tx) => tx.eniAttaching(ENI)), /has it already/);
    await expectRefused(f, () => f.ds.write((tx) => tx.adoptEni(ENI, NET)), /has it already/);
    // Ready again (an attach resumed while the first ran): allowed, as it was.
    await f.ds.write((tx) => tx.eniReady(ENI.eniId, NET));
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("a")));
    expect(f.ds.deletable(ENI.eniId)).toBe(false);
    await expectRefused(f, () => f.ds.write((tx) => tx.eniDeleting(ENI.eniId)), /every IP idle/);
    await f.ds.write((tx) => tx.cool(IPS[1]!, { forMs: 0, heldFor: null }));
    await f.ds.write((tx) => tx.expireCooling());
    await f.ds.write((tx) => tx.eniDeleting(ENI.eniId));
    await expectRefused(f, () => f.ds.write((tx) => tx.eniReady(ENI.eniId, NET)), /it is deleting/);
    // An ENI gone meanwhile: ready and attach-failed do nothing.
    const writes = f.writes();
    await f.ds.write((tx) => {
      tx.eniReady("eni-gone", NET);
      tx.attachFailed("eni-gone");
    });
    expect(f.writes()).toBe(writes);
  });

  it("adopts an attached ENI as ready, and an attach that failed leaves its ENI deleting with its IPs as they are", async () => {
    const f = await fixture();
    await f.ds.write((tx) => {
      tx.adoptEni(ENI, NET);
      tx.addIdle(ENI.eniId, IPS);
    });
    expect((await f.onDisk()).enis[ENI.eniId]).toEqual({ ...ENI, phase: "ready", ...NET, createdAt: 1_000 });
    const other = { ...ENI, eniId: "eni-2", mac: "00:16:3e:00:00:02", primaryIp: "10.0.1.20" };
    await f.ds.write((tx) => {
      tx.eniAttaching(other);
      tx.addIdle(other.eniId, ["10.0.1.20"]);
    });
    await f.ds.write((tx) => tx.attachFailed(other.eniId));
    const disk = await f.reopen();
    expect(disk.enis["eni-2"]?.phase).toBe("deleting");
    expect(disk.ips["10.0.1.20"]?.phase).toBe("idle");
  });
});

describe("node transitions", () => {
  it("blocks and unblocks vSwitches, and backs off creates (a longer backoff stays)", async () => {
    const f = await fixture();
    await f.ds.write((tx) => {
      tx.blockVSwitch("vsw-a", 600);
      tx.blockVSwitch("vsw-b", 900);
      tx.backOffCreates(5_000);
    });
    expect(await f.onDisk()).toMatchObject({
      blockedVSwitches: { "vsw-a": 1_600, "vsw-b": 1_900 },
      createBackoffUntil: 6_000,
    });
    await f.ds.write((tx) => {
      tx.unblockVSwitches(["vsw-a", "vsw-unknown"]);
      tx.backOffCreates(1_000);
    });
    expect(await f.reopen()).toMatchObject({
      blockedVSwitches: { "vsw-b": 1_900 },
      createBackoffUntil: 6_000,
    });
    // The view is a copy.
    const blocked = f.ds.blockedVSwitches();
    blocked["vsw-c"] = 1;
    expect(f.ds.blockedVSwitches()).toEqual({ "vsw-b": 1_900 });
  });

  it("begins and ends intents; an intent of the same id is replaced, ending an unknown one does nothing", async () => {
    const f = await fixture();
    const unassign = { id: "unassign-1", kind: "unassign", eniId: ENI.eniId, ips: [IPS[1]!], at: 7 } as const;
    await f.ds.write((tx) => {
      tx.beginIntent({ id: "delete-eni-1", kind: "delete", eniId: ENI.eniId, at: 1 });
      tx.beginIntent({ id: "delete-eni-1", kind: "delete", eniId: ENI.eniId, at: 2 });
      tx.beginIntent(unassign);
    });
    expect((await f.onDisk()).intents).toEqual({
      "delete-eni-1": { id: "delete-eni-1", kind: "delete", eniId: ENI.eniId, at: 2 },
      "unassign-1": unassign,
    });
    await f.ds.write((tx) => {
      tx.endIntent("delete-eni-1");
      tx.endIntent("nothing-1");
    });
    expect((await f.reopen()).intents).toEqual({ "unassign-1": unassign });
  });
});

describe("writes", () => {
  it("composed transitions land in ONE durable write (a created ENI: create intent → attach intent, ENI, IPs)", async () => {
    const f = await fixture();
    const create = {
      id: "create-1",
      kind: "create",
      clientToken: "t",
      vSwitchId: "vsw-a",
      ipCount: 3,
      at: 1,
    } as const;
    await f.ds.write((tx) => tx.beginIntent(create));
    const writes = f.writes();
    await f.ds.write((tx) => {
      tx.endIntent(create.id);
      tx.beginIntent({ id: "attach-eni-1", kind: "attach", eniId: ENI.eniId, at: 2 });
      tx.eniAttaching(ENI);
      tx.addIdle(ENI.eniId, IPS);
    });
    expect(f.writes()).toBe(writes + 1);
    const disk = await f.reopen();
    expect(Object.keys(disk.intents)).toEqual(["attach-eni-1"]);
    expect(disk.enis[ENI.eniId]?.phase).toBe("attaching");
    expect(Object.keys(disk.ips)).toEqual(IPS);
  });

  it("a refused transition undoes the others of its write: nothing of it lands, in memory or on disk", async () => {
    const f = await fixture();
    await readyEni(f);
    await f.ds.write((tx) => tx.assign(IPS[0]!, owner("a")));
    const disk = await f.onDisk();
    await expectRefused(
      f,
      () =>
        f.ds.write((tx) => {
          tx.beginIntent({ id: "delete-eni-1", kind: "delete", eniId: ENI.eniId, at: 1 });
          tx.blockVSwitch("vsw-a", 100);
          tx.backOffCreates(100);
          tx.cool(IPS[0]!, { forMs: 10, heldFor: null });
          tx.dropIp(IPS[2]!);
          tx.eniDeleting(ENI.eniId); // IPS[0] is cooling now: refused
        }),
      /every IP idle/,
    );
    expect(f.ds.generation(ENI.eniId)).toBe(2);
    expect(await f.reopen()).toEqual(disk);
  });

  it("a write's transitions are synchronous: an async compose is refused and undone", async () => {
    const f = await fixture();
    await readyEni(f);
    await expect(
      f.ds.write(async (tx) => {
        tx.assign(IPS[0]!, owner("a"));
      }),
    ).rejects.toBeInstanceOf(TransitionError);
    expect(f.ds.ip(IPS[0]!)?.phase).toBe("idle");
  });

  it("views are read-only snapshots: a record a reader holds does not change under it", async () => {
    const f = await fixture();
    await readyEni(f);
    const held = f.ds.ip(IPS[0]!)!;
    // Never called: the type checker is the test.
    const mutate = (): void => {
      // @ts-expect-error a view's record is read-only
      held.phase = "assigned";
      // @ts-expect-error and so is what it holds
      f.ds.intents()[0]!.at = 0;
    };
    expect(mutate).toBeTypeOf("function");
    await f.ds.write((tx) => tx.assign(IPS[0]!, owner("a")));
    expect(held.phase).toBe("idle");
    expect(f.ds.ip(IPS[0]!)?.phase).toBe("assigned");
  });
});

describe("generations", () => {
  it("count the writes that change an ENI's IPs, phase or intents, never a pod's IP assigned or released", async () => {
    const f = await fixture();
    const mark = f.ds.generations();
    await readyEni(f); // attaching + IPs (one write), ready (another)
    expect(f.ds.generation(ENI.eniId)).toBe(2);
    await f.ds.write((tx) => tx.assign(IPS[1]!, owner("a")));
    await f.ds.write((tx) => tx.reown(IPS[1]!, { netns: "/x", network: "n" }));
    await f.ds.write((tx) => tx.cool(IPS[1]!, { forMs: 0, heldFor: null }));
    await f.ds.write((tx) => tx.expireCooling());
    expect(f.ds.generation(ENI.eniId)).toBe(2);
    await f.ds.write((tx) => tx.addIdle(ENI.eniId, IPS)); // nothing new
    expect(f.ds.generation(ENI.eniId)).toBe(2);
    await f.ds.write((tx) =>
      tx.beginIntent({ id: "assign-1", kind: "assign", clientToken: "t", eniId: ENI.eniId, count: 1, at: 1 }),
    );
    await f.ds.write((tx) => {
      tx.endIntent("assign-1");
      tx.addIdle(ENI.eniId, ["10.0.1.13"]);
    });
    expect(f.ds.generation(ENI.eniId)).toBe(4);
    expect(mark.get(ENI.eniId)).toBeUndefined();
    expect(f.ds.generations().get(ENI.eniId)).toBe(4);
  });
});

describe("the datastore is the only writer", () => {
  it("no production file outside pool/datastore/ writes the store's document", () => {
    const root = packageRoot();
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
      );
    const offenders = ["pool", "src", "cni"]
      .flatMap((d) => files(join(root, d)))
      .map((file) => relative(root, file))
      .filter((file) => !file.startsWith("pool/datastore/") && file !== "pool/store.ts")
      .filter((file) =>
        /\bstore\.(data\b|update\()|\.data\.(ips|enis|intents|blockedVSwitches|createBackoffUntil)\b/.test(
          readFileSync(join(root, file), "utf8"),
        ),
      );
    expect(offenders).toEqual([]);
  });
});
