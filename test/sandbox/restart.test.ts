// A sandbox node whose daemon dies: `eniway sandbox up` as a user runs it,
// the daemon killed with SIGKILL and started again by hand. CHECK of a
// healthy pod passes at once after the restart (the ENI devices are found
// before the daemon is ready, not at the first drift repair), and the
// sandbox still stops on SIGTERM although one of its daemons died by a
// signal.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT, hasExited, pidAlive, waitExit } from "../../lib/process.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type SandboxFile, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { call } from "../daemon-harness.js";

const PREFIX = `ewr${process.pid % 100000}`;
const POD_NS = `${PREFIX}-pod`;
const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("a sandbox whose daemon was killed", () => {
  let dir: string;
  let sandbox: ChildProcess;
  let sandboxOut = "";
  let file: SandboxFile;
  let daemon: ChildProcess | null = null;
  let daemonErr = "";
  let podResult: Record<string, unknown>;

  const podEnv = (command: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: "ctr-restart",
    CNI_NETNS: `/var/run/netns/${POD_NS}`,
    CNI_IFNAME: "eth0",
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-restart-"));
    const worldFile = join(dir, "world.json");
    await writeFile(worldFile, JSON.stringify(sandboxWorld(1, PREFIX)));
    // Drift repair far away: only the start-up can have found the ENI devices.
    sandbox = spawn(
      process.execPath,
      [
        BUILT.cli,
        "sandbox",
        "up",
        "--dir",
        join(dir, "sb"),
        "--world",
        worldFile,
        "--set",
        "datapath.repairSeconds=3600",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    sandbox.stdout!.on("data", (d: Buffer) => {
      sandboxOut += d.toString();
    });
    sandbox.stderr!.resume();
    await until("the sandbox", () => sandboxOut.includes("sandbox up:") || hasExited(sandbox), 90_000);
    expect(hasExited(sandbox), "the sandbox exited during start-up").toBe(false);
    file = JSON.parse(await readFile(join(dir, "sb", "sandbox.json"), "utf8")) as SandboxFile;
    sh("ip", "netns", "add", POD_NS);
  }, 120_000);

  afterAll(async () => {
    if (daemon && !hasExited(daemon)) daemon.kill("SIGKILL");
    if (sandbox && !hasExited(sandbox)) {
      sandbox.kill("SIGKILL");
      await waitExit(sandbox);
      execFileSync(process.execPath, [BUILT.cli, "sandbox", "down", "--dir", join(dir, "sb")], {
        stdio: "ignore",
      });
    }
    try {
      sh("ip", "netns", "del", POD_NS);
    } catch {}
    await rm(dir, { recursive: true, force: true });
    expect(sh("ip", "netns", "list")).not.toContain(PREFIX);
  });

  it("CHECK of a healthy pod passes right after the daemon restarts", async () => {
    const node = file.nodes[0]!;
    const add = await runPlugin(node, podEnv("ADD"));
    expect(add.code, add.out).toBe(0);
    podResult = JSON.parse(add.out) as Record<string, unknown>;

    const pid = file.pids[0]!;
    process.kill(pid, "SIGKILL");
    await until("the daemon's end", () => !pidAlive(pid));

    daemon = spawn(
      process.execPath,
      [BUILT.cli, "daemon", "--config", join(dir, "sb", node.name, "config.json")],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    daemon.stderr!.on("data", (d: Buffer) => {
      daemonErr += d.toString();
    });
    await until("the restarted daemon", async () => {
      if (hasExited(daemon!)) throw new Error(`the daemon exited:\n${daemonErr.slice(-2000)}`);
      return (await call(node.socket, "GET", "/readyz", undefined, 1000).catch(() => null))?.status === 200;
    });

    const check = await runPlugin(node, podEnv("CHECK"), { ...(await netconf(node)), prevResult: podResult });
    expect(check.code, check.out).toBe(0);
    expect(check.out).toBe("");
  });

  it("the sandbox stops on SIGTERM although one of its daemons died by a signal", async () => {
    const node = file.nodes[0]!;
    const del = await runPlugin(node, podEnv("DEL"));
    expect(del.code, del.out).toBe(0);
    daemon!.kill("SIGTERM");
    await waitExit(daemon!);

    sandbox.kill("SIGTERM");
    expect(await waitExit(sandbox, 20_000), "still running 20 s after SIGTERM").toBe(true);
    expect(sandbox.exitCode).toBe(0);
    expect(sh("ip", "netns", "list")).not.toContain(`${PREFIX}-node`);
  });
});
