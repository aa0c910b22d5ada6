// A probe agent that runs inside one network namespace (`ip netns exec NS node
// dist/test/policy/agent.js PORTS`): it serves TCP and UDP echo on the given
// ports and answers probe requests read from stdin, one JSON line each:
// {"id":1,"dst":"10.0.0.1","protocol":"TCP"|"UDP"|"ICMP","port":80} →
// {"id":1,"ok":true}. A probe that gets no answer in 1 s is not ok.

import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect, createServer } from "node:net";
import { createInterface } from "node:readline";

const WAIT_MS = 1000;
const ports = (process.argv[2] ?? "").split(",").filter(Boolean).map(Number);

async function serve(port: number): Promise<void> {
  await new Promise<void>((up) => createServer((s) => s.end("hi\n")).listen(port, "0.0.0.0", up));
  const udp = createSocket("udp4");
  udp.on("message", (msg, from) => udp.send(msg, from.port, from.address));
  await new Promise<void>((up) => udp.bind(port, "0.0.0.0", up));
}

function tcp(dst: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect({ host: dst, port, timeout: WAIT_MS });
    let got = "";
    s.on("data", (d) => {
      got += d.toString();
    });
    s.on("end", () => done(got === "hi\n"));
    s.on("timeout", () => {
      s.destroy();
      done(false);
    });
    s.on("error", () => done(false));
  });
}

function udp(dst: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createSocket("udp4");
    const end = (ok: boolean): void => {
      clearTimeout(timer);
      s.close();
      done(ok);
    };
    const timer = setTimeout(() => end(false), WAIT_MS);
    s.on("message", () => end(true));
    s.on("error", () => end(false));
    s.send("ping", port, dst);
  });
}

const ping = (dst: string): Promise<boolean> =>
  new Promise((done) => execFile("ping", ["-c1", "-W1", dst], (err) => done(!err)));

createInterface({ input: process.stdin }).on("line", async (line) => {
  const p = JSON.parse(line) as { id: number; dst: string; protocol: string; port: number };
  const ok =
    p.protocol === "TCP"
      ? await tcp(p.dst, p.port)
      : p.protocol === "UDP"
        ? await udp(p.dst, p.port)
        : await ping(p.dst);
  process.stdout.write(`${JSON.stringify({ id: p.id, ok })}\n`);
});
process.stdin.on("end", () => process.exit(0));
await Promise.all(ports.map(serve));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
