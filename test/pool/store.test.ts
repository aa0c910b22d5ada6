// The pool's store: durable when update() resolves, serialized and coalesced
// writes, a format version, refusal to open a foreign or broken file, atomic
// writes that leave no temp file, and a file only root can read.

import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { writeDurably } from "../../lib/durable.js";
import {
  openStore,
  STORE_BASE_FORMAT,
  STORE_FORMAT,
  STORE_PREFIX_FORMAT,
  type StoreDoc,
  StoreError,
} from "../../pool/store.js";

/** Every rename the store makes (one per durable write), counted; the real rename runs. */
const renames = vi.hoisted(() => [] as string[]);
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...fs,
    rename: (from: string, to: string) => {
      renames.push(to);
      return fs.rename(from, to);
    },
  };
});
const writesTo = (file: string): number => renames.filter((f) => f === file).length;

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "eniway-store-test-"));
  dirs.push(d);
  return d;
}

const readDoc = async (file: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;

describe("store", () => {
  it("creates its folder and is empty, with the format version, on first open", async () => {
    const dir = join(await tempDir(), "nested", "state");
    const store = await openStore(dir, "i-a");
    expect(store.file).toBe(join(dir, "pool.json"));
    expect(store.data).toMatchObject({
      format: STORE_BASE_FORMAT,
      instanceId: "i-a",
      enis: {},
      ips: {},
      intents: {},
    });
    // Nothing is written until something changes.
    await expect(stat(store.file)).rejects.toMatchObject({ code: "ENOENT" });
    await store.update((d) => {
      d.createBackoffUntil = 1;
    });
    const doc = await readDoc(store.file);
    expect(doc.format).toBe(STORE_BASE_FORMAT);
    expect(doc.instanceId).toBe("i-a");
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it("is durable when update() resolves: the file already holds the mutation", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    await store.update((d) => {
      d.ips["10.0.1.5"] = { ip: "10.0.1.5", eniId: "eni-x", phase: "idle", idleSince: 42 };
    });
    // Read with a fresh reader, not through the store.
    const doc = await readDoc(join(dir, "pool.json"));
    expect(doc.ips).toEqual({ "10.0.1.5": { ip: "10.0.1.5", eniId: "eni-x", phase: "idle", idleSince: 42 } });
    // And a second store opened on the same folder sees it.
    const again = await openStore(dir, "i-a");
    expect(again.data.ips["10.0.1.5"]?.idleSince).toBe(42);
  });

  it("serializes and coalesces writes: 100 concurrent updates, far fewer writes, nothing lost", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    const before = writesTo(store.file);
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store
          .update((d) => {
            d.blockedVSwitches[`vsw-${i}`] = i;
          })
          .then(async () => {
            // When this update resolves, the file on disk holds it.
            const doc = (await readDoc(store.file)) as { blockedVSwitches: Record<string, number> };
            expect(doc.blockedVSwitches[`vsw-${i}`]).toBe(i);
            order.push(i);
          }),
      ),
    );
    const writes = writesTo(store.file) - before;
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThanOrEqual(5);
    expect(order).toHaveLength(100);
    const doc = (await readDoc(store.file)) as { blockedVSwitches: Record<string, number> };
    expect(Object.keys(doc.blockedVSwitches)).toHaveLength(100);
    for (let i = 0; i < 100; i++) expect(doc.blockedVSwitches[`vsw-${i}`]).toBe(i);
  });

  it("a mutation made while a write runs rides on the next write, not the running one", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    const first = store.update((d) => {
      d.createBackoffUntil = 1;
    });
    const second = store.update((d) => {
      d.createBackoffUntil = 2;
    });
    await first;
    await second;
    expect(((await readDoc(store.file)) as { createBackoffUntil: number }).createBackoffUntil).toBe(2);
    // flush() with nothing pending still resolves (after a write of the same state).
    await store.flush();
    expect(((await readDoc(store.file)) as { createBackoffUntil: number }).createBackoffUntil).toBe(2);
  });

  it("leaves no temp file behind and writes the file with mode 0600", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.update((d) => {
          d.createBackoffUntil = i;
        }),
      ),
    );
    expect((await readdir(dir)).sort()).toEqual(["pool.json", "pool.lock"]);
    expect((await stat(store.file)).mode & 0o777).toBe(0o600);
  });

  it("writeDurably replaces the target atomically and removes its temp file", async () => {
    const dir = await tempDir();
    const file = join(dir, "x.json");
    await writeFile(file, "old\n", { mode: 0o644 });
    await writeDurably(file, "new\n");
    expect(await readFile(file, "utf8")).toBe("new\n");
    expect(await readdir(dir)).toEqual(["x.json"]);
    // The new file carries the temp file's 0600, not the old file's mode.
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("a failed write rejects the update and leaves no temp file", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    await store.update(() => {});
    // A folder where the file should go makes the rename fail.
    await rm(store.file);
    await mkdir(store.file);
    await writeFile(join(store.file, "inside"), "x");
    await expect(store.update(() => {})).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(["pool.json", "pool.lock"]);
    // The store keeps working once the obstacle is gone.
    await rm(store.file, { recursive: true });
    await store.update((d) => {
      d.createBackoffUntil = 9;
    });
    expect(((await readDoc(store.file)) as { createBackoffUntil: number }).createBackoffUntil).toBe(9);
  });

  it("removes a temp file a crashed writer left, but not the one of a writer still running", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    await store.update(() => {});
    // A process that has exited: its half-written temp file is garbage.
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => dead.once("exit", r));
    const deadTmp = `.pool.json.${dead.pid}.tmp`;
    // A process still running (our parent): its temp file is a write in progress.
    const liveTmp = `.pool.json.${process.ppid}.tmp`;
    await writeFile(join(dir, deadTmp), "{half");
    await writeFile(join(dir, liveTmp), "{in progress");
    const again = await openStore(dir, "i-a");
    expect(again.data.format).toBe(STORE_BASE_FORMAT);
    expect((await readdir(dir)).sort()).toEqual([liveTmp, "pool.json", "pool.lock"].sort());
  });

  describe("refuses to open a store that is not ours", () => {
    const cases: [string, string, RegExp][] = [
      ["another format", JSON.stringify({ format: 99, instanceId: "i-a" }), /format 99/],
      ["no format", JSON.stringify({ instanceId: "i-a", enis: {} }), /no format version/],
      ["another instance", JSON.stringify({ format: STORE_FORMAT, instanceId: "i-other" }), /i-other/],
      ["corrupt JSON", '{"format": 1, "instanceId": "i-a", "enis": {', /not valid JSON/],
      ["a JSON array", "[1,2,3]", /no format version/],
      ["an empty file", "", /not valid JSON/],
    ];
    for (const [name, text, detail] of cases) {
      it(name, async () => {
        const dir = await tempDir();
        const file = join(dir, "pool.json");
        await writeFile(file, text);
        const err = await openStore(dir, "i-a").then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(StoreError);
        expect((err as Error).message).toContain(file);
        expect((err as Error).message).toMatch(detail);
        // The broken file is left as it was, for a human to look at.
        expect(await readFile(file, "utf8")).toBe(text);
      });
    }
  });

  it("opens a store of this format and instance and keeps its content", async () => {
    const dir = await tempDir();
    const doc = {
      format: STORE_BASE_FORMAT,
      instanceId: "i-a",
      enis: {},
      ips: { "10.0.1.9": { ip: "10.0.1.9", eniId: "eni-1", phase: "idle", idleSince: 5 } },
      intents: {},
      blockedVSwitches: { "vsw-a": 123 },
      createBackoffUntil: 7,
    };
    await writeFile(join(dir, "pool.json"), JSON.stringify(doc));
    const store = await openStore(dir, "i-a");
    expect(store.data).toEqual(doc);
  });

  it("reads a format 1 store as format 2: owners get an unknown network and namespace, written back as 2", async () => {
    const dir = await tempDir();
    const owner = { containerId: "c1", ifname: "eth0", pod: { namespace: "default", name: "p", uid: "u" } };
    const v1 = {
      format: 1,
      instanceId: "i-a",
      enis: {},
      ips: {
        "10.0.1.9": { ip: "10.0.1.9", eniId: "eni-1", phase: "assigned", idleSince: 5, owner, assignedAt: 6 },
        "10.0.1.10": { ip: "10.0.1.10", eniId: "eni-1", phase: "idle", idleSince: 5 },
      },
      intents: {},
      blockedVSwitches: {},
      createBackoffUntil: 0,
    };
    await writeFile(join(dir, "pool.json"), JSON.stringify(v1));
    const store = await openStore(dir, "i-a");
    expect(store.data.format).toBe(STORE_BASE_FORMAT);
    expect(store.data.ips["10.0.1.9"]?.owner).toEqual({ ...owner, network: "", netns: "" });
    expect(store.data.ips["10.0.1.10"]?.owner).toBeUndefined();
    await store.close();
    const written = (await readDoc(store.file)) as unknown as StoreDoc;
    expect(written.format).toBe(2);
    expect(written.ips["10.0.1.9"]?.owner).toEqual({ ...owner, network: "", netns: "" });
  });

  it("is written as format 3 only while it holds a prefix's addresses or an intent about prefixes", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    const prefixIp = {
      ip: "10.0.1.64",
      eniId: "eni-1",
      phase: "idle" as const,
      idleSince: 5,
      prefix: "10.0.1.64/28",
    };
    await store.update((d) => {
      d.ips[prefixIp.ip] = prefixIp;
    });
    expect((await readDoc(store.file)).format).toBe(STORE_PREFIX_FORMAT);
    await store.update((d) => {
      delete d.ips[prefixIp.ip];
      d.intents.a = {
        id: "a",
        kind: "assign",
        clientToken: "t",
        eniId: "eni-1",
        count: 1,
        unit: "prefixes",
        at: 1,
      };
    });
    expect((await readDoc(store.file)).format).toBe(STORE_PREFIX_FORMAT);
    await store.update((d) => {
      d.intents.a = { id: "a", kind: "assign", clientToken: "t", eniId: "eni-1", count: 1, at: 1 };
    });
    expect((await readDoc(store.file)).format).toBe(STORE_BASE_FORMAT);
    await store.update((d) => {
      d.ips[prefixIp.ip] = prefixIp;
    });
    await store.close();
    // A format 3 store opens as it is.
    const again = await openStore(dir, "i-a");
    expect(again.data.format).toBe(STORE_PREFIX_FORMAT);
    expect(again.data.ips[prefixIp.ip]).toEqual(prefixIp);
    // Dual stack's IPv6 pairs and IPv6 intents: format 4 while there are any.
    await again.update((d) => {
      d.ips["10.0.1.5"] = { ip: "10.0.1.5", eniId: "eni-1", phase: "idle", idleSince: 5, ipv6: "fd00::5" };
    });
    expect((await readDoc(again.file)).format).toBe(STORE_FORMAT);
    await again.update((d) => {
      delete d.ips["10.0.1.5"];
      d.intents.b = {
        id: "b",
        kind: "assign",
        clientToken: "t",
        eniId: "eni-1",
        count: 1,
        unit: "ipv6",
        at: 1,
      };
    });
    expect((await readDoc(again.file)).format).toBe(STORE_FORMAT);
    await again.update((d) => {
      delete d.intents.b;
    });
    expect((await readDoc(again.file)).format).toBe(STORE_PREFIX_FORMAT);
    await again.close();
  });

  it("close() flushes, then gives up its own lock; a lock another live process took is left alone", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, "i-a");
    void store.update((d) => {
      d.createBackoffUntil = 9;
    });
    await store.close();
    expect((await readDoc(store.file)).createBackoffUntil).toBe(9);
    expect(await readdir(dir)).toEqual(["pool.json"]);

    const again = await openStore(dir, "i-a");
    await writeFile(join(dir, "pool.lock"), "1\n"); // pid 1 is alive: it took the lock meanwhile
    await again.close();
    expect((await readdir(dir)).sort()).toEqual(["pool.json", "pool.lock"]);
    await expect(openStore(dir, "i-a")).rejects.toThrow(/held by running process 1/);
  });
});
