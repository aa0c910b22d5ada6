#!/usr/bin/env node

// `eniway`: one binary, a subcommand per part.

import { startSimulator } from "../../cloud/simulator/server.js";
import { defaultWorld, loadWorld } from "../../cloud/simulator/world.js";
import { parseListen } from "../../lib/http.js";
import { createLogger, isLevel } from "../../lib/log.js";
import { BUILT, packageRoot, tolerateClosedOutput } from "../../lib/process.js";
import { loadConfig } from "../daemon/config.js";
import { nodeInit } from "../daemon/conflist.js";
import { startDaemon } from "../daemon/daemon.js";
import { buildImage } from "../image/build.js";
import { sandboxClusterUp } from "../sandbox/clusterup.js";
import { demo } from "../sandbox/demo.js";
import { sandboxDown, sandboxUp } from "../sandbox/sandbox.js";
import { flags } from "./args.js";
import { ctl } from "./ctl.js";

const USAGE = `usage:
  eniway sim [--world FILE] [--listen HOST:PORT]   the cloud simulator (ECS, VPC, metadata)
  eniway daemon --config FILE [--set KEY=VALUE ...] the node daemon
  eniway daemon --check-config FILE                 validate a configuration file and exit
  eniway node-init --cni-bin-dir DIR                 the chart's init container: the plugin into DIR, the node's sysctls
  eniway image build [--out FILE] [--name NAME:TAG]  the Dockerfile's image as an OCI archive, without a registry
  eniway sandbox up --dir DIR [--nodes N] [--world FILE] [--set KEY=VALUE ...] [--kubernetes | --cluster [--test-images]]
  eniway sandbox down --dir DIR                      clean up after a crashed sandbox
  eniway sandbox demo                                what npm start runs
  eniway status|pods|enis|mapping|gc [--socket PATH] [--json]
                                                     ask a daemon: its pool, pods, ENIs, IP map; gc resyncs now
  eniway policy NAMESPACE/NAME [--socket PATH] [--json]
                                                     what may reach a pod of this node, and what it may reach
`;

async function sim(args: string[]): Promise<void> {
  const f = flags("sim", args, { world: { type: "string" }, listen: { type: "string" } });
  const log = createLogger({ base: { component: "sim" } });
  const world = f.world ? await loadWorld(f.world) : defaultWorld();
  const { host, port } = parseListen(f.listen ?? "127.0.0.1:0");
  const s = await startSimulator(world, { host, port, logger: log });
  process.stdout.write(`listening on ${s.url}\n`);
  const stop = (): void => {
    s.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

async function daemon(args: string[]): Promise<void> {
  const f = flags("daemon", args, {
    config: { type: "string" },
    "check-config": { type: "string" },
    set: { type: "string", multiple: true },
  });
  const check = f["check-config"];
  if (check !== undefined) {
    // Validate only (the chart's rendered ConfigMap, an operator's edit): the error names the key.
    await loadConfig(check, f.set ?? []);
    process.stdout.write(`${check}: valid\n`);
    return;
  }
  if (!f.config) throw new Error("daemon needs --config FILE (or --check-config FILE)");
  const config = await loadConfig(f.config, f.set ?? []);
  // A signal during start-up exits at once: every cloud call in flight is written ahead.
  const early = (): never => process.exit(0);
  process.once("SIGINT", early);
  process.once("SIGTERM", early);
  const log = createLogger({
    level: isLevel(config.log.level) ? config.log.level : "info",
    base: { component: "daemon" },
  });
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
}

async function image(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== "build") throw new Error(`usage: eniway image build [--out FILE] [--name NAME:TAG]\n${USAGE}`);
  const f = flags("image build", rest, { out: { type: "string" }, name: { type: "string" } });
  const out = f.out ?? "eniway-image.tar";
  const names = await buildImage({ root: packageRoot(), out, ...(f.name ? { name: f.name } : {}) });
  process.stdout.write(`${out}: ${names.join(", ")} (load it with ctr -n k8s.io images import ${out})\n`);
}

async function sandbox(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const log = createLogger({ base: { component: "sandbox" } });
  if (sub === "demo") {
    flags("sandbox demo", rest, {});
    return demo(log);
  }
  const f = flags(`sandbox ${sub ?? ""}`, rest, {
    dir: { type: "string" },
    nodes: { type: "string" },
    world: { type: "string" },
    set: { type: "string", multiple: true },
    kubernetes: { type: "boolean" },
    cluster: { type: "boolean" },
    "test-images": { type: "boolean" },
  });
  const dir = f.dir;
  if (!dir) throw new Error(`sandbox ${sub ?? ""} needs --dir DIR`);
  if (sub === "down") return sandboxDown(dir, log);
  if (sub !== "up") throw new Error(`usage: eniway sandbox up|down|demo\n${USAGE}`);
  const common = {
    dir,
    nodes: Number(f.nodes ?? 2),
    ...(f.world ? { worldFile: f.world } : {}),
    sets: f.set ?? [],
    log,
  };
  if (f["test-images"] && !f.cluster) throw new Error("sandbox up: --test-images needs --cluster");
  const sb = f.cluster
    ? await sandboxClusterUp({ ...common, testImages: f["test-images"] ?? false })
    : await sandboxUp({ ...common, kubernetes: f.kubernetes ?? false });
  process.stdout.write(
    `sandbox up: ${dir}/sandbox.json (${sb.file.nodes.length} nodes); Ctrl-C removes it\n`,
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
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "sim":
      return sim(rest);
    case "daemon":
      return daemon(rest);
    case "sandbox":
      return sandbox(rest);
    case "image":
      return image(rest);
    case "node-init": {
      const f = flags("node-init", rest, { "cni-bin-dir": { type: "string" } });
      const dir = f["cni-bin-dir"];
      if (!dir) throw new Error("node-init needs --cni-bin-dir DIR (the node's CNI bin dir)");
      process.stdout.write(`${await nodeInit(BUILT.plugin, dir)}\n`);
      return;
    }
    case "status":
    case "pods":
    case "enis":
    case "mapping":
    case "gc":
    case "policy":
      process.exitCode = await ctl(cmd, rest, (text) => process.stdout.write(text));
      return;
    case undefined:
    case "help":
    case "--help":
      process.stdout.write(USAGE);
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
  }
}

tolerateClosedOutput();
main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`eniway: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
