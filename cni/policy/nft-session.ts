// One long-lived `nft -j -i` in the node's namespace, so a change of the
// rules costs a netlink round trip rather than a process start (the ADD
// waits for it). nft -i runs each line it reads as one transaction (commands
// joined by ";"), prints nothing for a change that worked, one JSON line on
// stdout for a list, and its errors on stderr. After each request comes a
// line that is not a command (`eniway_ack_N`): the parser's error for it, on
// stderr too, closes the request's answer. (A command as the ack, such as
// listing a table that never exists, cost 0.5 ms more per request: nft reads
// the kernel's ruleset for it; a parse error reads nothing.) A session that
// cannot start, dies or stalls is dropped; requests then run as one nft
// process each until a new session starts after a rest.

import { type ChildProcess, spawn } from "node:child_process";
import { CommandError, exec } from "../../lib/exec.js";
import { inNetns } from "../../lib/ip.js";

export interface NftSession {
  /** Runs an nft script as one transaction; rejects with nft's error. */
  run(script: string): Promise<void>;
  /** A list command (`["list", "counters", …]`): nft's JSON answer. */
  list(args: string[]): Promise<string>;
  close(): void;
}

interface Pending {
  id: number;
  /** A list: a line on stdout follows a success. */
  output: boolean;
  /** The ack came; nft's error before it, if any. */
  acked: boolean;
  error: string;
  resolve: (out: string) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const ACK = /Error: [^\n]*\neniway_ack_(\d+)\n[^\n]*\n/;

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
  const argv = inNetns(netns, ["nft", "-j", "-i"]);
  let child: ChildProcess | null = null;
  let restUntil = 0;
  let nextId = 1;
  let said = "";
  let printed = "";
  const pending: Pending[] = [];

  const drop = (why: string): void => {
    child?.kill("SIGKILL");
    child = null;
    restUntil = Date.now() + restMs;
    said = "";
    printed = "";
    for (const p of pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new CommandError(argv, null, `nft session: ${why}`));
    }
  };

  /** Answers in order: each request once its ack came, a list once its line came too. */
  const settle = (): void => {
    for (let p = pending[0]; p?.acked; p = pending[0]) {
      const nl = printed.indexOf("\n");
      if (!p.error && p.output && nl < 0) return;
      pending.shift();
      clearTimeout(p.timer);
      if (p.error) p.reject(new CommandError(["nft", "-f", "-"], 1, p.error));
      else if (!p.output) p.resolve("");
      else {
        p.resolve(printed.slice(0, nl));
        printed = printed.slice(nl + 1);
      }
    }
  };

  const acked = (): void => {
    for (let m = ACK.exec(said); m; m = ACK.exec(said)) {
      const error = said.slice(0, m.index).trim();
      said = said.slice(m.index + m[0].length);
      const p = pending.find((x) => !x.acked);
      if (!p || p.id !== Number(m[1])) {
        drop("answers out of order");
        return;
      }
      p.acked = true;
      p.error = error;
    }
    settle();
  };

  const session = (): ChildProcess | null => {
    if (child || Date.now() < restUntil) return child;
    const [file = "", ...args] = argv;
    const c = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    c.stdout!.on("data", (d: Buffer) => {
      printed += d.toString();
      settle();
    });
    c.stderr!.on("data", (d: Buffer) => {
      said += d.toString();
      acked();
    });
    c.once("error", (e) => child === c && drop(e.message));
    c.once("exit", (code) => child === c && drop(`exited (${code})`));
    c.stdin!.on("error", () => {});
    child = c;
    return c;
  };

  const request = (c: ChildProcess, line: string, output: boolean): Promise<string> => {
    const id = nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => drop(`no answer in ${timeoutMs} ms`), timeoutMs);
      pending.push({ id, output, acked: false, error: "", resolve, reject, timer });
      c.stdin!.write(`${line}\neniway_ack_${id}\n`);
    });
  };

  return {
    async run(script) {
      const line = oneLine(script);
      if (!line) return;
      const c = session();
      if (c) await request(c, line, false);
      else await exec(inNetns(netns, ["nft", "-f", "-"]), script);
    },
    async list(args) {
      if (args[0] !== "list" || !args.every((a) => /^[A-Za-z0-9_-]+$/.test(a)))
        throw new Error(`not an nft list command: ${JSON.stringify(args)}`);
      const c = session();
      return c ? await request(c, args.join(" "), true) : await exec(inNetns(netns, ["nft", "-j", ...args]));
    },
    close() {
      const c = child;
      child = null;
      c?.stdin?.end();
    },
  };
}
