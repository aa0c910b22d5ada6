// The `eniway` command's flags are strict (node:util parseArgs): an unknown
// flag, a flag without its value and a stray argument each stop the command
// with a message naming them, before it does anything.

import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BUILT } from "../lib/process.js";

const eniway = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BUILT.cli, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe("eniway's flags", () => {
  it.each([
    [["status", "--bogus"], /^eniway: status: Unknown option '--bogus'/],
    [["pods", "--json=yes"], /^eniway: pods: Option '--json' does not take an argument/],
    [["daemon", "--config"], /^eniway: daemon: Option '--config <value>' argument missing/],
    [["sim", "--listen", "127.0.0.1:0", "extra"], /^eniway: sim: Unexpected argument 'extra'/],
    [["sandbox", "demo", "--nodes", "3"], /^eniway: sandbox demo: Unknown option '--nodes'/],
    [["sandbox", "up", "--dir"], /^eniway: sandbox up: Option '--dir <value>' argument missing/],
    [["policy", "default/a", "extra"], /^eniway: policy: expected 1 argument\(s\), got 2/],
  ])("eniway %j stops with a message naming what is wrong", (args, message) => {
    const r = eniway(...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
  });

  it("accepts a boolean --json, a --socket PATH and repeated --set", () => {
    const status = eniway("status", "--json", "--socket", "/nonexistent/eniway.sock");
    expect(status.code).toBe(1);
    expect(status.stderr).toContain("cannot reach the daemon at /nonexistent/eniway.sock");
    const daemon = eniway(
      "daemon",
      "--config",
      "/nonexistent.yaml",
      "--set",
      "pool.minIdle=1",
      "--set",
      "a.b=2",
    );
    expect(daemon.code).toBe(1);
    expect(daemon.stderr).toContain("cannot read config /nonexistent.yaml: ENOENT");
  });
});
