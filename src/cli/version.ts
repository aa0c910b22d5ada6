// The package's name, version and description, from its package.json (as
// the daemon's VERSION is): `eniway --version` and the help's first line.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../lib/process.js";

export interface PackageInfo {
  version: string;
  description: string;
}

/** package.json's version and description. */
export function packageInfo(): PackageInfo {
  return JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as PackageInfo;
}
