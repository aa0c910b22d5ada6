// `npm run schema`: writes what is made from the daemon's schema, formatted as
// biome formats it: the `config` part of charts/eniway/values.schema.json
// (chart-schema.ts) and the README's configuration table (config-table.ts).

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../lib/process.js";
import type { JsonSchema } from "../../lib/schema.js";
import { VALUES_SCHEMA, valuesSchema } from "./chart-schema.js";
import { withConfigTable } from "./config-table.js";

/** JSON with every character outside ASCII escaped, so none is invisible in the file. */
function asciiJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2);
  return text.replace(/[^\x20-\x7e\n]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const root = packageRoot();
const file = join(root, VALUES_SCHEMA);
const current = JSON.parse(readFileSync(file, "utf8")) as JsonSchema;
writeFileSync(file, `${asciiJson(valuesSchema(current))}\n`);
const readme = join(root, "README.md");
writeFileSync(readme, withConfigTable(readFileSync(readme, "utf8")));
execFileSync(join(root, "node_modules/.bin/biome"), ["format", "--write", file, readme], {
  stdio: "inherit",
});
console.log(`wrote ${VALUES_SCHEMA} and README.md's configuration table`);
