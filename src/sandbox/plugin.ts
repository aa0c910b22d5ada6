// Running a sandbox node's plugin binary as a runtime does: the CNI
// environment and the node's network configuration on stdin.

import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SandboxNode } from "./sandbox.js";

export interface PluginRun {
  code: number | null;
  /** stdout: the result or the error JSON. */
  out: string;
}

/** The node's conflist as the single-plugin configuration a runtime hands the plugin. */
export async function netconf(node: SandboxNode): Promise<Record<string, unknown>> {
  const c = JSON.parse(await readFile(node.cniConfFile, "utf8")) as {
    cniVersion: string;
    name: string;
    plugins: Record<string, unknown>[];
  };
  return { cniVersion: c.cniVersion, name: c.name, ...c.plugins[0] };
}

/** Runs the plugin with `env` (CNI_PATH and PATH added) and `conf` (default: the node's) on stdin. */
export async function runPlugin(
  node: SandboxNode,
  env: Record<string, string>,
  conf?: Record<string, unknown>,
): Promise<PluginRun> {
  const stdin = JSON.stringify(conf ?? (await netconf(node)));
  return new Promise((resolve) => {
    const child = execFile(join(node.cniBinDir, "eniway"), [], {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_PATH: node.cniBinDir, ...env },
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    // "close", not "exit": the exit can come before the last of stdout has been read.
    child.once("close", (code) => resolve({ code, out }));
    child.stdin?.end(stdin);
  });
}
