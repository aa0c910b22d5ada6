// The node's CNI binary on its own edge (cni/forwarder/eniway-cni.c, built
// into dist/bin/eniway-cni): the exact request it sends the daemon and what
// it makes of every kind of answer, against a stand-in for the daemon's
// socket that records and answers byte for byte. The CNI protocol behind it
// runs against a real daemon in plugin.test.ts. With the daemon unreachable
// the forwarder answers VERSION itself, ADD, CHECK and GC with code 11,
// STATUS with 50, and a DEL succeeds after recording its request in
// SOCKET.del/ for the daemon's next start.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SUPPORTED_VERSIONS, versionResult } from "../../cni/spec/spec.js";
import { parseFrame } from "../../src/daemon/cni-exec.js";
import {
  DEFAULT_SOCKET,
  ensurePluginBuilt,
  FakeDaemon,
  PLUGIN,
  type PrivateRun,
  privateRun,
  type RunResult,
  runPlugin,
  tempDir,
} from "./helpers.js";

/** How the forwarder names a record (del-queue.ts reads exactly these): SECONDS-NANOSECONDS-PID.del */
const RECORD = /^(\d{1,12})-(\d{9})-(\d{1,10})\.del$/;
const MiB = 1024 * 1024;

let tmp: { dir: string; remove: () => void };
let socket: string;
let daemon: FakeDaemon;

beforeAll(() => ensurePluginBuilt(), 300_000);

beforeEach(async () => {
  tmp = tempDir("eniway-fwd-");
  socket = join(tmp.dir, "eniway.sock");
  daemon = await new FakeDaemon(socket).start();
});

afterEach(async () => {
  await daemon.stop();
  tmp.remove();
});

const conf = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: "1.1.0",
  name: "eniway-net",
  type: "eniway",
  socket,
  ...over,
});

const env = (command: string, over: Record<string, string | undefined> = {}): Record<string, string> => {
  const out: Record<string, string> = {};
  const all: Record<string, string | undefined> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: "c0ffee01",
    CNI_NETNS: "/var/run/netns/eniway-t-pod",
    CNI_IFNAME: "eth0",
    CNI_PATH: "/opt/cni/bin",
    ...over,
  };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) out[k] = v;
  return out;
};

/** The frame the daemon's POST /v1/cni takes: "NAME=VALUE\0" for each CNI_* variable in order, "\0", stdin. */
const frameOf = (vars: Record<string, string>, stdin: Buffer | string): Buffer =>
  Buffer.concat([
    Buffer.from(
      Object.entries(vars)
        .filter(([k]) => k.startsWith("CNI_"))
        .map(([k, v]) => `${k}=${v}\0`)
        .join(""),
    ),
    Buffer.from("\0"),
    Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin),
  ]);

/** The forwarder's own error: exit 1, the spec's error JSON on stdout, nothing on stderr. */
function expectError(r: RunResult, code: number, msgPart: string, detailsPart?: string): void {
  expect(r.code, r.stdout).toBe(1);
  expect(r.json?.code, r.stdout).toBe(code);
  expect(String(r.json?.msg)).toContain(msgPart);
  if (detailsPart !== undefined) expect(String(r.json?.details)).toContain(detailsPart);
  expect(typeof r.json?.cniVersion).toBe("string");
  expect(r.stdout.endsWith("}\n")).toBe(true);
  expect(r.stdout.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).toBe("");
}

function expectSilentSuccess(r: RunResult): void {
  expect(r.code, r.stdout).toBe(0);
  expect(r.stdout).toBe("");
  expect(r.stderr).toBe("");
}

/** The records in SOCKET.del/ (none when the folder does not exist). */
const records = (sock = socket): string[] =>
  existsSync(`${sock}.del`) ? readdirSync(`${sock}.del`).sort() : [];

// -------------------------------------------------------------- the request

