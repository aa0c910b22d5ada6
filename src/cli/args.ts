// Command-line flags with node:util parseArgs, strict: an unknown flag, a
// flag without its value or a stray argument is an error naming it.

import { type ParseArgsConfig, parseArgs } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The flags' values; throws `eniway COMMAND: <what is wrong>` on bad arguments. */
export function flags<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new Error(`${command}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The flags and the positional arguments, of which there must be exactly `want`. */
export function flagsAndArgs<O extends Options>(command: string, args: string[], options: O, want: number) {
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: true });
    if (r.positionals.length !== want)
      throw new Error(
        `expected ${want} argument(s), got ${r.positionals.length}: ${JSON.stringify(r.positionals)}`,
      );
    return r;
  } catch (e) {
    throw new Error(`${command}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
