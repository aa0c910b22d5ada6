// Build once before the suite: tests that spawn `eniway` run dist/src/cli/main.js,
// the plugin tests and the sandbox run the forwarder dist/bin/eniway-cni, daemons dist/bin/eniway-netlink.
import { execFileSync } from "node:child_process";

export default function setup(): void {
  if (process.env.ENIWAY_SKIP_BUILD === "1") return;
  execFileSync("npm", ["run", "build"], { stdio: "inherit" });
}
