// Replacing a file atomically and durably: the content goes to a temp file in
// the same folder, which is fsynced, renamed over the target, and then the
// folder is fsynced so the rename itself survives a crash. A reader sees the
// old file or the new one, never half of one.

import { copyFile, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Writes `text` to `file`, with exactly `mode`. */
export function writeDurably(file: string, text: string, mode = 0o600): Promise<void> {
  return replaceDurably(file, mode, async (tmp) => {
    const fh = await open(tmp, "w", mode);
    try {
      await fh.writeFile(text, "utf8");
    } finally {
      await fh.close();
    }
  });
}

/** Copies `from` to `file`, with exactly `mode`. */
export function copyDurably(from: string, file: string, mode: number): Promise<void> {
  return replaceDurably(file, mode, (tmp) => copyFile(from, tmp));
}

async function replaceDurably(
  file: string,
  mode: number,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  try {
    await fill(tmp);
    const fh = await open(tmp, "r+");
    try {
      await fh.chmod(mode); // whatever the umask took away
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
