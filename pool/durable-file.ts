// A lowdb adapter whose every write is atomic and durable (lib/durable.ts).

import { readFile } from "node:fs/promises";
import type { Adapter } from "lowdb";
import { writeDurably } from "../lib/durable.js";

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
