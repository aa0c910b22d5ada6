// The help, made from the commands' tables (src/cli/args.ts): a command's
// usage with a line per flag, and a list of commands with their one-liners.

import { type Command, type Flag, HELP_FLAG, spelled } from "./args.js";

/** `--set KEY=VALUE ...`, in brackets unless it is required (also when another flag may stand in). */
function synopsisFlag(name: string, f: Flag): string {
  const text = `${spelled(name, f)}${f.multiple ? " ..." : ""}`;
  return f.required ? text : `[${text}]`;
}

/** `eniway sandbox up --dir DIR [--nodes N] ...`. */
export function synopsis(c: Command): string {
  const flags = Object.entries(c.flags).map(([name, f]) => synopsisFlag(name, f));
  return ["eniway", c.name, ...c.operands, ...flags].join(" ");
}

/** What the help adds after a flag's description: its default and its rules. */
function notes(f: Flag): string {
  const n: string[] = [];
  const fallback = f.default ?? f.otherwise;
  if (fallback !== undefined) n.push(`default: ${fallback}`);
  if (f.required === true) n.push("required");
  else if (f.required) n.push(`required unless --${f.required.unless} is given`);
  if (f.needs) n.push(`only with --${f.needs}`);
  if (f.multiple) n.push("repeatable");
  return n.length ? ` (${n.join("; ")})` : "";
}

/** `eniway COMMAND --help`: what it does, its synopsis and a line per flag. */
export function usage(c: Command): string {
  const rows = Object.entries({ ...c.flags, help: HELP_FLAG }).map(([name, f]): [string, string] => [
    `${f.short ? `-${f.short}, ` : ""}${spelled(name, f)}`,
    `${f.description}${notes(f)}`,
  ]);
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    `eniway ${c.name}: ${c.summary}`,
    "",
    `usage: ${synopsis(c)}`,
    "",
    "flags:",
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
    "",
  ].join("\n");
}

/** `eniway --help` (or `eniway sandbox --help`): each command's synopsis and one-liner. */
export function overview(title: string, commands: readonly Command[], footer: string): string {
  return [
    title,
    "",
    "commands:",
    ...commands.flatMap((c) => [`  ${synopsis(c)}`, `      ${c.summary}`]),
    "",
    footer,
    "",
  ].join("\n");
}
