// A command and its flags, stated once in a table: node:util parseArgs's
// options and the help's lines (src/cli/usage.ts) are both made from it.
// Parsing is strict: an unknown flag, a flag without its value, a stray
// argument or a missing required flag is an error naming it.

import { type ParseArgsConfig, parseArgs } from "node:util";

/** One flag: what parseArgs needs, and what the help says about it. */
export interface Flag {
  type: "string" | "boolean";
  /** What it means, for the help. */
  description: string;
  /** The value's placeholder in the help (string flags): FILE, DIR, N. */
  value?: string;
  /** A one-letter alias: -h. */
  short?: string;
  /** Repeatable: each value is kept, in a list that is empty when it is not given. */
  multiple?: true;
  /** A string flag's value when it is not given (a boolean's is false). */
  default?: string;
  /** What the command does when it is not given, for the help, when that is no value: "a demo world". */
  otherwise?: string;
  /** The command stops without it, unless the flag named by `unless` is given instead. */
  required?: true | { unless: string };
  /** Allowed only together with this other flag. */
  needs?: string;
}

export type Flags = Readonly<Record<string, Flag>>;

/** Every command takes it; it is in every help, and the help is printed instead of running. */
export const HELP_FLAG: Flag = { type: "boolean", short: "h", description: "print this help and exit" };

type ValueOf<G extends Flag> = G["type"] extends "boolean"
  ? boolean
  : G extends { multiple: true }
    ? string[]
    : string;
/** Booleans, lists and strings with a default or required outright always have a value. */
type Always<G extends Flag> = G extends
  | { type: "boolean" }
  | { multiple: true }
  | { default: string }
  | { required: true }
  ? true
  : false;

/** The parsed values of a table of flags, typed from the table. */
export type Values<F extends Flags> = {
  [K in keyof F as Always<F[K]> extends true ? K : never]: ValueOf<F[K]>;
} & { [K in keyof F as Always<F[K]> extends true ? never : K]?: ValueOf<F[K]> };

/** A subcommand of `eniway`. */
export interface Command {
  /** The words that name it: "sandbox up". */
  name: string;
  /** One line on what it does. */
  summary: string;
  flags: Flags;
  /** Its positional arguments' placeholders, each required: ["NAMESPACE/NAME"]. */
  operands: readonly string[];
  /** Parses the arguments, loads the command's module and runs it: the exit code (0 once a server is up). */
  run(args: string[]): Promise<number>;
}

/** A command from its table, its `run` getting values typed from the table. */
export function command<const F extends Flags>(spec: {
  name: string;
  summary: string;
  flags: F;
  operands?: readonly string[];
  run: (values: Values<F>, operands: string[]) => Promise<number>;
}): Command {
  const operands = spec.operands ?? [];
  return {
    name: spec.name,
    summary: spec.summary,
    flags: spec.flags,
    operands,
    run: (args) => {
      const parsed = parse(spec.name, spec.flags, operands, args);
      return spec.run(parsed.values, parsed.operands);
    },
  };
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs's options for a table, with --help and the defaults (false for booleans, [] for lists). */
export function parseOptions(flags: Flags): Options {
  const entries = Object.entries({ ...flags, help: HELP_FLAG }).map(([name, f]) => {
    const fallback = f.multiple ? [] : f.type === "boolean" ? false : f.default;
    return [
      name,
      {
        type: f.type,
        ...(f.short ? { short: f.short } : {}),
        ...(f.multiple ? { multiple: true } : {}),
        ...(fallback !== undefined ? { default: fallback } : {}),
      },
    ];
  });
  return Object.fromEntries(entries) as Options;
}

/** The values and operands; throws `COMMAND: what is wrong` and where the usage is. */
export function parse<F extends Flags>(
  name: string,
  flags: F,
  operands: readonly string[],
  args: string[],
): { values: Values<F>; operands: string[] } {
  try {
    const r = parseArgs({
      args,
      options: parseOptions(flags),
      strict: true,
      allowPositionals: operands.length > 0,
    });
    if (r.positionals.length !== operands.length)
      throw new Error(
        `expected ${operands.length} argument(s), got ${r.positionals.length}: ${JSON.stringify(r.positionals)}`,
      );
    checkRequired(flags, r.values);
    return { values: r.values as Values<F>, operands: r.positionals };
  } catch (e) {
    throw new Error(`${name}: ${e instanceof Error ? e.message : String(e)}\nsee eniway ${name} --help`);
  }
}

/** Was a flag given? (Booleans default to false and lists to [].) */
const given = (v: unknown): boolean =>
  v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0);

/** `--dir DIR`, `--json`: a flag as the help and the messages write it. */
export const spelled = (name: string, f: Flag): string =>
  f.type === "string" ? `--${name} ${f.value ?? "VALUE"}` : `--${name}`;

function checkRequired(flags: Flags, values: Record<string, unknown>): void {
  for (const [name, f] of Object.entries(flags)) {
    const unless = typeof f.required === "object" ? f.required.unless : undefined;
    if (f.required && !given(values[name]) && !(unless && given(values[unless])))
      throw new Error(`needs ${spelled(name, f)}${unless ? ` (or --${unless})` : ""}`);
    if (f.needs && given(values[name]) && !given(values[f.needs]))
      throw new Error(`--${name} needs --${f.needs}`);
  }
}

/** Do the arguments ask for help (-h or --help anywhere before `--`)? Help wins over every other error. */
export function wantsHelp(args: string[]): boolean {
  const { values } = parseArgs({
    args,
    options: { help: { type: "boolean", short: "h" } },
    strict: false,
    allowPositionals: true,
  });
  return values.help === true;
}
