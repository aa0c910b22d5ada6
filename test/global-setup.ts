// Build once before the suite: tests that spawn `eniway` run dist/src/cli.js.
import { execFileSync } from "node:child_process";

export default function setup(): void {
  if (process.env.ENIWAY_SKIP_BUILD === "1") return;
  execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
}
