// `eniway sandbox up` killed with -9 leaves namespaces and daemons behind;
// `eniway sandbox down` removes all of it. A parsed world re-parses unchanged
// (sandbox.json stores it for exactly this).

import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseWorld } from "../../cloud/simulator/world.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { CLI } from "../daemon-harness.js";

const PREFIX = `ewk${process.pid % 100000}`;
const netnsList = (): string => execFileSync("ip", ["netns", "list"]).toString();
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("eniway sandbox down after a crash", () => {
  let dir = "";
  let up: ChildProcess | null = null;

  afterAll(async () => {
    up?.kill("SIGKILL");
    if (dir) spawnSync(process.execPath, [CLI, "sandbox", "down", "--dir", join(dir, "sb")]);
    await rm(dir, { recursive: true, force: true });
    expect(netnsList()).not.toContain(PREFIX);
  });

  it("a parsed world parses again to the same world", () => {
    const w = sandboxWorld(2, PREFIX);
    expect(parseWorld(JSON.parse(JSON.stringify(w)))).toEqual(w);
  });

  it("removes the namespaces, daemons and files a killed sandbox left", async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-down-"));
    const worldFile = join(dir, "world.json");
    await writeFile(worldFile, JSON.stringify(sandboxWorld(1, PREFIX)));
    const sb = join(dir, "sb");
    up = spawn(process.execPath, [CLI, "sandbox", "up", "--dir", sb, "--world", worldFile], {
      stdio: "ignore",
    });
    const file = join(sb, "sandbox.json");
    for (let i = 0; i < 300 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(file), "sandbox.json never appeared").toBe(true);
    const written = JSON.parse(await readFile(file, "utf8")) as {
      pids: number[];
      vpcNetns: string;
      nodes: { netns: string }[];
    };
    expect(written.vpcNetns).toBe(`${PREFIX}-vpc`);
    up.kill("SIGKILL");
    await new Promise((r) => up!.once("exit", r));
    up = null;
    expect(netnsList()).toContain(`${PREFIX}-vpc`);
    expect(written.pids.some(alive)).toBe(true);

    const down = spawnSync(process.execPath, [CLI, "sandbox", "down", "--dir", sb], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(down.status, down.stderr).toBe(0);
    expect(netnsList()).not.toContain(PREFIX);
    for (let i = 0; i < 50 && written.pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(written.pids.filter(alive)).toEqual([]);
    expect(existsSync(sb)).toBe(false);
  }, 60_000);

  it("a sandbox whose daemon refuses its config says the daemon's own error and keeps the log it names", async () => {
    const failDir = await mkdtemp(join(tmpdir(), "eniway-upfail-"));
    try {
      const worldFile = join(failDir, "world.json");
      await writeFile(worldFile, JSON.stringify(sandboxWorld(1, PREFIX)));
      const sb = join(failDir, "sb");
      const r = spawnSync(
        process.execPath,
        [CLI, "sandbox", "up", "--dir", sb, "--world", worldFile, "--set", "pool.minIdle=two"],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(r.status).toBe(1);
      const log = join(sb, "sandbox-a", "daemon.log");
      expect(r.stderr).toContain("daemon ended (exit 1): config");
      expect(r.stderr).toContain('pool.minIdle: must be a number, got "two"');
      expect(r.stderr).toContain(`its log is kept at ${log}`);
      expect(await readFile(log, "utf8")).toContain("pool.minIdle");
      // The config it refused is kept too; everything else is gone: namespaces, the daemon, the plugin, state.
      expect(netnsList()).not.toContain(PREFIX);
      expect(readdirSync(sb, { recursive: true }).sort()).toEqual([
        "sandbox-a",
        join("sandbox-a", "config.json"),
        join("sandbox-a", "daemon.log"),
      ]);
    } finally {
      await rm(failDir, { recursive: true, force: true });
    }
  }, 60_000);
});
