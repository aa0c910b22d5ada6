// Child processes and programs: finding a program, the package's own root,
// and waiting for a child's end whether it exited or was killed by a signal.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SYSTEM_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/**
 * The program's path in PATH or the system folders (ip and nsenter
 * live in sbin, which some runtimes leave out of PATH), or null when it is
 * not installed.
 */
export function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(":").filter(Boolean), ...SYSTEM_DIRS];
  return dirs.map((d) => join(d, name)).find((f) => existsSync(f)) ?? null;
}

/** The package root: the nearest folder above this file with a package.json (from lib/ or dist/lib/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dir !== "/") dir = resolve(dir, "..");
  return dir;
}

/** Is a process with this pid alive (signal 0 reaches it)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Is the process still running? A zombie (ended, not yet reaped by its
 * parent, which may be slow to do it) has ended: it holds nothing any more.
 */
export function pidRunning(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Has the child ended? A child killed by a signal has no exit code, only a signal code. */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true once the child has ended (at once if it already has), false if timeoutMs passes first. */
export function waitExit(child: ChildProcess, timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => done(false), timeoutMs) : undefined;
    const done = (ended: boolean): void => {
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve(ended);
    };
    const onExit = (): void => done(true);
    child.once("exit", onExit);
  });
}

/** How a child ended, for messages: "exit 1" or "signal SIGKILL". */
export function endOf(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `exit ${child.exitCode}`;
}

/**
 * Node's flags for the daemon (the chart's command, the image's entrypoint,
 * the sandbox): a young generation of 2 MB instead of V8's 32 MB, and V8's
 * choices that favour size over speed. The daemon allocates little at a
 * time and waits on the kernel and the cloud, so they cost no ADD latency
 * and take about 35 MB off its resident memory: 121 → 86–89 MB with 100
 * pods and churn (`npm run bench -- soak`).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1", "--optimize-for-size"];

/**
 * The built programs (`npm run build`): the `eniway` command, the node's CNI
 * binary (the native forwarder, installed as `eniway`) and the daemon's
 * netlink helper.
 */
export const BUILT = {
  cli: join(packageRoot(), "dist/src/cli/main.js"),
  plugin: join(packageRoot(), "dist/bin/eniway-cni"),
  netlink: join(packageRoot(), "dist/bin/eniway-netlink"),
} as const;

/**
 * Starts a long-running program with stdout and stderr appended to `log`.
 * Detached: in its own process group, and not keeping this process alive.
 */
export async function spawnLogged(
  argv: string[],
  log: string,
  opts: { detached?: boolean } = {},
): Promise<ChildProcess> {
  const out = await open(log, "a");
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", out.fd, out.fd],
    detached: opts.detached ?? false,
  });
  await out.close();
  if (opts.detached) child.unref();
  return child;
}

/** The last lines of a log file, for an error message ("" when there is none). */
export async function logTail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").slice(-lines).join("\n");
}

/**
 * Errors of stdout and stderr (a reader that went away: `eniway … | tee log`
 * ended by the same Ctrl-C) never end the process: a clean-up must finish
 * whether anyone still reads what it says. Called once at the start.
 */
export function tolerateClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
}
