// The real `eniway daemon` process (dist/src/cli/main.js) against the simulator
// running in this process: its config errors, its unix-socket API (the pool's
// own routes, and POST /v1/cni, which takes the CNI forwarder's frames), its
// logs, a clean SIGTERM, and a second daemon on the same socket.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { Simulator } from "../../cloud/simulator/server.js";
import { SUPPORTED_VERSIONS } from "../../cni/spec/spec.js";
import { closeServer, listen } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { BUILT } from "../../lib/process.js";
import { STORE_BASE_FORMAT, type StoreDoc } from "../../pool/store.js";
import { frame } from "../../src/daemon/cni-exec.js";
import { loadConfig } from "../../src/daemon/config.js";
import { startDaemon } from "../../src/daemon/daemon.js";
import { runPlugin } from "../cni/helpers.js";
import { AK, CLUSTER, cloudFor, harness, NODE, ourEnis, SK, setKnob, waitFor } from "../pool/helpers.js";

const CLI = BUILT.cli;

// dist/ is built by the suite's global setup; without it these tests cannot run, and say so.
/**
 * The daemons' node namespace: a throwaway one, so that nothing a request
 * reaches (sysctls, iptables, rules) ever lands on the machine running the tests.
 */
const NODE_NETNS = `ewapi${process.pid % 100000}`;

beforeAll(() => {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run \`npm run build\` (vitest's global setup does)`);
  execFileSync("ip", ["netns", "add", NODE_NETNS]);
});

afterAll(() => {
  execFileSync("ip", ["netns", "del", NODE_NETNS]);
});

// ---- processes and the socket ----------------------------------------------------

interface Daemon {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const h = harness();
const daemons: Daemon[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const d of daemons.splice(0)) {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGKILL");
    await d.exited;
  }
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function spawnDaemon(args: string[]): Daemon {
  const child = spawn(process.execPath, [CLI, "daemon", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ENIWAY_LOG_LEVEL: "" },
  });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => {
    err += b.toString("utf8");
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const d = { child, stderr: () => err, exited };
  daemons.push(d);
  return d;
}

interface Reply {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test replies are inspected field by field
  body: any;
}

/** One HTTP/1.1 request over the unix socket; `body` is sent as is when a string. */
function call(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: { ...(data === undefined ? {} : { "content-type": "application/json" }), ...headers },
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: left as text
          }
          resolve({ status: res.statusCode ?? 0, text, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(data);
  });
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "eniway-daemon-test-"));
  dirs.push(d);
  return d;
}

interface Setup {
  sim: Simulator;
  dir: string;
  socket: string;
  stateDir: string;
  configFile: string;
}

