#!/usr/bin/env node
// `eniway`: one binary, a subcommand per part.

import { startSimulator } from "../cloud/simulator/server.js";
import { defaultWorld, loadWorld } from "../cloud/simulator/world.js";
import { createLogger } from "./log.js";

const USAGE = `usage:
  eniway sim [--world FILE] [--listen HOST:PORT]   the cloud simulator (ECS, VPC, metadata)
`;

export interface Flags {
  values: Record<string, string[]>;
  positional: string[];
}

export function parseFlags(args: string[], known: readonly string[]): Flags {
  const flags: Flags = { values: {}, positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) {
      flags.positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (!known.includes(name)) throw new Error(`unknown flag --${name}`);
    const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new Error(`flag --${name} needs a value`);
    flags.values[name] = [...(flags.values[name] ?? []), value];
  }
  return flags;
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new Error(`--listen must be HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1", port };
}

async function sim(args: string[]): Promise<void> {
  const flags = parseFlags(args, ["world", "listen"]);
  const log = createLogger({ base: { component: "sim" } });
  const file = flags.values.world?.[0];
  const world = file ? await loadWorld(file) : defaultWorld();
  const { host, port } = parseListen(flags.values.listen?.[0] ?? "127.0.0.1:0");
  const s = await startSimulator(world, { host, port, logger: log });
  process.stdout.write(`listening on ${s.url}\n`);
  const stop = (): void => {
    s.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "sim":
      return sim(rest);
    case undefined:
    case "help":
    case "--help":
      process.stdout.write(USAGE);
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`eniway: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
