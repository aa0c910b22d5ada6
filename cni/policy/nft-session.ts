// One long-lived `nft -i` in the node's namespace, so a change of the rules
// costs a netlink round trip rather than a process start (the ADD waits for
// it). nft -i runs each line it reads as one transaction (commands joined by
// ";"), prints nothing on success and its errors on stderr. After each
// request comes a line that lists a table that never exists
// (`eniway_ack_N`): its error, on stderr too, closes the request's answer.
// A session that cannot start, dies or stalls is dropped; requests then run
// as `nft -f -` until a new one starts after a rest.

import { type ChildProcess, spawn } from "node:child_process";
import { CommandError, exec } from "../../lib/exec.js";
import { inNetns } from "../../lib/ip.js";

export interface NftSession {
  /** Runs an nft script as one transaction; rejects with nft's error. */
  run(script: string): Promise<void>;
  close(): void;
}

interface Pending {
  id: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const ACK = /Error: [^\n]*\nlist table inet eniway_ack_(\d+)\n[^\n]*\n/;

/** nft -i reads a line at a time: the script's lines joined by ";". */
export function oneLine(script: string): string {
  if (/[\r\0]/.test(script)) throw new Error("nft script contains a carriage return or NUL");
  return script
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join("; ");
}

export function createNftSession(
  netns: string,
  opts: { timeoutMs?: number; restMs?: number } = {},
): NftSession {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const restMs = opts.restMs ?? 10_000;
  const argv = inNetns(netns, ["nft", "-i"]);
  let child: ChildProcess | null = null;
  let restUntil = 0;
  let nextId = 1;
  let said = "";
  const pending: Pending[] = [];

  const drop = (why: string): void => {
    child?.kill("SIGKILL");
    child = null;
    restUntil = Date.now() + restMs;
    said = "";
    for (const p of pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new CommandError(argv, null, `nft session: ${why}`));
    }
  };

  const answered = (): void => {
    for (let m = ACK.exec(said); m; m = ACK.exec(said)) {
      const error = said.slice(0, m.index).trim();
      said = said.slice(m.index + m[0].length);
      const p = pending.shift();
      if (!p || p.id !== Number(m[1])) {
        drop("answers out of order");
        return;
      }
      clearTimeout(p.timer);
      if (error) p.reject(new CommandError(["nft", "-f", "-"], 1, error));
      else p.resolve();
    }
  };

  const session = (): ChildProcess | null => {
    if (child || Date.now() < restUntil) return child;
    const [file = "", ...args] = argv;
    const c = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    c.stdout!.resume(); // nothing is asked that prints
    c.stderr!.on("data", (d: Buffer) => {
      said += d.toString();
      answered();
    });
    c.once("error", (e) => child === c && drop(e.message));
    c.once("exit", (code) => child === c && drop(`exited (${code})`));
    c.stdin!.on("error", () => {});
    child = c;
    return c;
  };

  return {
    run(script) {
      const line = oneLine(script);
      if (!line) return Promise.resolve();
      const c = session();
      if (!c) return exec(inNetns(netns, ["nft", "-f", "-"]), script).then(() => {});
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => drop(`no answer in ${timeoutMs} ms`), timeoutMs);
        pending.push({ id, resolve, reject, timer });
        c.stdin!.write(`${line}\nlist table inet eniway_ack_${id}\n`);
      });
    },
    close() {
      const c = child;
      child = null;
      c?.stdin?.end();
    },
  };
}
