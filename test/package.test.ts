// `npm ci` is clean: every dependency with an install script is declared in
// package.json's allowScripts (npm 11 warns about, and will skip, the others).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../lib/process.js";

describe("package.json", () => {
  it("declares every install script the dependencies have (npm install-scripts ls)", () => {
    const r = spawnSync("npm", ["install-scripts", "ls"], {
      cwd: packageRoot(),
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain("No packages with unreviewed install scripts");
  });

  it("allows bun's, which the plugin's build needs", () => {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
      allowScripts?: Record<string, boolean>;
    };
    expect(pkg.allowScripts?.bun).toBe(true);
  });
});
