// Does one pod reach another? A TCP exchange between two network namespaces,
// with nothing but what the sandbox already needs (iproute2 and Node.js): a
// one-shot server in the target's namespace, a client in the source's.

import { spawn } from "node:child_process";
import { CommandError, exec } from "../../lib/exec.js";
import { isIpv4, NETNS_NAME } from "../../lib/net.js";

/** Answers the first message with "pong <message>", then exits (or after 10 s). */
const SERVER = `const net = require("node:net");
const [ip, port] = process.argv.slice(1);
const s = net.createServer((c) => c.once("data", (d) => { c.end("pong " + d); s.close(); }));
s.listen(Number(port), ip, () => process.stdout.write("listening\\n"));
setTimeout(() => process.exit(2), 10000).unref();`;

/** Sends "ping", prints the reply. */
const CLIENT = `const net = require("node:net");
const [ip, port] = process.argv.slice(1);
const c = net.connect({ host: ip, port: Number(port), timeout: 3000 }, () => c.write("ping"));
c.on("data", (d) => { process.stdout.write(String(d)); c.end(); });
c.on("timeout", () => { process.stderr.write("no answer within 3 s"); process.exit(1); });
c.on("error", (e) => { process.stderr.write(e.message); process.exit(1); });`;

export type Reach = { ok: true; reply: string } | { ok: false; error: string };

/** `ip netns exec NS node -e SCRIPT ARGS…`. */
const inNetns = (netns: string, script: string, args: string[]): string[] => [
  "ip",
  "netns",
  "exec",
  netns,
  process.execPath,
  "-e",
  script,
  ...args,
];

export async function tcpReach(
  fromNetns: string,
  toNetns: string,
  toIp: string,
  port = 7070,
): Promise<Reach> {
  if (!NETNS_NAME.test(fromNetns) || !NETNS_NAME.test(toNetns) || !isIpv4(toIp))
    return { ok: false, error: "invalid namespace or address" };
  const [file, ...args] = inNetns(toNetns, SERVER, [toIp, String(port)]);
  const server = spawn(file!, args, { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const listening = await new Promise<boolean>((resolve) => {
      server.stdout.on("data", (d: Buffer) => resolve(d.toString().includes("listening")));
      server.once("exit", () => resolve(false));
    });
    if (!listening) return { ok: false, error: "the server in the target pod did not start" };
    return { ok: true, reply: await exec(inNetns(fromNetns, CLIENT, [toIp, String(port)])) };
  } catch (e) {
    return { ok: false, error: e instanceof CommandError ? e.stderr || e.message : String(e) };
  } finally {
    server.kill("SIGKILL");
  }
}
