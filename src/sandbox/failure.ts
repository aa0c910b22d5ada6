// A sandbox that fails to start says why in the words of the part that
// failed, and keeps the logs it names: the clean-up removes everything else.

import { readdir, readFile, rm } from "node:fs/promises";
import { join, relative, sep } from "node:path";

/** A part of the sandbox did not start; `logs` are the files the message names (kept). */
export class StartFailed extends Error {
  override name = "StartFailed";
  constructor(
    message: string,
    readonly logs: string[],
  ) {
    super(message);
  }
}

/**
 * What a program said of its own failure in its log: the last line it
 * wrote as an error (`eniway: …` from the CLI, or a JSON log line at level
 * error), else its last line; "" when the log is empty.
 */
export async function ownError(logFile: string): Promise<string> {
  const lines = (await readFile(logFile, "utf8").catch(() => ""))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const said = (line: string): string | null => {
    if (line.startsWith("eniway: ")) return line.slice("eniway: ".length);
    try {
      const rec = JSON.parse(line) as { level?: unknown; msg?: unknown; error?: unknown };
      if (rec.level !== "error" || typeof rec.msg !== "string") return null;
      return typeof rec.error === "string" ? `${rec.msg}: ${rec.error}` : rec.msg;
    } catch {
      return null;
    }
  };
  for (const line of [...lines].reverse()) {
    const s = said(line);
    if (s) return s;
  }
  return lines.at(-1) ?? "";
}

/** Removes `dir` and everything in it, except the files `keep` names (and the folders on their way). */
export async function removeExcept(dir: string, keep: string[]): Promise<void> {
  const kept = keep.map((k) => relative(dir, k)).filter((r) => r !== "" && !r.startsWith(".."));
  if (kept.length === 0) {
    await rm(dir, { recursive: true, force: true });
    return;
  }
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const path = join(dir, e.name);
    if (kept.includes(e.name)) continue;
    if (e.isDirectory() && kept.some((k) => k.startsWith(`${e.name}${sep}`))) await removeExcept(path, keep);
    else await rm(path, { recursive: true, force: true });
  }
}
