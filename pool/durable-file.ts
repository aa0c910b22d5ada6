// A lowdb adapter that makes each write atomic and durable: the JSON goes to
// a temp file, which is fsynced, renamed over the target, and then the
// folder is fsynced so the rename itself survives a crash.

import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Adapter } from "lowdb";

export function durableJsonFile<T>(file: string, parse: (text: string) => T): Adapter<T> {
  return {
    async read() {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
      return parse(text);
    },
    write: (data) => writeDurably(file, `${JSON.stringify(data)}\n`),
  };
}

export async function writeDurably(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
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
