// Running a program: always an argument vector, never a shell string.

import { spawn } from "node:child_process";

/** A program that could not start or exited non-zero, with what it said on stderr. */
export class CommandError extends Error {
  constructor(
    readonly command: string[],
    /** null: it did not start, or a signal ended it. */
    readonly code: number | null,
    readonly stderr: string,
  ) {
    const said = stderr.trim().split("\n").slice(-3).join("; ") || "no message";
    super(`${command.join(" ")} failed (${code === null ? "no exit code" : `exit ${code}`}): ${said}`);
    this.name = "CommandError";
  }
}

const MAX_STDERR = 64 * 1024;

/** Runs argv[0] with the rest as arguments (in `cwd`), `input` on stdin; resolves with stdout. */
export function exec(argv: string[], input?: string, cwd?: string): Promise<string> {
  const [file = "", ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => {
      if (err.length < MAX_STDERR) err += d.toString();
    });
    child.once("error", (e) => reject(new CommandError(argv, null, e.message)));
    child.once("close", (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new CommandError(argv, code, err)),
    );
    if (child.stdin) {
      // A program that fails early closes its stdin; its exit code tells the story.
      child.stdin.on("error", () => {});
      child.stdin.end(input);
    }
  });
}
