// `npm ci` is clean: every dependency with an install script is declared in
// package.json's allowScripts (npm 11 warns about, and will skip, the others).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { minVersion, satisfies } from "semver";
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

  it("allows bun's, which the netlink helper's build needs", () => {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
      allowScripts?: Record<string, boolean>;
    };
    expect(pkg.allowScripts?.bun).toBe(true);
  });
});

describe("the Node.js floor", () => {
  it("is one every installed package accepts (no EBADENGINE on the oldest Node the README promises)", () => {
    const root = packageRoot();
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { engines: { node: string } };
    const floor = minVersion(pkg.engines.node)?.version ?? "";
    expect(floor).toMatch(/^\d+\.\d+\.\d+$/);
    expect(readFileSync(join(root, "README.md"), "utf8")).toContain(`Node.js ≥ ${floor.replace(/\.0$/, "")}`);
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version?: string; engines?: { node?: string } }>;
    };
    const refusing = Object.entries(lock.packages)
      .filter(([, p]) => p.engines?.node && !satisfies(floor, p.engines.node))
      .map(([path, p]) => `${path}@${p.version}: node ${p.engines?.node}`);
    expect(refusing).toEqual([]);
  });
});
