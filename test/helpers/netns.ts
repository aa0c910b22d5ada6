// Small helpers for tests that make pods out of network namespaces.

import { execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";

/** Runs a program (argument vector) and returns its stdout; throws on failure. */
export const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** Does one ping from namespace `ns` to `ip` get an answer within `waitSeconds`? */
export function tryPing(ns: string, ip: string, waitSeconds = 1): boolean {
  try {
    sh("ip", "netns", "exec", ns, "ping", "-c1", `-W${waitSeconds}`, ip);
    return true;
  } catch {
    return false;
  }
}

/**
 * After a sandbox test: stop the sandbox, delete the namespaces the test
 * made, remove its folder; returns the namespaces still named `prefix…`
 * (none, unless something leaked).
 */
export async function cleanUp(o: {
  sandbox: { stop(): Promise<void> } | undefined;
  namespaces: Iterable<string>;
  dir: string | undefined;
  prefix: string;
}): Promise<string[]> {
  await o.sandbox?.stop();
  for (const ns of o.namespaces) {
    try {
      sh("ip", "netns", "del", ns);
    } catch {}
  }
  if (o.dir) await rm(o.dir, { recursive: true, force: true });
  return sh("ip", "netns", "list")
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(o.prefix));
}
