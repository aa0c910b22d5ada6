// Fixtures for the datapath tests: a per-run name prefix (parallel runs never
// collide), worlds whose namespaces carry it, and small wrappers around `ip`
// and `ping` run with argument vectors.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import { parseWorld, type World } from "../../cloud/simulator/world.js";
import { worldJson, ZONE } from "../helpers/sim.js";

/** e.g. "ewt-3fa9c1": every namespace a test makes starts with it. */
export const RUN = `ewt-${randomBytes(3).toString("hex")}`;
export const VPC_NS = `${RUN}-vpc`;
export const NS_A = `${RUN}-a`;
export const NS_B = `${RUN}-b`;
export const GW = "10.0.1.253";

export function dpWorld(over: Record<string, unknown> = {}): World {
  return parseWorld(
    worldJson({
      datapath: { vpcNetns: VPC_NS },
      instances: [
        { instanceId: "i-a", instanceType: "ecs.t.small", zoneId: ZONE, vSwitchId: "vsw-a", netns: NS_A },
        { instanceId: "i-b", instanceType: "ecs.t.big", zoneId: ZONE, vSwitchId: "vsw-a", netns: NS_B },
      ],
      ...over,
    }),
  );
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function exec(file: string, args: string[], input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(file, args, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** `ip ARGS` that must succeed; returns stdout. */
export async function ip(...args: string[]): Promise<string> {
  const r = await exec("ip", args);
  expect(r.code, `ip ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** `ip -n NS -j ARGS` parsed. */
export async function ipJson<T = Record<string, unknown>>(netns: string, ...args: string[]): Promise<T[]> {
  const out = await ip("-n", netns, "-j", ...args);
  return JSON.parse(out || "[]") as T[];
}

/** `ip -n NS -batch -` that must succeed. */
export async function ipBatchIn(netns: string, lines: string[]): Promise<void> {
  const r = await exec("ip", ["-n", netns, "-batch", "-"], `${lines.join("\n")}\n`);
  expect(r.code, `ip -n ${netns} -batch: ${r.stderr}`).toBe(0);
}

export interface Link {
  ifname: string;
  address: string;
  flags: string[];
  operstate: string;
}

export const links = (netns: string): Promise<Link[]> => ipJson<Link>(netns, "link", "show");

export interface Ping {
  ok: boolean;
  ttl?: number;
  out: string;
}

/** One ping from inside a namespace, optionally from a given source address. */
export async function ping(netns: string, dst: string, from?: string): Promise<Ping> {
  const r = await exec("ip", [
    "netns",
    "exec",
    netns,
    "ping",
    "-n",
    "-c1",
    "-W1",
    ...(from ? ["-I", from] : []),
    dst,
  ]);
  const ttl = /ttl=(\d+)/.exec(r.stdout);
  return { ok: r.code === 0, out: r.stdout + r.stderr, ...(ttl ? { ttl: Number(ttl[1]) } : {}) };
}

/**
 * IPv4 packets the router received but neither forwarded nor took for itself:
 * the ones its source check (the blackhole rules) dropped. Monotonic.
 */
export async function rpFilterDrops(netns = VPC_NS): Promise<number> {
  const r = await exec("ip", ["netns", "exec", netns, "cat", "/proc/net/snmp"]);
  expect(r.code, r.stderr).toBe(0);
  const rows = r.stdout.trim().split("\n");
  for (let i = 0; i + 1 < rows.length; i += 2) {
    const keys = rows[i]!.split(/\s+/);
    const values = rows[i + 1]!.split(/\s+/).map(Number);
    if (keys[0] !== "Ip:") continue;
    const v = (k: string): number => values[keys.indexOf(k)] ?? 0;
    return v("InReceives") - v("ForwDatagrams") - v("InDelivers");
  }
  throw new Error("no Ip counters in /proc/net/snmp");
}

/** The named namespaces of this run that exist. */
export async function ourNetns(): Promise<string[]> {
  const out = await ip("netns", "list");
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.includes(RUN))
    .sort();
}

/** Starts simulators and stops every one of them after each test; then nothing of this run may be left. */
export function dpHarness(
  afterEach: (fn: () => Promise<void>) => void,
  afterAll: (fn: () => Promise<void>) => void,
): { start(world?: World): Promise<Simulator> } {
  const running: Simulator[] = [];
  const leftovers = async (): Promise<string[]> => {
    const left = await ourNetns();
    // Clean up even when the test failed, then report.
    for (const n of left) await exec("ip", ["netns", "del", n]);
    return left;
  };
  afterEach(async () => {
    await Promise.allSettled(running.splice(0).map((s) => s.stop()));
    expect(await leftovers(), "namespaces left after the test").toEqual([]);
  });
  afterAll(async () => {
    expect(await leftovers(), "namespaces left after the file").toEqual([]);
  });
  return {
    async start(world = dpWorld()) {
      const sim = await startSimulator(world);
      running.push(sim);
      return sim;
    },
  };
}
