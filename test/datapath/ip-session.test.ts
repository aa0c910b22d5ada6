// The long-lived `ip -batch` session on a real namespace: a device deleted
// and made again under the same name outside the session (a container
// stopped and started: its host veth) is still found by name.

import { execFileSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { createIpSession } from "../../lib/ip.js";

const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const NS = `ewis${process.pid % 100000}`;

describe("ip session", () => {
  sh("ip", "netns", "add", NS);
  const session = createIpSession(`/var/run/netns/${NS}`);
  afterAll(() => {
    session.close();
    sh("ip", "netns", "del", NS);
  });

  it("names a device made again outside the session, not the index it knew", async () => {
    sh("ip", "-n", NS, "link", "add", "d0", "type", "veth", "peer", "name", "d0p");
    await session.batch(["link set dev d0 up", "route replace 10.99.0.1/32 dev d0 scope link"]);
    const first = JSON.parse(sh("ip", "-j", "-n", NS, "link", "show", "d0")) as { ifindex: number }[];
    sh("ip", "-n", NS, "link", "del", "d0");
    sh("ip", "-n", NS, "link", "add", "d0", "type", "veth", "peer", "name", "d0p");
    await session.batch(["link set dev d0 up", "route replace 10.99.0.1/32 dev d0 scope link"]);
    const again = JSON.parse(sh("ip", "-j", "-n", NS, "link", "show", "d0")) as {
      ifindex: number;
      flags: string[];
    }[];
    expect(again[0]!.ifindex).not.toBe(first[0]!.ifindex);
    expect(again[0]!.flags).toContain("UP");
    expect(sh("ip", "-n", NS, "route", "show", "10.99.0.1/32")).toContain("dev d0");
  });

  it("a device that is really gone still fails, naming the line", async () => {
    await expect(session.batch(["link set dev lo up", "link set dev d9 up"])).rejects.toThrow(
      /line 2: .*(No such device|Cannot find device)/,
    );
    // And the session goes on serving.
    await session.batch(["link set dev d0 down"]);
    expect(sh("ip", "-n", NS, "link", "show", "d0")).not.toContain(",UP");
  });
});
