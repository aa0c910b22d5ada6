// Build once before the suite: tests that spawn `eniway` run dist/src/cli/main.js,
// and the plugin tests and the sandbox run the compiled dist/bin/eniway-cni.
import { execFileSync } from "node:child_process";

export default function setup(): void {
  if (process.env.ENIWAY_SKIP_BUILD === "1") return;
  execFileSync("npm", ["run", "build"], { stdio: "inherit" });
}
