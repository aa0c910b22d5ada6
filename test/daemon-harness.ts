// Running real `eniway daemon` processes against an in-process simulator,
// and talking to them over their unix socket.

import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { socketRequest } from "../lib/http.js";
import { BUILT } from "../lib/process.js";

export const CLI = BUILT.cli;

export type { Reply } from "../lib/http.js";

/** One HTTP request over a unix socket; rejects on connection errors and timeouts. */
export const call = socketRequest;

export interface DaemonProcess {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

export async function writeDaemonConfig(
  dir: string,
  simUrl: string,
  instanceId: string,
  extra: object,
): Promise<string> {
  const file = join(dir, "config.json");
  const config = {
    cloud: {
      endpoint: simUrl,
      metadataEndpoint: `${simUrl}/meta/${instanceId}`,
      accessKeyId: "AK",
      accessKeySecret: "SK-crash-secret",
    },
    socket: join(dir, "eniway.sock"),
    stateDir: join(dir, "state"),
    http: { listen: "" },
    // The pool alone: these daemons wire nothing, so the pool's own API (/v1/allocate, /v1/release) serves.
    datapath: { enabled: false },
    ...extra,
  };
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

export function spawnDaemon(configFile: string): DaemonProcess {
  const child = spawn(process.execPath, [CLI, "daemon", "--config", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ENIWAY_LOG_LEVEL: "info" },
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 2_000_000) err = err.slice(-1_000_000);
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, stderr: () => err, exited };
}

export async function waitReady(socket: string, d: DaemonProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void d.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`daemon exited during start-up:\n${d.stderr().slice(-3000)}`);
    const r = await call(socket, "GET", "/readyz", undefined, 1000).catch(() => null);
    if (r?.status === 200) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`daemon not ready after ${timeoutMs} ms:\n${d.stderr().slice(-3000)}`);
}

export async function kill9(d: DaemonProcess): Promise<void> {
  d.child.kill("SIGKILL");
  await d.exited;
}
