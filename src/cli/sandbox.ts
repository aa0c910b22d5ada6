// `eniway sandbox up|down|demo`: a simulated VPC with a daemon per node on
// this machine (src/sandbox/), in the foreground until SIGINT or SIGTERM.

import { createLogger, type Logger } from "../../lib/log.js";
import { sandboxClusterUp } from "../sandbox/clusterup.js";
import { demo } from "../sandbox/demo.js";
import { sandboxDown, sandboxUp } from "../sandbox/sandbox.js";

export interface SandboxUpFlags {
  dir: string;
  nodes: string;
  world?: string;
  set: string[];
  kubernetes: boolean;
  cluster: boolean;
  "test-images": boolean;
  "dual-stack": boolean;
}

const logger = (): Logger => createLogger({ base: { component: "sandbox" } });

/** Starts it and prints where its parts are; 0 once it is up (it runs until a signal removes it). */
export async function sandboxUpCommand(f: SandboxUpFlags): Promise<number> {
  const nodes = Number(f.nodes);
  if (!Number.isInteger(nodes) || nodes < 1)
    throw new Error(
      `sandbox up: --nodes must be a whole number of at least 1, got ${JSON.stringify(f.nodes)}`,
    );
  const log = logger();
  const common = { dir: f.dir, nodes, ...(f.world ? { worldFile: f.world } : {}), sets: f.set, log };
  const sb = f.cluster
    ? await sandboxClusterUp({ ...common, testImages: f["test-images"], dualStack: f["dual-stack"] })
    : await sandboxUp({ ...common, kubernetes: f.kubernetes });
  process.stdout.write(
    `sandbox up: ${f.dir}/sandbox.json (${sb.file.nodes.length} nodes); Ctrl-C removes it\n`,
  );
  for (const n of sb.file.nodes) process.stdout.write(`${n.name}: dashboard ${n.http}/dashboard\n`);
  if (sb.file.kubernetes)
    process.stdout.write(
      `kubernetes: ${sb.file.kubernetes.server} (kubectl --kubeconfig ${sb.file.kubernetes.kubeconfig})\n`,
    );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    sb.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error("sandbox cleanup failed", { error: String(e) });
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return 0;
}

/** Removes what a crashed sandbox left in the folder. */
export async function sandboxDownCommand(f: { dir: string }): Promise<number> {
  await sandboxDown(f.dir, logger());
  return 0;
}

/** What `npm start` runs. */
export async function sandboxDemoCommand(): Promise<number> {
  await demo(logger());
  return 0;
}
