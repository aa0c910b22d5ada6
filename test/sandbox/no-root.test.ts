// Without root the sandbox says why it cannot run, and makes nothing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLI } from "../daemon-harness.js";

describe("npm start without root", () => {
  it("explains that it needs root", () => {
    if (!existsSync("/usr/bin/setpriv")) throw new Error("setpriv (util-linux) is missing");
    const r = spawnSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, "sandbox", "demo"],
      {
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs root: it creates network namespaces/);
  });
});
