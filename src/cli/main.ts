#!/usr/bin/env node

// `eniway`: one binary, a subcommand per part (src/cli/commands.ts), each
// command's module imported only when it runs. Help and the version go to
// stdout with exit 0; an error goes to stderr with exit 1.

import { tolerateClosedOutput } from "../../lib/process.js";
import { type Command, wantsHelp } from "./args.js";
import { COMMANDS } from "./commands.js";
import { overview, usage } from "./usage.js";
import { packageInfo } from "./version.js";

/** What the words name: a command and its arguments, or a group of commands (`eniway sandbox`). */
type Found = { command: Command; args: string[] } | { group: string; members: Command[]; args: string[] };

function find(argv: string[]): Found {
  const command = COMMANDS.find((c) => c.name.split(" ").every((w, i) => argv[i] === w));
  if (command) return { command, args: argv.slice(command.name.split(" ").length) };
  const [group = "", sub] = argv;
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  if (members.length === 0) throw new Error(`unknown command ${JSON.stringify(group)}\nsee eniway --help`);
  if (sub !== undefined && !sub.startsWith("-"))
    throw new Error(`unknown command ${JSON.stringify(`${group} ${sub}`)}\nsee eniway ${group} --help`);
  return { group, members, args: argv.slice(1) };
}

/** A group's commands by their last word: up, down, demo. */
const subcommands = (group: string, members: Command[]): string[] =>
  members.map((c) => c.name.slice(group.length + 1));

function topHelp(): string {
  const info = packageInfo();
  return overview(
    `eniway ${info.version}: ${info.description}\n\nusage: eniway COMMAND [FLAGS]`,
    COMMANDS,
    "eniway COMMAND --help (or eniway help COMMAND) shows a command's flags; eniway --version its version.",
  );
}

function helpOf(found: Found): string {
  if ("command" in found) return usage(found.command);
  return overview(
    `usage: eniway ${found.group} ${subcommands(found.group, found.members).join("|")} [FLAGS]`,
    found.members,
    `eniway ${found.group} COMMAND --help shows a command's flags.`,
  );
}

/** Runs what argv asks for: the exit code (0 while a server it started runs on). */
async function main(argv: string[]): Promise<number> {
  const print = (text: string): number => {
    process.stdout.write(text);
    return 0;
  };
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h") return print(topHelp());
  if (first === "help") return print(rest.length ? helpOf(find(rest)) : topHelp());
  const found = find(first === "--version" ? ["version", ...rest] : argv);
  if (wantsHelp(found.args)) return print(helpOf(found));
  if ("group" in found)
    throw new Error(
      `${found.group} needs a command: ${subcommands(found.group, found.members).join(", ")}\nsee eniway ${found.group} --help`,
    );
  return found.command.run(found.args);
}

tolerateClosedOutput();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`eniway: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
