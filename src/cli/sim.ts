// `eniway sim`: the cloud simulator in the foreground until SIGINT or SIGTERM.

import { startSimulator } from "../../cloud/simulator/server.js";
import { defaultWorld, loadWorld } from "../../cloud/simulator/world.js";
import { parseListen } from "../../lib/http.js";
import { createLogger } from "../../lib/log.js";

/** Starts it and prints its URL; 0 once it listens (it runs until a signal). */
export async function sim(f: { world?: string; listen: string }): Promise<number> {
  const log = createLogger({ base: { component: "sim" } });
  const world = f.world ? await loadWorld(f.world) : defaultWorld();
  const { host, port } = parseListen(f.listen);
  const s = await startSimulator(world, { host, port, logger: log });
  process.stdout.write(`listening on ${s.url}\n`);
  const stop = (): void => {
    s.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return 0;
}
