// The release of IPs whose pod's namespace is gone (src/daemon/netns-gone.ts):
// the pure decision, and how a path is judged, on real namespaces.

import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type NetnsState, netnsGoneReleases, netnsState } from "../../src/daemon/netns-gone.js";

const NS = `ewng${process.pid % 100000}`;

describe("netnsGoneReleases", () => {
  const a = (containerId: string, netns: string) => ({ containerId, ifname: "eth0", netns });
  const state = new Map<string, NetnsState>([
    ["/run/netns/live", "present"],
    ["/run/netns/dead", "gone"],
    ["/proc/77/ns/net", "unknown"],
  ]);
  const decide = (o: { now: number; missingSince?: Map<string, number>; busy?: string[] }) =>
    netnsGoneReleases({
      allocations: [
        a("live", "/run/netns/live"),
        a("dead", "/run/netns/dead"),
        a("proc", "/proc/77/ns/net"),
        a("old", ""),
        a("busy", "/run/netns/dead"),
      ],
      state,
      busy: (x) => (o.busy ?? ["busy"]).includes(x.containerId),
      missingSince: o.missingSince ?? new Map(),
      now: o.now,
      graceMs: 30_000,
    });

  it("starts the grace when a namespace is first seen gone, and releases after it", () => {
    const first = decide({ now: 1000 });
    expect(first.release).toEqual([]);
    expect([...first.missingSince]).toEqual([["dead/eth0", 1000]]);
    expect(decide({ now: 30_999, missingSince: first.missingSince }).release).toEqual([]);
    expect(decide({ now: 31_000, missingSince: first.missingSince }).release).toEqual(["dead/eth0"]);
  });

  it("never releases for a namespace that exists, one it cannot judge, an unknown path or a busy attachment", () => {
    const long = new Map([
      ["live/eth0", 0],
      ["proc/eth0", 0],
      ["old/eth0", 0],
      ["busy/eth0", 0],
    ]);
    const r = decide({ now: 1_000_000, missingSince: long });
    expect(r.release).toEqual([]);
    // A namespace back (or an ADD running) forgets the grace: it starts again from nothing.
    expect(r.missingSince.has("live/eth0")).toBe(false);
    expect(r.missingSince.has("busy/eth0")).toBe(false);
    expect(decide({ now: 10, busy: [] }).missingSince.get("busy/eth0")).toBe(10);
  });
});

describe("netnsState (real paths)", () => {
  afterAll(() => {
    try {
      execFileSync("ip", ["netns", "del", NS], { stdio: "ignore" });
    } catch {}
  });

  it("a namespace is present while it exists and gone once deleted", async () => {
    execFileSync("ip", ["netns", "add", NS]);
    expect(await netnsState(`/var/run/netns/${NS}`)).toBe("present");
    execFileSync("ip", ["netns", "del", NS]);
    expect(await netnsState(`/var/run/netns/${NS}`)).toBe("gone");
  });

  it("a path whose folder is missing, or under a process that ended, is unknown, never gone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "eniway-netns-"));
    try {
      await writeFile(join(dir, "file"), "");
      expect(await netnsState(join(dir, "file"))).toBe("present");
      expect(await netnsState(join(dir, "nothing"))).toBe("gone");
      expect(await netnsState(join(dir, "no-folder", "ns"))).toBe("unknown");
      expect(await netnsState("/proc/999999999/ns/net")).toBe("unknown");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
