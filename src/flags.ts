// Command-line flags: `--name value` or `--name=value`, repeatable.

export interface Flags {
  values: Record<string, string[]>;
  positional: string[];
}

export function parseFlags(
  args: string[],
  known: readonly string[],
  booleans: readonly string[] = [],
): Flags {
  const flags: Flags = { values: {}, positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) {
      flags.positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (!known.includes(name) && !booleans.includes(name)) throw new Error(`unknown flag --${name}`);
    let value: string | undefined;
    if (booleans.includes(name)) value = eq >= 0 ? a.slice(eq + 1) : "true";
    else value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new Error(`flag --${name} needs a value`);
    flags.values[name] = [...(flags.values[name] ?? []), value];
  }
  return flags;
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new Error(`listen address must be HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1", port };
}