describe("the request: POST /v1/cni with the CNI_* environment and stdin unchanged", () => {
  it("sends each CNI_* variable as NAME=VALUE\\0, an empty entry, then stdin byte for byte; nothing else", async () => {
    const vars = {
      ...env("ADD", { CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0" }),
      CNI_SOMETHING_NEW: "a=b=c", // a variable a later spec may add goes too, '=' in its value and all
      FOO: "bar",
      HOME: "/root",
      cni_lower: "x",
      CNIX_NOT: "y",
      CNI: "z",
    };
    // A configuration with unicode, and bytes after it that are not UTF-8 (and a NUL): all passed on as they are.
    const stdin = Buffer.concat([
      Buffer.from(JSON.stringify(conf({ note: "é名\u202e", nested: { socket: "/not/this/one" } }))),
      Buffer.from([0x0a, 0xff, 0xfe, 0x00, 0x0d]),
    ]);
    const r = await runPlugin(vars, stdin);
    expectSilentSuccess(r);
    expect(daemon.received).toHaveLength(1);
    const req = daemon.received[0]!;
    expect(req.requestLine).toBe("POST /v1/cni HTTP/1.1");
    expect(req.headers["eniway-plugin"]).toBe("eniway-cni");
    expect(req.headers["content-type"]).toBe("application/vnd.eniway.cni");
    expect(req.headers["content-length"]).toBe(String(req.body.length));
    const expected = frameOf(vars, stdin);
    expect(req.body.equals(expected), `${JSON.stringify(req.body.toString("latin1"))}`).toBe(true);
    // The daemon's parser reads back exactly the CNI_* environment.
    const parsed = parseFrame(req.body.toString("utf8"));
    expect(parsed?.env).toEqual({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "c0ffee01",
      CNI_NETNS: "/var/run/netns/eniway-t-pod",
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
      CNI_SOMETHING_NEW: "a=b=c",
    });
    // Every entry before the terminator is a CNI_ variable: no FOO, HOME, PATH, cni_lower, CNIX_NOT or CNI.
    const entries = req.body.subarray(0, req.body.indexOf("\0\0")).toString().split("\0");
    expect(entries.map((e) => e.slice(0, e.indexOf("=")))).toEqual(Object.keys(parsed?.env ?? {}));
  });

  it("sends an environment without CNI_COMMAND as it is: the daemon says what is wrong", async () => {
    const r = await runPlugin({ FOO: "bar" }, conf());
    expectSilentSuccess(r);
    expect(daemon.received[0]?.body.equals(frameOf({}, JSON.stringify(conf())))).toBe(true);
  });

  const names: [argv0: string, header: string][] = [
    ["/opt/cni/bin/eniway-custom", "eniway-custom"],
    ["eniway", "eniway"],
    ["/opt/cni/bin/eni.way_2-b", "eni.way_2-b"],
    ["/opt/cni/bin/with space", "eniway"],
    ["/opt/cni/bin/a:b", "eniway"],
    [`/opt/cni/bin/${"a".repeat(65)}`, "eniway"],
    ["/opt/cni/bin/", "eniway"],
  ];
  for (const [argv0, header] of names) {
    it(`started as ${JSON.stringify(argv0.slice(0, 40))}, it names itself ${JSON.stringify(header)} in Eniway-Plugin`, async () => {
      expectSilentSuccess(await runPlugin(env("DEL"), conf(), { argv0 }));
      expect(daemon.received[0]?.headers["eniway-plugin"]).toBe(header);
    });
  }

  it("finds its socket as JSON does: the top-level key, the last of duplicates, not a nested one", async () => {
    const text = `{"cniVersion":"1.1.0","name":"n","type":"eniway","a":{"socket":"/nested"},"b":["socket","/x"],"c":"\\"socket\\": \\"/in-a-string\\"","socket":"/first/of/two","socket":${JSON.stringify(socket)}}`;
    expect((JSON.parse(text) as { socket: string }).socket).toBe(socket);
    expectSilentSuccess(await runPlugin(env("DEL"), text));
    expect(daemon.received).toHaveLength(1);
    expect(daemon.received[0]?.body.equals(frameOf(env("DEL"), text))).toBe(true);
  });

  it("a .env file in its working directory adds nothing to what it sends", async () => {
    writeFileSync(join(tmp.dir, ".env"), "CNI_ARGS=FOO=bar\nCNI_IFNAME=bad/name\n");
    expectSilentSuccess(await runPlugin(env("ADD"), conf(), { cwd: tmp.dir }));
    expect(daemon.received[0]?.body.equals(frameOf(env("ADD"), JSON.stringify(conf())))).toBe(true);
  });
});

// --------------------------------------------------------------- the answer

describe("the answer: 200 with EXIT\\n and stdout", () => {
  const answers: [exit: number, stdout: Buffer][] = [
    [0, Buffer.from("")],
    [0, Buffer.from('{"cniVersion":"1.1.0","interfaces":[],"ips":[]}\n')],
    [1, Buffer.from('{"cniVersion":"1.0.0","code":7,"msg":"missing network name"}\n')],
    // Not JSON, not UTF-8, a NUL, a line that looks like another exit code, no final newline: passed on as is.
    [7, Buffer.concat([Buffer.from("a\n3\n"), Buffer.from([0xff, 0x00, 0xfe]), Buffer.from("é")])],
    [255, Buffer.from("x")],
  ];
  for (const [exit, stdout] of answers) {
    it(`exits ${exit} and writes ${stdout.length} bytes exactly as the daemon answered`, async () => {
      daemon.reply = () => ({ status: 200, body: Buffer.concat([Buffer.from(`${exit}\n`), stdout]) });
      const r = await runPlugin(env("ADD"), conf(), { raw: true });
      expect(r.code).toBe(exit);
      expect(r.stdoutBytes.equals(stdout), JSON.stringify(r.stdoutBytes.toString("latin1"))).toBe(true);
      expect(r.stderr).toBe("");
    });
  }

  it("passes a large answer through whole", async () => {
    const big = Buffer.alloc(3 * MiB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 256;
    daemon.reply = () => ({ status: 200, body: Buffer.concat([Buffer.from("0\n"), big]) });
    const r = await runPlugin(env("ADD"), conf(), { raw: true });
    expect(r.code).toBe(0);
    expect(r.stdoutBytes.length).toBe(big.length);
    expect(r.stdoutBytes.equals(big)).toBe(true);
  });

  it("waits for a slow daemon within timeoutSeconds", async () => {
    daemon.reply = () => ({ status: 200, body: "0\n", delayMs: 700 });
    const started = Date.now();
    expectSilentSuccess(await runPlugin(env("ADD"), conf({ timeoutSeconds: 5 })));
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
  });

  for (const bad of ["", "0", "{}", "hello\n{}", " \n", "-1\n", "256\n", "1x\n", "\n0\n"]) {
    it(`an answer without an exit line (${JSON.stringify(bad)}) is code 999`, async () => {
      daemon.reply = () => ({ status: 200, body: bad });
      const r = await runPlugin(env("ADD"), conf({ cniVersion: "0.4.0" }));
      expectError(r, 999, "eniway daemon gave no usable answer", "without an exit code");
      // The forwarder's own error carries the configuration's version.
      expect(r.json?.cniVersion).toBe("0.4.0");
    });
  }

  for (const status of [400, 404, 500, 503]) {
    it(`a ${status} answer is code 999 with the status and the daemon's words in details`, async () => {
      const message = `{"error":{"code":"X","message":"what went wrong ${status}"}}`;
      daemon.reply = () => ({ status, body: message });
      const r = await runPlugin(env("ADD"), conf());
      expectError(r, 999, "eniway daemon gave no usable answer", `HTTP ${status}`);
      expect(r.json?.details).toContain(`what went wrong ${status}`);
    });
  }

  it("a DEL the daemon answered badly fails (999) and is not recorded: the runtime retries it", async () => {
    daemon.reply = () => ({ status: 500, body: "boom" });
    expectError(await runPlugin(env("DEL"), conf()), 999, "no usable answer", "HTTP 500: boom");
    daemon.reply = () => ({ status: 200, body: "no exit line" });
    expectError(await runPlugin(env("DEL"), conf()), 999, "no usable answer", "without an exit code");
    expect(records()).toEqual([]);
  });

  for (const [what, raw] of [
    ["not HTTP", "SSH-2.0-OpenSSH_9.2\r\n"],
    ["headers cut short", "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n"],
    ["a status line without a status", "HTTP/1.1 OK\r\n\r\n0\n"],
  ]) {
    it(`an answer that is ${what} is code 999`, async () => {
      daemon.reply = () => ({ raw: raw as string });
      const r = await runPlugin(env("ADD"), conf());
      expectError(r, 999, "no usable answer", "without a complete answer");
    });
  }
});

// ------------------------------------------------------- daemon unreachable

describe("the daemon unreachable", () => {
  const gcConf = (): Record<string, unknown> => conf({ "cni.dev/valid-attachments": [] });

  it("no answer within timeoutSeconds: ADD, CHECK and GC code 11, STATUS 50, DEL recorded", async () => {
    daemon.reply = () => "hang";
    const cases: [string, Record<string, string>, number][] = [
      ["ADD", env("ADD"), 11],
      ["CHECK", env("CHECK"), 11],
      ["GC", { CNI_COMMAND: "GC" }, 11],
      ["STATUS", { CNI_COMMAND: "STATUS" }, 50],
    ];
    for (const [command, vars, code] of cases) {
      const started = Date.now();
      const r = await runPlugin(vars, { ...gcConf(), timeoutSeconds: 0.5 });
      const took = Date.now() - started;
      expectError(
        r,
        code,
        code === 50 ? "plugin not available" : "try again later: eniway daemon not reachable",
        `no answer from ${socket} within the timeout`,
      );
      expect(took, command).toBeGreaterThanOrEqual(450);
      expect(took, command).toBeLessThan(5000);
    }
    expect(daemon.received.map((q) => parseFrame(q.body.toString())?.env.CNI_COMMAND)).toEqual([
      "ADD",
      "CHECK",
      "GC",
      "STATUS",
    ]);
    const started = Date.now();
    const del = await runPlugin(env("DEL"), conf({ timeoutSeconds: 0.5 }));
    expectSilentSuccess(del);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(records()).toHaveLength(1);
    expect(readFileSync(join(`${socket}.del`, records()[0]!)).equals(daemon.received[4]!.body)).toBe(true);
  });

  it("a daemon that never reads the request (a stopped process) holds it no longer than timeoutSeconds", async () => {
    await daemon.stop();
    daemon = await new FakeDaemon(socket, { noRead: true }).start();
    // More than the socket's buffers hold: the write itself must give up at the deadline.
    const stdin = JSON.stringify(conf({ timeoutSeconds: 0.5, pad: "x".repeat(4 * MiB) }));
    const started = Date.now();
    const r = await runPlugin(env("ADD"), stdin, { timeoutMs: 20_000 });
    expectError(r, 11, "try again later", "within the timeout");
    expect(Date.now() - started).toBeLessThan(5000);
    const del = await runPlugin(env("DEL"), stdin, { timeoutMs: 20_000 });
    expectSilentSuccess(del);
    expect(records()).toHaveLength(1);
  });

  it("a connection closed without an answer: ADD code 11, STATUS 50, DEL recorded", async () => {
    daemon.reply = () => "close";
    expectError(await runPlugin(env("ADD"), conf()), 11, "try again later", "closed the connection");
    expectError(await runPlugin({ CNI_COMMAND: "STATUS" }, conf()), 50, "plugin not available");
    expectSilentSuccess(await runPlugin(env("DEL"), conf()));
    expect(records()).toHaveLength(1);
    expect(readFileSync(join(`${socket}.del`, records()[0]!)).equals(daemon.received[2]!.body)).toBe(true);
  });

  it("no socket: ADD, CHECK and GC code 11 naming it, STATUS 50; nothing recorded but DELs", async () => {
    const absent = join(tmp.dir, "absent.sock");
    const c = conf({ socket: absent, "cni.dev/valid-attachments": [], prevResult: {} });
    for (const vars of [env("ADD"), env("CHECK"), { CNI_COMMAND: "GC" }]) {
      const r = await runPlugin(vars, c);
      expectError(
        r,
        11,
        "try again later: eniway daemon not reachable",
        `${absent}: No such file or directory`,
      );
    }
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, c);
    expectError(status, 50, "plugin not available", absent);
    expect(records(absent)).toEqual([]);
  });

  it("a socket path nobody listens on: code 11 (connection refused)", async () => {
    const dead = join(tmp.dir, "dead.sock");
    writeFileSync(dead, "");
    const r = await runPlugin(env("ADD"), conf({ socket: dead }));
    expectError(r, 11, "daemon not reachable", `${dead}: Connection refused`);
  });

  it("DEL succeeds at once and records, durably, the very frame it would have sent", async () => {
    const stdin = JSON.stringify(
      conf({ prevResult: { cniVersion: "1.1.0", interfaces: [{ name: "eth0" }] } }),
    );
    const vars = env("DEL", { CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0" });
    // What the daemon gets when it is there...
    expectSilentSuccess(await runPlugin(vars, stdin));
    const sent = daemon.received[0]!.body;
    expect(sent.equals(frameOf(vars, stdin))).toBe(true);
    // ...is what is recorded when it is not.
    await daemon.stop();
    rmSync(socket, { force: true });
    const before = Date.now();
    const first = await runPlugin(vars, stdin);
    const second = await runPlugin({ ...vars, CNI_CONTAINERID: "c0ffee02" }, stdin);
    expectSilentSuccess(first);
    expectSilentSuccess(second);
    const dir = `${socket}.del`;
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const names = records();
    expect(names).toHaveLength(2);
    for (const [i, r] of [first, second].entries()) {
      const m = RECORD.exec(names[i]!);
      expect(m, names[i]).not.toBeNull();
      expect(Number(m![3]), "the name ends with the forwarder's pid").toBe(r.pid);
      expect(Math.abs(Number(m![1]) * 1000 - before)).toBeLessThan(60_000);
      expect(statSync(join(dir, names[i]!)).mode & 0o777).toBe(0o600);
    }
    expect(readFileSync(join(dir, names[0]!)).equals(sent)).toBe(true);
    expect(parseFrame(readFileSync(join(dir, names[1]!), "utf8"))?.env.CNI_CONTAINERID).toBe("c0ffee02");
    // No partial record is left behind.
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("a DEL that cannot be recorded fails with code 5 naming the folder", async () => {
    const absent = join(tmp.dir, "absent.sock");
    writeFileSync(`${absent}.del`, "a file where the folder should be");
    const r = await runPlugin(env("DEL"), conf({ socket: absent }));
    expectError(r, 5, "eniway daemon not reachable and the DEL could not be recorded", `${absent}.del`);
  });

  it("a timeoutSeconds that is not a number in (0, 3600] means the default 60 s, not a shorter wait", async () => {
    daemon.reply = () => ({ status: 200, body: "0\n", delayMs: 1500 });
    const runs = await Promise.all(
      ["0.5", 0, -1, 7200, null].map((t) => runPlugin(env("ADD"), conf({ timeoutSeconds: t }))),
    );
    for (const r of runs) expectSilentSuccess(r);
    expect(daemon.received).toHaveLength(5);
  });
});

// ------------------------------------------------------ the default socket

describe("a configuration without a usable socket: the default /run/eniway/eniway.sock (private /run)", () => {
  let run: PrivateRun;
  let runDir: { dir: string; remove: () => void };
  let machineHadQueue = false;

  beforeAll(() => {
    machineHadQueue = existsSync(`${DEFAULT_SOCKET}.del`);
    runDir = tempDir("eniway-fwd-run-");
    run = privateRun(runDir.dir);
  });
  afterAll(() => {
    run?.remove();
    runDir?.remove();
    // Nothing of it reached the machine's own /run.
    if (!machineHadQueue) expect(existsSync(`${DEFAULT_SOCKET}.del`)).toBe(false);
  });

  const sockets: [string, unknown][] = [
    ["none", undefined],
    ["a relative path", "run/eniway.sock"],
    ["a number", 5],
    ["an empty string", ""],
    ["a path longer than a unix socket's address", `/tmp/${"s".repeat(120)}.sock`],
    // JSON escapes other than \" \\ \/ are not decoded by the forwarder's scan.
    ["a path with an escaped control character", "/tmp/a\nb.sock"],
  ];
  for (const [what, value] of sockets) {
    it(`socket ${what}: ADD code 11 naming the default socket`, async () => {
      const c = conf({ socket: value });
      if (value === undefined) delete c.socket;
      const r = await runPlugin(env("ADD"), c, { wrapper: run.wrapper });
      expectError(r, 11, "try again later", `${DEFAULT_SOCKET}: No such file or directory`);
      expect(daemon.received).toEqual([]);
    });
  }

  it("a configuration that is not JSON: ADD code 11, STATUS 50, DEL recorded beside the default socket", async () => {
    const text = '{"cniVersion":"1.1.0","name":"n","socket":"/tmp/eniway-never'; // cut short
    expectError(await runPlugin(env("ADD"), text, { wrapper: run.wrapper }), 11, "try again later");
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, text, { wrapper: run.wrapper });
    expectError(status, 50, "plugin not available", DEFAULT_SOCKET);
    const del = await runPlugin(env("DEL"), text, { wrapper: run.wrapper });
    expectSilentSuccess(del);
    const names = run.exec("ls", `${DEFAULT_SOCKET}.del`).trim().split("\n");
    const mine = names.find((n) => RECORD.exec(n)?.[3] === String(del.pid));
    expect(mine, names.join(" ")).toBeDefined();
    expect(run.exec("cat", `${DEFAULT_SOCKET}.del/${mine}`)).toBe(frameOf(env("DEL"), text).toString());
  });
});

// ------------------------------------------------------------------ VERSION

describe("VERSION, answered by the forwarder alone", () => {
  const inputs: [stdin: string, cniVersion: string][] = [
    ['{"cniVersion":"1.1.0"}', "1.1.0"],
    ['{"cniVersion":"1.0.0"}', "1.0.0"],
    ['{"cniVersion":"0.4.0"}', "0.4.0"],
    ['{"cniVersion":"0.3.1"}', "0.3.1"],
    ['{"cniVersion":"0.3.0"}', "0.3.0"],
    // Any X.Y.Z is echoed ([spec]: "the value of cniVersion specified on input"), supported or not.
    ['{"cniVersion":"2.5.10","name":"n"}', "2.5.10"],
    ['{ "name": "n", "cniVersion" : "0.4.0" }', "0.4.0"],
    // Anything else: ours.
    ["", "1.1.0"],
    ["{nope", "1.1.0"],
    ["[]", "1.1.0"],
    ['"1.0.0"', "1.1.0"],
    ["{}", "1.1.0"],
    ['{"cniVersion":""}', "1.1.0"],
    ['{"cniVersion":"1.0"}', "1.1.0"],
    ['{"cniVersion":"v1.0.0"}', "1.1.0"],
    ['{"cniVersion":" 1.0.0"}', "1.1.0"],
    ['{"cniVersion":"-1.0.0"}', "1.1.0"],
    ['{"cniVersion":"+1.0.0"}', "1.1.0"],
    ['{"cniVersion":"1.0.0\\n"}', "1.1.0"],
    ['{"cniVersion":"1.0.0.0"}', "1.1.0"],
    ['{"cniVersion":"1.0.x"}', "1.1.0"],
    ['{"cniVersion":1}', "1.1.0"],
    ['{"cniVersion":null}', "1.1.0"],
    ['{"args":{"cniVersion":"0.3.1"}}', "1.1.0"],
  ];
  for (const [stdin, cniVersion] of inputs) {
    it(`answers cniVersion ${cniVersion} to ${JSON.stringify(stdin)}, as the daemon would, without asking it`, async () => {
      const withSocket = stdin.startsWith('{"cniVersion"')
        ? stdin.replace("{", `{"socket":"${socket}",`)
        : stdin;
      const r = await runPlugin({ CNI_COMMAND: "VERSION" }, withSocket);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout.endsWith("}\n")).toBe(true);
      expect(r.json).toEqual({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] });
      // The daemon's own VERSION answer (cni/spec/spec.ts), the same.
      expect(r.json).toEqual(versionResult(withSocket));
      expect(daemon.received).toEqual([]);
    });
  }

  it("needs no other variable and no daemon", async () => {
    const r = await runPlugin(
      { CNI_COMMAND: "VERSION" },
      { cniVersion: "0.4.0", socket: join(tmp.dir, "none") },
    );
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: "0.4.0", supportedVersions: [...SUPPORTED_VERSIONS] });
  });
});

// -------------------------------------------------- limits and the binary

describe("limits and the binary", () => {
  const padded = (size: number): string => {
    const head = JSON.stringify(conf({ pad: "" }));
    return head.replace('"pad":""', `"pad":"${"x".repeat(size - head.length)}"`);
  };

  it("stdin larger than 8 MiB is code 5, and nothing is sent", async () => {
    const stdin = padded(8 * MiB + 1);
    expect(Buffer.byteLength(stdin)).toBe(8 * MiB + 1);
    const r = await runPlugin(env("ADD"), stdin);
    expectError(r, 5, "error reading from stdin");
    const del = await runPlugin(env("DEL"), stdin);
    expectError(del, 5, "error reading from stdin");
    expect(daemon.received).toEqual([]);
    expect(records()).toEqual([]);
  });

  it("stdin of 8 MiB is sent whole", async () => {
    const stdin = padded(8 * MiB);
    expectSilentSuccess(await runPlugin(env("ADD"), stdin));
    expect(daemon.received[0]?.body.equals(frameOf(env("ADD"), stdin))).toBe(true);
  });

  it("is statically linked (no program interpreter, no dynamic section) and at most 5 MB", () => {
    // readelf comes with binutils, which gcc (the build's compiler) needs; `file` is not installed everywhere.
    const headers = execFileSync("readelf", ["-l", "-d", PLUGIN], { encoding: "utf8" });
    expect(headers).toContain("Elf file type is EXEC");
    expect(headers).toContain("LOAD");
    expect(headers).not.toContain("INTERP");
    expect(headers).not.toContain("Requesting program interpreter");
    expect(headers).toContain("There is no dynamic section in this file.");
    expect(statSync(PLUGIN).size).toBeLessThanOrEqual(5_000_000);
  });

  it("writes nothing on stderr in any outcome", async () => {
    const dir = join(tmp.dir, "q");
    mkdirSync(dir);
    daemon.reply = () => ({ status: 200, body: "3\nxyz" });
    const runs = await Promise.all([
      runPlugin(env("ADD"), conf(), { raw: true }),
      runPlugin(env("ADD"), conf({ socket: join(dir, "absent.sock") })),
      runPlugin(env("DEL"), conf({ socket: join(dir, "absent.sock") })),
      runPlugin({ CNI_COMMAND: "VERSION" }, ""),
      runPlugin({}, conf({ socket: join(dir, "absent.sock") })),
    ]);
    for (const r of runs) expect(r.stderr).toBe("");
    expect(runs.map((r) => r.code)).toEqual([3, 1, 0, 0, 1]);
  });
});
