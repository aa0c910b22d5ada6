// `npm start` runs `eniway sandbox demo`: here on a machine without ping (a
// fresh Debian has no iputils-ping), which this test makes by hiding the
// ping binary in a private mount namespace. The demo must still prove that
// a pod on one node reaches a pod on the other, then clean up on Ctrl-C,
// also when nobody reads its output any more (`npm start | tee log`).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { BUILT, findTool, hasExited, waitExit } from "../../lib/process.js";

const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** In a private mount namespace: /dev/null over each path given, then the CLI as `eniway sandbox demo`. */
const WITHOUT = `const { execFileSync } = require("node:child_process");
const { pathToFileURL } = require("node:url");
const [cli, ...hide] = process.argv.slice(1);
for (const p of hide) execFileSync("mount", ["--bind", "/dev/null", p]);
process.argv = [process.argv[0], cli, "sandbox", "demo"];
import(pathToFileURL(cli).href);`;

describe("npm start (eniway sandbox demo) without ping", () => {
  let demo: ChildProcess | null = null;

  afterAll(async () => {
    if (demo && !hasExited(demo)) {
      demo.kill("SIGKILL");
      await waitExit(demo);
      execFileSync(process.execPath, [BUILT.cli, "sandbox", "down", "--dir", "/tmp/eniway-sandbox"], {
        stdio: "ignore",
      });
    }
  });

  it("shows two nodes' pods reaching each other, and removes everything on Ctrl-C", async () => {
    const ping = findTool("ping");
    demo = spawn(
      "unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "--",
        process.execPath,
        "-e",
        WITHOUT,
        BUILT.cli,
        ...(ping ? [ping] : []),
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TMPDIR: "/tmp" } },
    );
    let out = "";
    let err = "";
    demo.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    demo.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const deadline = Date.now() + 90_000;
    while (!out.includes("Ctrl-C removes everything") && !hasExited(demo) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(hasExited(demo), `the demo ended early:\n${out}\n${err.slice(-2000)}`).toBe(false);

    const line = out.split("\n").find((l) => l.startsWith("cross-node "));
    expect(line, out).toMatch(
      /^cross-node pod-a-1 \(10\.0\.\d+\.\d+\) → pod-b-1 \(10\.0\.\d+\.\d+\): reachable/,
    );
    expect(sh("ip", "netns", "list")).toContain("eniway-pod-b-1");
    // The dashboards it prints answer, and show the pods.
    const urls = [...out.matchAll(/http:\/\/127\.0\.0\.1:\d+\/dashboard/g)].map((m) => m[0]);
    expect(urls, out).toHaveLength(2);
    for (const url of urls) {
      expect((await fetch(url)).status).toBe(200);
      const data = (await (await fetch(`${url}/data`)).json()) as { pool: { assigned: number } };
      expect(data.pool.assigned).toBe(2);
    }

    demo.kill("SIGINT");
    expect(await waitExit(demo, 30_000), "still running 30 s after Ctrl-C").toBe(true);
    expect(demo.exitCode).toBe(0);
    expect(out).toContain("done: namespaces, links, daemons and the simulator are gone");
    expect(sh("ip", "netns", "list")).not.toMatch(/eniway-(vpc|node-|pod-)/);
  }, 150_000);

  it("Ctrl-C on `npm start | tee log` (the reader of its output ends too) still removes everything", async () => {
    // Its own process group, as a terminal's foreground job: Ctrl-C signals the demo, its daemons and tee.
    demo = spawn(process.execPath, [BUILT.cli, "sandbox", "demo"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TMPDIR: "/tmp" },
      detached: true,
    });
    let out = "";
    demo.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    demo.stderr!.resume();
    const deadline = Date.now() + 90_000;
    while (!out.includes("Ctrl-C removes everything") && !hasExited(demo) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(hasExited(demo), `the demo ended early:\n${out}`).toBe(false);
    expect(sh("ip", "netns", "list")).toContain("eniway-pod-b-1");
    // tee is gone: every later write to stdout or stderr fails (EPIPE).
    demo.stdout!.destroy();
    demo.stderr!.destroy();
    process.kill(-demo.pid!, "SIGINT");
    expect(await waitExit(demo, 30_000), "still running 30 s after Ctrl-C").toBe(true);
    expect(demo.exitCode).toBe(0);
    expect(sh("ip", "netns", "list")).not.toMatch(/eniway-(vpc|node-|pod-)/);
    expect(existsSync("/tmp/eniway-sandbox"), "the sandbox's folder").toBe(false);
  }, 150_000);
});
