// Probes from inside network namespaces: one agent (agent.ts) per namespace
// serves TCP and UDP echo on the given ports and dials on request.

import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Flow } from "../../cni/policy/verdict.js";
import { packageRoot } from "../../lib/process.js";

export interface Agent {
  /** Does a new connection (TCP), an echo (UDP) or a ping (protocol null) get through within 1 s? */
  probe(f: Omit<Flow, "src">): Promise<boolean>;
  child: ChildProcess;
}

export function startAgent(ns: string, ports: number[]): Promise<Agent> {
  const script = join(packageRoot(), "dist", "test", "policy", "agent.js");
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, script, ports.join(",")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const waiting = new Map<number, (ok: boolean) => void>();
  let id = 0;
  return new Promise((ready, fail) => {
    child.on("error", fail);
    child.on("exit", (code) => fail(new Error(`the probe agent in ${ns} ended (${code})`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = JSON.parse(line) as { ready?: boolean; id?: number; ok?: boolean };
      if (m.ready)
        ready({
          child,
          probe: (f) =>
            new Promise((done) => {
              waiting.set(++id, done);
              child.stdin!.write(
                `${JSON.stringify({ id, dst: f.dst, protocol: f.protocol ?? "ICMP", port: f.port })}\n`,
              );
            }),
        });
      else waiting.get(m.id!)?.(m.ok!);
    });
  });
}
