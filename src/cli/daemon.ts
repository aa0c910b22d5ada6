// `eniway daemon`: the node daemon in the foreground until SIGINT or SIGTERM,
// or with --check-config only the validation of a configuration file (which
// does not load the daemon, nor the Kubernetes client it imports).

import { createLogger, isLevel } from "../../lib/log.js";
import { loadConfig } from "../daemon/config.js";

export interface DaemonFlags {
  config?: string;
  "check-config"?: string;
  set: string[];
}

/** 0 once the daemon serves (it runs until a signal), or once the file is valid. */
export async function daemon(f: DaemonFlags): Promise<number> {
  const check = f["check-config"];
  if (check !== undefined) {
    // Validate only (the chart's rendered ConfigMap, an operator's edit): the error names the key.
    await loadConfig(check, f.set);
    process.stdout.write(`${check}: valid\n`);
    return 0;
  }
  if (!f.config) throw new Error("daemon needs --config FILE (or --check-config FILE)");
  const config = await loadConfig(f.config, f.set);
  // A signal during start-up exits at once: every cloud call in flight is written ahead.
  const early = (): never => process.exit(0);
  process.once("SIGINT", early);
  process.once("SIGTERM", early);
  const log = createLogger({
    level: isLevel(config.log.level) ? config.log.level : "info",
    base: { component: "daemon" },
  });
  const { startDaemon } = await import("../daemon/daemon.js");
  const d = await startDaemon(config, log);
  process.off("SIGINT", early);
  process.off("SIGTERM", early);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    const hard = setTimeout(() => {
      log.error("stop took longer than 10 s; exiting");
      process.exit(1);
    }, 10_000);
    d.stop().then(
      () => {
        clearTimeout(hard);
        log.info("stopped");
        process.exit(0);
      },
      (e: unknown) => {
        log.error("stop failed", { error: String(e) });
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  return 0;
}
