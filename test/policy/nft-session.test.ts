// The enforcer's nft session against the kernel: one long-lived `nft -i` in a
// node namespace answers each transaction in order, rejects a bad one with
// nft's own error and changes nothing then, and when its process dies the
// next requests still reach the kernel (as `nft -f -`) with nft's errors.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNftSession } from "../../cni/policy/nft-session.js";
import { sh } from "../helpers/netns.js";

const NS = `ewps${process.pid % 10000}`;
const PATH = `/var/run/netns/${NS}`;
const elements = (): string => sh("ip", "netns", "exec", NS, "nft", "list", "set", "inet", "t", "s");
const nftPids = (): number[] =>
  sh("ip", "netns", "pids", NS)
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((pid) => sh("cat", `/proc/${pid}/comm`).trim() === "nft");

describe("the nft session", () => {
  const session = createNftSession(PATH, { restMs: 60_000 });

  beforeAll(() => {
    sh("ip", "netns", "add", NS);
  });
  afterAll(() => {
    session.close();
    sh("ip", "netns", "del", NS);
  });

  it("runs transactions in order, one nft process for all of them", async () => {
    await session.run("table inet t {\n  set s { type ipv4_addr; }\n}\n");
    await Promise.all([1, 2, 3, 4, 5].map((i) => session.run(`add element inet t s { 10.0.0.${i} }\n`)));
    expect(elements()).toMatch(/10\.0\.0\.1, 10\.0\.0\.2,\s+10\.0\.0\.3, 10\.0\.0\.4,\s+10\.0\.0\.5/);
    expect(nftPids()).toHaveLength(1);
  });

  it("a list answers nft's JSON, in order with the changes around it; a list of nothing rejects", async () => {
    const [, listed] = await Promise.all([
      session.run("add element inet t s { 10.0.0.6 }\n"),
      session.list(["list", "set", "inet", "t", "s"]),
      session.run("add element inet t s { 10.0.0.7 }\n"),
    ]);
    const doc = JSON.parse(listed) as { nftables: { set?: { elem?: string[] } }[] };
    const elem = doc.nftables.find((o) => o.set)?.set?.elem ?? [];
    expect(elem).toContain("10.0.0.6");
    expect(elem).not.toContain("10.0.0.7");
    await expect(session.list(["list", "set", "inet", "t", "nosuch"])).rejects.toThrow(/No such file/);
    await expect(session.list(["list", "set", "inet", "t", "s;", "flush"])).rejects.toThrow(
      /not an nft list/,
    );
  });

  it("a bad transaction rejects with nft's error and changes nothing; the next one works", async () => {
    await expect(
      session.run("add element inet t s { 10.0.1.1 }\nadd element inet t nosuch { 10.0.1.2 }\n"),
    ).rejects.toThrow(/No such file or directory[\s\S]*nosuch/);
    expect(elements()).not.toContain("10.0.1.1");
    await session.run("add element inet t s { 10.0.1.3 }\n");
    expect(elements()).toContain("10.0.1.3");
  });

  it("its process killed: the requests that follow run as nft -f, errors and all", async () => {
    const [pid] = nftPids();
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
    await session.run("add element inet t s { 10.0.2.1 }\n");
    expect(await session.list(["list", "set", "inet", "t", "s"])).toContain("10.0.2.1");
    await expect(session.run("add element inet t nosuch { 10.0.2.2 }\n")).rejects.toThrow(/nosuch/);
    expect(elements()).toContain("10.0.2.1");
    expect(nftPids()).toHaveLength(0); // resting: no new session yet
  });
});
