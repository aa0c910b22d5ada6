// `npm run bench`: figures, printed as a table and as JSON lines.

import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { simThroughput } from "./sim-throughput.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const cli = resolve(here, "../../src/cli.js");

async function main(): Promise<void> {
  console.log("# simulator throughput through pop-core (simulator pinned to one core, 16 concurrent callers)");
  const figures = await simThroughput(cli);
  for (const f of figures) {
    console.log(
      `${f.action.padEnd(28)} ${String(f.perSecond).padStart(6)} calls/s  (${f.calls} calls in ${f.seconds} s, ${f.errors} errors; target >= 500)`,
    );
  }
  console.log(JSON.stringify({ bench: "sim-throughput", figures }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
