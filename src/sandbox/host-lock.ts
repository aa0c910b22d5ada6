// One cluster sandbox per machine at a time: a cluster sandbox changes the
// host itself (sysctls it restores at its stop, a route to the VPC, paths
// for the kubelets), so a second one started meanwhile would undo the
// first's. A lock file holding the owner's pid; one whose owner is dead is
// taken over. A second start waits for the first to stop.

import { readFile, unlink, writeFile } from "node:fs/promises";
import { pidAlive } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";

export const CLUSTER_LOCK = "/run/eniway-sandbox-cluster.lock";

/** Takes the lock, waiting at most `waitMs` for its owner to let go; resolves to its release. */
export async function takeHostLock(
  file: string,
  waitMs: number,
  waiting: (pid: number) => void = () => {},
): Promise<() => Promise<void>> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return async () => {
        const owner = await readFile(file, "utf8").catch(() => "");
        if (Number(owner.trim()) === process.pid) await unlink(file).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (!Number.isSafeInteger(pid) || pid <= 0 || !pidAlive(pid)) {
      await unlink(file).catch(() => {});
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`another cluster sandbox (pid ${pid}) holds ${file}; stop it first`);
    if (!told) waiting(pid);
    told = true;
    await sleep(500);
  }
}