async function setup(
  pool: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<Setup> {
  const sim = await h.sim();
  const dir = await tempDir();
  const socket = join(dir, "run", "eniway.sock");
  const stateDir = join(dir, "state");
  const config = {
    cloud: {
      regionId: "cn-hangzhou",
      endpoint: sim.url,
      vpcEndpoint: sim.url,
      metadataEndpoint: `${sim.url}/meta/${NODE}`,
      accessKeyId: AK,
      accessKeySecret: SK,
    },
    eni: { tags: { team: "net" } },
    pool: {
      minIdle: 2,
      maxIdle: 8,
      cooldownSeconds: 0.2,
      attachTimeoutSeconds: 10,
      allocateTimeoutSeconds: 8,
      ...pool,
    },
    clusterId: CLUSTER,
    socket,
    stateDir,
    http: { listen: "" },
    kubernetes: { enabled: false },
    node: { netns: `/var/run/netns/${NODE_NETNS}` },
    // The pool alone unless a test turns the datapath on: the pool's own API serves only then.
    datapath: { enabled: false },
    log: { level: "debug" },
    ...extra,
  };
  const configFile = join(dir, "eniway.yaml");
  await writeFile(configFile, stringify(config));
  return { sim, dir, socket, stateDir, configFile };
}

async function waitReady(s: Setup, d: Daemon, timeoutMs = 20_000): Promise<void> {
  let exited = false;
  void d.exited.then(() => {
    exited = true;
  });
  await waitFor(
    "the daemon to answer /readyz with 200",
    async () => {
      if (exited) throw new Error(`the daemon exited:\n${d.stderr()}`);
      const r = await call(s.socket, "GET", "/readyz").catch(() => null);
      return r?.status === 200;
    },
    timeoutMs,
    30,
  );
}

async function start(
  pool: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<Setup & { daemon: Daemon }> {
  const s = await setup(pool, extra);
  const daemon = spawnDaemon(["--config", s.configFile]);
  await waitReady(s, daemon);
  return { ...s, daemon };
}

/** SIGTERM, and how long the exit took. */
async function term(d: Daemon): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  d.child.kill("SIGTERM");
  const r = await Promise.race([
    d.exited,
    new Promise<null>((res) => setTimeout(() => res(null), 12_000).unref()),
  ]);
  if (r === null) throw new Error("the daemon did not exit within 12 s of SIGTERM");
  return { code: r.code, ms: Date.now() - t0 };
}

const exists = (p: string): Promise<boolean> =>
  lstat(p).then(
    () => true,
    () => false,
  );

const alloc = (containerId: string, ifname = "eth0", name = containerId) => ({
  containerId,
  ifname,
  pod: { namespace: "default", name, uid: `uid-${name}` },
});

// ---- the tests ---------------------------------------------------------------------

describe("eniway daemon (process)", () => {
  it("refuses a bad config: non-zero exit, stderr names the key and the file, no socket", async () => {
    const s = await setup({ minIdle: "two" });
    const d = spawnDaemon(["--config", s.configFile]);
    const r = await d.exited;
    expect(r.code).not.toBe(0);
    expect(d.stderr()).toContain("pool.minIdle");
    expect(d.stderr()).toContain(s.configFile);
    expect(await exists(s.socket)).toBe(false);
    expect(await exists(s.stateDir)).toBe(false);

    // An unknown key given with --set is named too.
    const good = await setup();
    const d2 = spawnDaemon(["--config", good.configFile, "--set", "pool.minIdel=3"]);
    expect((await d2.exited).code).not.toBe(0);
    expect(d2.stderr()).toContain("pool.minIdel");
    expect(await exists(good.socket)).toBe(false);

    // And a missing file.
    const d3 = spawnDaemon(["--config", join(s.dir, "nope.yaml")]);
    expect((await d3.exited).code).not.toBe(0);
    expect(d3.stderr()).toContain(join(s.dir, "nope.yaml"));
  });

  it("serves allocate, release, allocations and pool on a 0600 unix socket", async () => {
    const s = await start();
    const st = await lstat(s.socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await call(s.socket, "GET", "/healthz")).status).toBe(200);
    expect((await call(s.socket, "GET", "/readyz")).body).toEqual({ ready: true });

    const a = await call(s.socket, "POST", "/v1/allocate", alloc("c1"));
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({
      containerId: "c1",
      ifname: "eth0",
      pod: { namespace: "default", name: "c1", uid: "uid-c1" },
      gateway: "10.0.1.253",
      cidr: "10.0.1.0/24",
    });
    const eni = s.sim.state.enis.get(a.body.eniId)!;
    expect(eni.ips).toContain(a.body.ip);
    expect(eni.instanceId).toBe(NODE);
    expect(a.body.mac).toBe(eni.mac);
    // The ENI carries the user's tags besides ours.
    expect(Object.fromEntries(eni.tags)).toMatchObject({ team: "net", creator: "eniway" });

    // Idempotent for the same key; another key gets another IP.
    const again = await call(s.socket, "POST", "/v1/allocate", alloc("c1"));
    expect(again.body.ip).toBe(a.body.ip);
    const b = await call(s.socket, "POST", "/v1/allocate", alloc("c2"));
    expect(b.status).toBe(200);
    expect(b.body.ip).not.toBe(a.body.ip);

    const list = await call(s.socket, "GET", "/v1/allocations");
    expect(list.status).toBe(200);
    expect(list.body.allocations.map((x: { ip: string }) => x.ip).sort()).toEqual(
      [a.body.ip, b.body.ip].sort(),
    );

    const rel = await call(s.socket, "POST", "/v1/release", { containerId: "c1", ifname: "eth0" });
    expect(rel.status).toBe(200);
    expect(rel.body.released).toMatchObject({ containerId: "c1", ip: a.body.ip });
    const rel2 = await call(s.socket, "POST", "/v1/release", { containerId: "c1", ifname: "eth0" });
    expect(rel2.body).toEqual({ released: null });

    const pool = await call(s.socket, "GET", "/v1/pool");
    expect(pool.status).toBe(200);
    expect(pool.body).toMatchObject({
      assigned: 1,
      limits: { maxSecondaryEnis: 2, ipsPerEni: 6 },
      targets: { minIdle: 2, maxIdle: 8 },
    });
    expect(pool.body.enis.map((e: { eniId: string }) => e.eniId)).toEqual(ourEnis(s.sim).map((e) => e.id));

    const nf = await call(s.socket, "GET", "/v1/nothing");
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe("NotFound");
  });

  it("answers malformed requests with 400 and a message naming the field", async () => {
    const s = await start();
    const cases: [string, unknown, RegExp][] = [
      ["/v1/allocate", { ifname: "eth0" }, /containerId/],
      ["/v1/allocate", alloc("bad id!"), /containerId/],
      ["/v1/allocate", alloc("c1", "a-very-long-ifname"), /ifname/],
      ["/v1/allocate", alloc("c1", "eth/0"), /ifname/],
      ["/v1/allocate", alloc("c1", ""), /ifname/],
      // A name the datapath cannot wire is refused before anything is allocated.
      ["/v1/allocate", alloc("c1", "net@1"), /ifname/],
      ["/v1/allocate", { containerId: 42, ifname: "eth0" }, /containerId/],
      ["/v1/allocate", { ...alloc("c1"), pod: { namespace: "Bad_NS!" } }, /pod\.namespace/],
      ["/v1/allocate", { ...alloc("c1"), pod: "default/p" }, /pod/],
      ["/v1/allocate", "{not json", /not valid JSON/],
      ["/v1/allocate", "[1,2]", /object/],
      ["/v1/release", { containerId: "c1", ifname: "x".repeat(16) }, /ifname/],
      ["/v1/release", "nope", /not valid JSON/],
    ];
    for (const [path, body, msg] of cases) {
      const r = await call(s.socket, "POST", path, body);
      expect(r.status, `${path} ${JSON.stringify(body)}: ${r.text}`).toBe(400);
      expect(r.body.error.code).toBe("BadRequest");
      expect(r.body.error.message).toMatch(msg);
    }
    // Without a datapath there is no CNI: a frame, well-formed or not, is a bad request.
    for (const body of [frame({ CNI_COMMAND: "VERSION" }, ""), "junk"]) {
      const r = await call(s.socket, "POST", "/v1/cni", body);
      expect(r.status, r.text).toBe(400);
      expect(r.body.error).toEqual({
        code: "BadRequest",
        message: "this daemon has no datapath: it serves no CNI requests",
      });
    }
    // Nothing was allocated by any of them.
    expect((await call(s.socket, "GET", "/v1/allocations")).body).toEqual({ allocations: [] });
    // The daemon is still fine.
    expect((await call(s.socket, "POST", "/v1/allocate", alloc("c1"))).status).toBe(200);
  });

  it("with a datapath, only CNI requests free an IP: the pool's own API is off; POST /v1/cni takes the forwarder's frames", async () => {
    const s = await start({}, { datapath: { enabled: true } });
    for (const path of ["/v1/allocate", "/v1/release"]) {
      const r = await call(s.socket, "POST", path, alloc("c1"));
      expect(r.status, r.text).toBe(404);
      expect(r.body.error.code).toBe("NotFound");
      expect(r.body.error.message).toMatch(
        /only by a daemon without a datapath; a pod's IP is released by its CNI DEL/,
      );
    }
    // The JSON routes of the old plugin are gone.
    for (const path of ["/v1/cni/add", "/v1/cni/del", "/v1/cni/check", "/v1/cni/gc"]) {
      const r = await call(s.socket, "POST", path, { containerId: "c1", ifname: "eth0", network: "n" });
      expect(r.status, `${path}: ${r.text}`).toBe(404);
      expect(r.body.error).toEqual({ code: "NotFound", message: `no route POST ${path}` });
    }
    // Not a frame: "NAME=VALUE\0" entries and an empty one are what it takes.
    const malformed: [string, string][] = [
      ["an empty body", ""],
      ["no terminator", "CNI_COMMAND=ADD\0CNI_IFNAME=eth0\0"],
      ["no terminator at all", "CNI_COMMAND=ADD"],
      ["an entry without '='", "CNI_COMMAND=ADD\0CNI_IFNAME\0\0{}"],
      ["an entry without a name", "=ADD\0\0{}"],
      ["JSON, as the old plugin sent", JSON.stringify({ containerId: "c1", ifname: "eth0" })],
    ];
    for (const [what, body] of malformed) {
      const r = await call(s.socket, "POST", "/v1/cni", body);
      expect(r.status, `${what}: ${r.text}`).toBe(400);
      expect(r.body.error.code).toBe("BadRequest");
      expect(r.body.error.message).toMatch(/^not a CNI request/);
    }
    // A frame is answered 200 with "EXIT\n" and the plugin's stdout, success or CNI error alike.
    const exec = async (
      vars: Record<string, string>,
      stdin: unknown,
      headers: Record<string, string> = {},
    ) => {
      const r = await call(s.socket, "POST", "/v1/cni", frame(vars, JSON.stringify(stdin)), headers);
      expect(r.status, r.text).toBe(200);
      expect(r.text).toMatch(/^\d{1,3}\n/);
      const nl = r.text.indexOf("\n");
      const stdout = r.text.slice(nl + 1);
      return { exit: Number(r.text.slice(0, nl)), stdout, json: stdout ? JSON.parse(stdout) : undefined };
    };
    const version = await exec({ CNI_COMMAND: "VERSION" }, { cniVersion: "0.4.0" });
    const versions = { cniVersion: "0.4.0", supportedVersions: [...SUPPORTED_VERSIONS] };
    expect(version).toEqual({ exit: 0, stdout: `${JSON.stringify(versions)}\n`, json: versions });
    const net = { cniVersion: "1.1.0", name: "net-a", type: "eniway" };
    const pod = { CNI_CONTAINERID: "c9", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0" };
    expect(await exec({ CNI_COMMAND: "STATUS" }, net)).toEqual({ exit: 0, stdout: "", json: undefined });
    // CNI errors are the plugin's stdout and exit code; the environment is read first, as libcni's skel does
    // (its errors in our version), the configuration's errors are in its version.
    const badIf = await exec(
      { CNI_COMMAND: "ADD", ...pod, CNI_IFNAME: "net@1" },
      { ...net, cniVersion: "1.0.0" },
    );
    expect(badIf.exit).toBe(1);
    expect(badIf.json).toMatchObject({ cniVersion: "1.1.0", code: 4 });
    expect(badIf.json.msg).toContain("CNI_IFNAME");
    const noName = await exec({ CNI_COMMAND: "ADD", ...pod }, { ...net, name: undefined });
    expect(noName.json).toMatchObject({ code: 7, msg: "missing network name" });
    const tooOld = await exec(
      { CNI_COMMAND: "CHECK", ...pod },
      { ...net, cniVersion: "0.3.1", prevResult: {} },
    );
    expect(tooOld.json).toMatchObject({ cniVersion: "0.3.1", code: 1 });
    const nodeNs = await exec({ CNI_COMMAND: "DEL", ...pod, CNI_NETNS: `/var/run/netns/${NODE_NETNS}` }, net);
    expect(nodeNs).toMatchObject({ exit: 1, json: { code: 8 } });
    // CHECK of an attachment the daemon does not know: its own code, 3.
    const unknown = {
      cniVersion: "1.1.0",
      code: 3,
      msg: "no allocation for c9/eth0",
      details: "UnknownContainer",
    };
    const check = await exec({ CNI_COMMAND: "CHECK", ...pod }, { ...net, prevResult: {} });
    expect(check).toEqual({ exit: 1, stdout: `${JSON.stringify(unknown)}\n`, json: unknown });
    // Eniway-Plugin names the executable, which `type` may name; a name that is not plain counts as "eniway".
    const custom = { ...net, type: "my-cni", prevResult: {} };
    const named = await exec({ CNI_COMMAND: "CHECK", ...pod }, custom, { "eniway-plugin": "my-cni" });
    expect(named.json).toEqual(unknown);
    const wrong = await exec({ CNI_COMMAND: "CHECK", ...pod }, custom);
    expect(wrong.json).toMatchObject({ code: 7, msg: 'wrong type "my-cni"' });
    expect(wrong.json.details).toContain('installed as "eniway"');
    const odd = await exec(
      { CNI_COMMAND: "CHECK", ...pod },
      { ...custom, type: "my.cni/x" },
      { "eniway-plugin": "my.cni/x" },
    );
    expect(odd.json).toMatchObject({ code: 7, msg: 'wrong type "my.cni/x"' });
    // GC with nothing to release, and a DEL of what was never added: success.
    const gc = await exec({ CNI_COMMAND: "GC" }, { ...net, "cni.dev/valid-attachments": [] });
    expect(gc).toEqual({ exit: 0, stdout: "", json: undefined });
    expect(await exec({ CNI_COMMAND: "DEL", ...pod }, net)).toEqual({ exit: 0, stdout: "", json: undefined });
    // Larger than the forwarder can send (8 MiB of stdin, its environment on top): refused.
    const huge = await call(
      s.socket,
      "POST",
      "/v1/cni",
      frame({ CNI_COMMAND: "ADD" }, "x".repeat(9 * 1024 * 1024)),
    );
    expect(huge.status).toBe(400);
    expect(huge.body.error).toEqual({
      code: "BadRequest",
      message: `request body larger than ${9 * 1024 * 1024} bytes`,
    });
    expect((await call(s.socket, "GET", "/v1/allocations")).body).toEqual({ allocations: [] });
    expect((await call(s.socket, "GET", "/readyz")).status, "the daemon is still fine").toBe(200);
  });

  it("STATUS through the forwarder: code 50 while the daemon is not ready, success once it is", async () => {
    const s = await start({}, { datapath: { enabled: true } });
    expect((await term(s.daemon)).code).toBe(0);
    // A slow DescribeNetworkInterfaces holds the next start-up's reconcile: the socket serves, not ready.
    await setKnob(s.sim, "latency", { DescribeNetworkInterfaces: 3000 });
    const d2 = spawnDaemon(["--config", s.configFile]);
    await waitFor("the socket", () => exists(s.socket), 10_000, 5);
    const status = () =>
      runPlugin(
        { CNI_COMMAND: "STATUS" },
        { cniVersion: "1.1.0", name: "net-a", type: "eniway", socket: s.socket },
      );
    const early = await status();
    expect(early.code, early.stdout).toBe(1);
    expect(early.json).toEqual({
      cniVersion: "1.1.0",
      code: 50,
      msg: "plugin not available",
      details: "eniway daemon is not ready",
    });
    expect(early.stderr).toBe("");
    expect((await call(s.socket, "GET", "/readyz")).status, "still starting").toBe(503);
    await waitReady(s, d2, 30_000);
    const later = await status();
    expect(later.code, later.stdout).toBe(0);
    expect(later.stdout).toBe("");
  });

  it("exits 0 on SIGTERM within 10 s with the store intact; logs are JSON lines without the secret", async () => {
    const s = await start();
    const ips: string[] = [];
    for (const c of ["c1", "c2", "c3"]) {
      const r = await call(s.socket, "POST", "/v1/allocate", alloc(c));
      expect(r.status, r.text).toBe(200);
      ips.push(r.body.ip);
    }
    await call(s.socket, "POST", "/v1/release", { containerId: "c3", ifname: "eth0" });

    const { code, ms } = await term(s.daemon);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    // The socket is gone with the daemon.
    expect(await exists(s.socket)).toBe(false);

    const doc = JSON.parse(await readFile(join(s.stateDir, "pool.json"), "utf8")) as StoreDoc;
    expect(doc.format).toBe(STORE_BASE_FORMAT); // an ip-mode store: no prefix in it
    expect(doc.instanceId).toBe(NODE);
    expect(doc.intents).toEqual({});
    expect(doc.ips[ips[0]!]).toMatchObject({
      phase: "assigned",
      owner: { containerId: "c1", ifname: "eth0" },
    });
    expect(doc.ips[ips[1]!]).toMatchObject({
      phase: "assigned",
      owner: { containerId: "c2", ifname: "eth0" },
    });
    expect(doc.ips[ips[2]!]?.owner).toBeUndefined();
    // A clean stop gives up the state dir's lock: only the store is left.
    expect((await readdir(s.stateDir)).sort()).toEqual(["pool.json"]);
    expect((await stat(join(s.stateDir, "pool.json"))).mode & 0o777).toBe(0o600);

    const lines = s.daemon
      .stderr()
      .split("\n")
      .filter((l) => l !== "");
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(typeof rec.level, line).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(rec.level);
      expect(typeof rec.msg, line).toBe("string");
      expect(Number.isNaN(Date.parse(String(rec.time)))).toBe(false);
    }
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toContain("daemon ready");
    expect(msgs).toContain("stopped");
    expect(s.daemon.stderr()).not.toContain(SK);
    expect(s.daemon.stderr()).not.toContain(encodeURIComponent(SK));

    // A restart serves the same allocation for the same key.
    const d2 = spawnDaemon(["--config", s.configFile]);
    await waitReady(s, d2);
    const r = await call(s.socket, "POST", "/v1/allocate", alloc("c1"));
    expect(r.body.ip).toBe(ips[0]);
    expect((await term(d2)).code).toBe(0);
  });

  it("a second daemon on the same socket refuses to start and leaves the first one serving", async () => {
    const s = await start();
    const second = spawnDaemon(["--config", s.configFile]);
    const r = await second.exited;
    expect(r.code).not.toBe(0);
    // Its store lock or its socket stops it, whichever it reaches first.
    expect(second.stderr()).toMatch(/pool\.lock is held by running process \d+|another daemon is serving/);
    // The first one still owns the socket and still answers.
    expect(await exists(s.socket)).toBe(true);
    expect((await call(s.socket, "GET", "/readyz")).status).toBe(200);
    expect((await call(s.socket, "POST", "/v1/allocate", alloc("c1"))).status).toBe(200);
  });

  it("the socket's folder is 0700 even when it existed; a folder it shares with other files keeps its mode", async () => {
    const s = await setup();
    await mkdir(join(s.dir, "run"), { mode: 0o755 });
    await chmod(join(s.dir, "run"), 0o755); // whatever the umask made of it, as a kubelet's hostPath is
    const d = spawnDaemon(["--config", s.configFile]);
    await waitReady(s, d);
    expect((await stat(join(s.dir, "run"))).mode & 0o777).toBe(0o700);
    expect((await term(d)).code).toBe(0);

    // Shared with another file: not eniway's alone, so its mode stays, and the daemon says so.
    await chmod(join(s.dir, "run"), 0o755);
    await writeFile(join(s.dir, "run", "someone-else"), "");
    const d2 = spawnDaemon(["--config", s.configFile]);
    await waitReady(s, d2);
    expect((await stat(join(s.dir, "run"))).mode & 0o777).toBe(0o755);
    expect((await lstat(s.socket)).mode & 0o777).toBe(0o600);
    expect(d2.stderr()).toContain("the socket's folder holds other files");
    expect((await term(d2)).code).toBe(0);
  });

  it("a stale socket file from a crashed daemon does not stop the next one", async () => {
    const s = await start();
    s.daemon.child.kill("SIGKILL");
    await s.daemon.exited;
    expect(await exists(s.socket)).toBe(true); // nobody removed it
    const d2 = spawnDaemon(["--config", s.configFile]);
    await waitReady(s, d2);
    expect((await lstat(s.socket)).mode & 0o777).toBe(0o600);
    expect((await term(d2)).code).toBe(0);
  });

  it("holds allocations until the start-up reconcile is done, so it never hands out an IP the cloud lost", async () => {
    const s = await start({ minIdle: 4 });
    // Hold the ENI's primary IP, so that every idle IP can be taken away behind the daemon's back.
    await waitFor("a warm pool", async () => (await call(s.socket, "GET", "/v1/pool")).body.idle >= 4);
    const eniId = ourEnis(s.sim)[0]!.id;
    const primary = s.sim.state.enis.get(eniId)!.ips[0]!;
    const held: string[] = [];
    for (let i = 0; i < 6 && !held.includes(primary); i++)
      held.push((await call(s.socket, "POST", "/v1/allocate", alloc(`h${i}`))).body.ip);
    expect(held).toContain(primary);
    expect((await term(s.daemon)).code).toBe(0);

    const doc = JSON.parse(await readFile(join(s.stateDir, "pool.json"), "utf8")) as StoreDoc;
    const idle = Object.values(doc.ips)
      .filter((r) => r.phase === "idle" || r.phase === "cooling")
      .map((r) => r.ip);
    expect(idle.length).toBeGreaterThan(0);
    const outsider = cloudFor(s.sim);
    await outsider.unassignPrivateIpAddresses(eniId, idle);
    await outsider.close();
    // A slow DescribeNetworkInterfaces makes the start-up reconcile take a while.
    await setKnob(s.sim, "latency", { AttachNetworkInterface: [100, 200], DescribeNetworkInterfaces: 400 });

    const d2 = spawnDaemon(["--config", s.configFile]);
    await waitFor("the socket", () => exists(s.socket), 10_000, 5);
    const r = await call(s.socket, "POST", "/v1/allocate", alloc("new"));
    expect(r.status, r.text).toBe(200);
    expect(idle).not.toContain(r.body.ip);
    expect(s.sim.state.enis.get(r.body.eniId)?.ips).toContain(r.body.ip);
    await waitReady(s, d2);
    expect(d2.stderr()).not.toMatch(/allocation lost/);
  });
});

describe("eniway daemon (started in this process)", () => {
  it("a listener that cannot start leaves no socket server and no store lock behind", async () => {
    const s = await setup({}, { datapath: { enabled: false } });
    const busy = createServer();
    await listen(busy, { host: "127.0.0.1", port: 0 });
    try {
      const port = (busy.address() as AddressInfo).port;
      const config = await loadConfig(s.configFile, [`http.listen=127.0.0.1:${port}`]);
      await expect(startDaemon(config, silentLogger)).rejects.toThrow(/EADDRINUSE/);
      // Nothing serves the socket any more, and the state dir is not locked.
      await expect(call(s.socket, "GET", "/healthz")).rejects.toThrow();
      expect(await exists(join(s.stateDir, "pool.lock"))).toBe(false);
    } finally {
      await closeServer(busy);
    }
    // The next daemon starts on the same socket and state dir.
    await waitReady(s, spawnDaemon(["--config", s.configFile]));
  });
});
