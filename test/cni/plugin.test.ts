// Spec conformance of the thin CNI plugin: the BUILT executable is run the way
// runtimes run it (environment + stdin; stdout, stderr and exit code read
// back) against a fake daemon on a unix socket. The DEL fallback is checked
// against real network namespaces.

import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/veth.js";
import {
  createNetns,
  DEFAULT_ADD_ANSWER,
  deleteNetns,
  ensurePluginBuilt,
  FakeDaemon,
  ip,
  ipOk,
  type RunResult,
  runPlugin,
  tempDir,
} from "./helpers.js";

const SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
// A namespace path that does not exist: the fake daemon does not open it, and
// the plugin's "not my own namespace" check skips paths it cannot open.
const POD_NETNS = "/var/run/netns/eniway-t-absent-pod";

let tmp: { dir: string; remove: () => void };
let socket: string;
let daemon: FakeDaemon;

beforeAll(() => ensurePluginBuilt(), 300_000);

beforeEach(async () => {
  tmp = tempDir();
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

const env = (
  command: string,
  over: Record<string, string | undefined> = {},
): Record<string, string | undefined> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: "c0ffee01",
  CNI_NETNS: POD_NETNS,
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  ...over,
});

/** The body of the first ADD the daemon received. */
const addBody = (): Record<string, unknown> =>
  (daemon.of("POST /v1/cni/add")[0]?.body ?? {}) as Record<string, unknown>;

/** A CNI error: non-zero exit, the spec's error JSON on stdout, silent stderr. */
function expectError(r: RunResult, code: number, msgPart?: string | RegExp): void {
  expect(r.code, r.stdout).not.toBe(0);
  expect(r.json, "error JSON on stdout").toBeDefined();
  expect(r.json?.code, r.stdout).toBe(code);
  expect(typeof r.json?.msg).toBe("string");
  expect(typeof r.json?.cniVersion).toBe("string");
  if (typeof msgPart === "string") expect(r.json?.msg).toContain(msgPart);
  else if (msgPart) expect(r.json?.msg).toMatch(msgPart);
  expect(r.stderr).toBe("");
}

/** Success with nothing on stdout or stderr. */
function expectSilentSuccess(r: RunResult): void {
  expect(r.code, r.stdout).toBe(0);
  expect(r.stdout).toBe("");
  expect(r.stderr).toBe("");
}

const prevResult11 = (netns = POD_NETNS, host = DEFAULT_ADD_ANSWER.hostIfname, addr = "10.0.1.5") => ({
  cniVersion: "1.1.0",
  interfaces: [
    { name: host, mac: "02:aa:bb:cc:dd:02" },
    { name: "eth0", mac: "02:aa:bb:cc:dd:01", sandbox: netns },
  ],
  ips: [{ interface: 1, address: `${addr}/32`, gateway: "169.254.1.1" }],
  routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
  dns: {},
});

// -------------------------------------------------------------------- VERSION

describe("VERSION", () => {
  it("echoes the requested version and lists every supported one", async () => {
    for (const v of ["1.1.0", "1.0.0", "0.4.0", "0.3.1"]) {
      const r = await runPlugin({ CNI_COMMAND: "VERSION" }, { cniVersion: v });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: v, supportedVersions: SUPPORTED });
      expect(r.stderr).toBe("");
    }
  });

  it("answers 1.1.0 with no input, and needs no other variable", async () => {
    const r = await runPlugin({ CNI_COMMAND: "VERSION" }, "");
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: "1.1.0", supportedVersions: SUPPORTED });
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
  });

  it("ignores a configuration that is not JSON", async () => {
    const r = await runPlugin({ CNI_COMMAND: "VERSION" }, "{nope");
    expect(r.code).toBe(0);
    expect(r.json?.cniVersion).toBe("1.1.0");
  });
});

// ------------------------------------------------------------ environment (4)

describe("environment validation (code 4, naming the variable)", () => {
  it("rejects a missing CNI_COMMAND", async () => {
    const r = await runPlugin({}, conf());
    expectError(r, 4, "CNI_COMMAND");
  });

  it("rejects an unknown CNI_COMMAND", async () => {
    const r = await runPlugin(env("FROB"), conf());
    expectError(r, 4, "unknown CNI_COMMAND: FROB");
  });

  for (const cmd of ["ADD", "DEL", "CHECK"]) {
    for (const v of ["CNI_CONTAINERID", "CNI_IFNAME"]) {
      it(`${cmd} requires ${v}`, async () => {
        const r = await runPlugin(env(cmd, { [v]: undefined }), conf({ prevResult: prevResult11() }));
        expectError(r, 4, v);
        expect(daemon.requests).toHaveLength(0);
      });
    }
  }

  for (const cmd of ["ADD", "CHECK"]) {
    it(`${cmd} requires CNI_NETNS`, async () => {
      const r = await runPlugin(env(cmd, { CNI_NETNS: "" }), conf({ prevResult: prevResult11() }));
      expectError(r, 4, "CNI_NETNS");
    });
  }

  it("lists every missing variable at once", async () => {
    const r = await runPlugin({ CNI_COMMAND: "ADD" }, conf());
    expectError(r, 4, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing");
  });

  it("does not require CNI_NETNS for DEL, nor CNI_PATH for anything", async () => {
    const r = await runPlugin(env("DEL", { CNI_NETNS: undefined, CNI_PATH: undefined }), conf());
    expectSilentSuccess(r);
  });

  for (const id of ["-leading-dash", "_leading", "has/slash", "has space", "semi;colon", "ünïcode"]) {
    it(`rejects the container ID ${JSON.stringify(id)}`, async () => {
      const r = await runPlugin(env("ADD", { CNI_CONTAINERID: id }), conf());
      expectError(r, 4, "CNI_CONTAINERID");
      expect(r.json?.details).toBe(id);
    });
  }

  it("accepts container IDs of any case with _ . and -", async () => {
    const r = await runPlugin(env("ADD", { CNI_CONTAINERID: "ABCdef_0.1-2" }), conf());
    expect(r.code, r.stdout).toBe(0);
    expect(addBody().containerId).toBe("ABCdef_0.1-2");
  });

  const badIfnames: [string, string][] = [
    ["a".repeat(16), "too long"],
    ["é".repeat(8), "too long"], // 16 bytes: the limit counts bytes, as the kernel does
    [".", ". or .."],
    ["..", ". or .."],
    ["eth/0", "/ or :"],
    ["eth:0", "/ or :"],
    ["eth 0", "whitespace"],
    ["eth\t0", "whitespace"],
  ];
  for (const [name, why] of badIfnames) {
    it(`rejects CNI_IFNAME ${JSON.stringify(name)} (${why})`, async () => {
      const r = await runPlugin(env("ADD", { CNI_IFNAME: name }), conf());
      expectError(r, 4, "CNI_IFNAME");
      expect(r.json?.msg).toContain(why);
    });
  }

  // Names libcni accepts but eniway cannot wire: refused before the daemon hears of them.
  for (const name of ["net@1", "eth#0", "é", 'a"b', "a\\b"]) {
    for (const cmd of ["ADD", "CHECK"]) {
      it(`${cmd} refuses CNI_IFNAME ${JSON.stringify(name)} (code 4, nothing allocated)`, async () => {
        const r = await runPlugin(env(cmd, { CNI_IFNAME: name }), conf({ prevResult: prevResult11() }));
        expectError(r, 4, "CNI_IFNAME");
        expect(r.json?.msg).toContain("eniway cannot wire this interface name");
        expect(daemon.requests).toHaveLength(0);
      });
    }
    it(`DEL of CNI_IFNAME ${JSON.stringify(name)} succeeds with nothing to do`, async () => {
      expectSilentSuccess(await runPlugin(env("DEL", { CNI_IFNAME: name }), conf()));
      expect(daemon.requests).toHaveLength(0);
    });
  }

  it("accepts a 15-character interface name", async () => {
    const r = await runPlugin(env("ADD", { CNI_IFNAME: "a".repeat(15) }), conf());
    expect(r.code, r.stdout).toBe(0);
  });

  for (const cmd of ["ADD", "DEL"]) {
    it(`${cmd} rejects a relative CNI_NETNS`, async () => {
      const r = await runPlugin(env(cmd, { CNI_NETNS: "run/netns/x" }), conf());
      expectError(r, 4, "CNI_NETNS");
    });
  }

  it("rejects the plugin's own namespace as CNI_NETNS (code 8)", async () => {
    const r = await runPlugin(env("ADD", { CNI_NETNS: "/proc/self/ns/net" }), conf());
    expectError(r, 8, "should not be the same");
    expect(daemon.requests).toHaveLength(0);
  });

  it("rejects unknown CNI_ARGS keys", async () => {
    const r = await runPlugin(env("ADD", { CNI_ARGS: "K8S_POD_NAME=web;FOO=bar" }), conf());
    expectError(r, 4, "CNI_ARGS");
    expect(r.json?.msg).toContain("FOO=bar");
    expect(daemon.requests).toHaveLength(0);
  });

  for (const pair of ["FOO", "A=B=C", "K8S_POD_NAME=web;"]) {
    it(`rejects the CNI_ARGS pair in ${JSON.stringify(pair)}`, async () => {
      const r = await runPlugin(env("ADD", { CNI_ARGS: pair }), conf());
      expectError(r, 4, "CNI_ARGS: invalid pair");
    });
  }

  it("rejects an IgnoreUnknown that is not a boolean", async () => {
    const r = await runPlugin(env("ADD", { CNI_ARGS: "IgnoreUnknown=maybe;FOO=bar" }), conf());
    expectError(r, 4, "CNI_ARGS");
  });

  for (const flag of ["1", "true", "TRUE", "True"]) {
    it(`IgnoreUnknown=${flag} ignores unknown keys and forwards the known ones`, async () => {
      const r = await runPlugin(
        env("ADD", { CNI_ARGS: `IgnoreUnknown=${flag};FOO=bar;K8S_POD_NAME=web-0;OTHER=x` }),
        conf(),
      );
      expect(r.code, r.stdout).toBe(0);
      expect(addBody().args).toEqual({
        K8S_POD_NAME: "web-0",
      });
    });
  }

  it("IgnoreUnknown=0 still rejects unknown keys", async () => {
    const r = await runPlugin(env("ADD", { CNI_ARGS: "IgnoreUnknown=0;FOO=bar" }), conf());
    expectError(r, 4, "unknown args");
  });
});

// -------------------------------------------------- configuration (6, 1, 7)

describe("configuration validation", () => {
  for (const [what, text] of [
    ["invalid JSON", "{not json"],
    ["empty stdin", ""],
    ["a JSON array", "[]"],
    ["a JSON string", '"eniway"'],
  ]) {
    it(`rejects ${what} with code 6`, async () => {
      const r = await runPlugin(env("ADD"), text);
      expectError(r, 6, "error unmarshall network config");
      expect(r.json?.cniVersion).toBe("1.1.0");
      expect(daemon.requests).toHaveLength(0);
    });
  }

  for (const [what, v] of [
    ["missing", undefined],
    ["empty", ""],
    ["0.2.0", "0.2.0"],
    ["0.1.0", "0.1.0"],
    ["2.0.0", "2.0.0"],
    ["1.1", "1.1"],
    ["a number", 1],
  ] as [string, unknown][]) {
    it(`rejects a ${what} cniVersion with code 1`, async () => {
      const c = conf({ cniVersion: v });
      if (v === undefined) delete c.cniVersion;
      const r = await runPlugin(env("ADD"), c);
      expectError(r, 1, "incompatible CNI versions");
      expect(r.json?.details).toContain("plugin supports");
      expect(daemon.requests).toHaveLength(0);
    });
  }

  it("reports the configuration's own cniVersion in errors", async () => {
    const r = await runPlugin(env("ADD"), conf({ cniVersion: "0.4.0", socket: "relative.sock" }));
    expectError(r, 7);
    expect(r.json?.cniVersion).toBe("0.4.0");
  });

  for (const [cmd, v] of [
    ["CHECK", "0.3.1"],
    ["CHECK", "0.3.0"],
    ["GC", "1.0.0"],
    ["GC", "0.4.0"],
    ["STATUS", "1.0.0"],
  ]) {
    it(`does not allow ${cmd} with a ${v} configuration (code 1)`, async () => {
      const r = await runPlugin(
        env(cmd as string),
        conf({ cniVersion: v, prevResult: prevResult11(), "cni.dev/valid-attachments": [] }),
      );
      expectError(r, 1, `config version does not allow ${cmd}`);
      expect(daemon.requests).toHaveLength(0);
    });
  }

  const badConfigs: [string, Record<string, unknown>, string][] = [
    ["no name", { name: undefined }, "missing network name"],
    ["an empty name", { name: "" }, "missing network name"],
    ["a name with a slash", { name: "a/b" }, "invalid characters found in network name"],
    ["a numeric name", { name: 7 }, "network name"],
    ["no type", { type: undefined }, "missing type"],
    ["a numeric type", { type: 1 }, "type must be a string"],
    ["another plugin's type", { type: "bridge" }, "wrong type"],
    ["a relative socket", { socket: "run/eniway.sock" }, "socket must be an absolute path"],
    ["a numeric socket", { socket: 5 }, "socket must be an absolute path"],
    ["a string timeoutSeconds", { timeoutSeconds: "60" }, "timeoutSeconds"],
    ["a zero timeoutSeconds", { timeoutSeconds: 0 }, "timeoutSeconds"],
    ["a negative timeoutSeconds", { timeoutSeconds: -1 }, "timeoutSeconds"],
    ["a relative nodeNetns", { nodeNetns: "netns/node" }, "nodeNetns"],
    ["a non-boolean debug", { debug: "yes" }, "debug"],
    ["a prevResult that is not an object", { prevResult: [1] }, "prevResult"],
  ];
  for (const [what, over, msg] of badConfigs) {
    it(`rejects ${what} with code 7`, async () => {
      const c = conf(over);
      for (const [k, v] of Object.entries(over)) if (v === undefined) delete c[k];
      const r = await runPlugin(env("ADD"), c);
      expectError(r, 7, msg);
      expect(daemon.requests).toHaveLength(0);
    });
  }

  it("ignores keys it does not know (runtimeConfig, capabilities, args, cni.dev/*, others)", async () => {
    const r = await runPlugin(
      env("ADD"),
      conf({
        runtimeConfig: { portMappings: [] },
        capabilities: { portMappings: true },
        args: { labels: { a: "b" } },
        "cni.dev/something": 1,
        ipam: {},
        mtu: 9000,
        somethingElse: [1, 2, 3],
      }),
    );
    expect(r.code, r.stdout).toBe(0);
  });

  it("is not influenced by a .env or bunfig.toml in its working directory", async () => {
    // Compiled Bun executables load both by default; the build turns that off.
    writeFileSync(join(tmp.dir, ".env"), "CNI_ARGS=FOO=bar\nCNI_IFNAME=bad/name\n");
    writeFileSync(join(tmp.dir, "bunfig.toml"), 'preload = ["./nothing-here.ts"]\n');
    const r = await runPlugin(env("ADD", { CNI_ARGS: undefined }), conf(), { cwd: tmp.dir });
    expect(r.code, r.stdout).toBe(0);
    expect(addBody().args).toEqual({});
  });

  it("uses the default socket /run/eniway/eniway.sock when none is configured", async () => {
    const c = conf();
    delete c.socket;
    const r = await runPlugin(env("ADD"), { ...c, timeoutSeconds: 1 });
    // No daemon is listening there in the test: the error names the path.
    expectError(r, 11, "try again later");
    expect(r.json?.details).toContain("/run/eniway/eniway.sock");
  });
});

// ------------------------------------------------------------------------ ADD

describe("ADD", () => {
  it("forwards the attachment to POST /v1/cni/add", async () => {
    const r = await runPlugin(
      env("ADD", {
        CNI_CONTAINERID: "0123abcd",
        CNI_IFNAME: "net1",
        CNI_ARGS:
          "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=5f1e-22",
      }),
      conf({ name: "pods" }),
    );
    expect(r.code, r.stdout).toBe(0);
    const reqs = daemon.of("POST /v1/cni/add");
    expect(reqs).toHaveLength(1);
    expect(daemon.requests).toHaveLength(1);
    expect(reqs[0]?.headers["content-type"]).toBe("application/json");
    expect(reqs[0]?.body).toEqual({
      containerId: "0123abcd",
      ifname: "net1",
      netns: POD_NETNS,
      args: {
        K8S_POD_NAMESPACE: "default",
        K8S_POD_NAME: "web-0",
        K8S_POD_INFRA_CONTAINER_ID: "0123abcd",
        K8S_POD_UID: "5f1e-22",
      },
      network: "pods",
    });
  });

  it("sends empty args when CNI_ARGS is unset", async () => {
    await runPlugin(env("ADD"), conf());
    expect(addBody().args).toEqual({});
  });

  const hostIf = { name: DEFAULT_ADD_ANSWER.hostIfname, mac: DEFAULT_ADD_ANSWER.hostMac };
  const podIf = { name: "eth0", mac: DEFAULT_ADD_ANSWER.podMac, sandbox: POD_NETNS };
  const route = { dst: "0.0.0.0/0", gw: "169.254.1.1" };

  it("returns a 1.1.0 result with interface MTUs", async () => {
    const r = await runPlugin(env("ADD"), conf({ cniVersion: "1.1.0" }));
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toEqual({
      cniVersion: "1.1.0",
      interfaces: [
        { ...hostIf, mtu: 1500 },
        { ...podIf, mtu: 1500 },
      ],
      ips: [{ interface: 1, address: "10.0.1.5/32", gateway: "169.254.1.1" }],
      routes: [route],
      dns: {},
    });
    expect(r.stderr).toBe("");
  });

  it("returns a 1.0.0 result (no mtu, no ips[].version)", async () => {
    const r = await runPlugin(env("ADD"), conf({ cniVersion: "1.0.0" }));
    expect(r.json).toEqual({
      cniVersion: "1.0.0",
      interfaces: [hostIf, podIf],
      ips: [{ interface: 1, address: "10.0.1.5/32", gateway: "169.254.1.1" }],
      routes: [route],
      dns: {},
    });
  });

  for (const v of ["0.4.0", "0.3.1", "0.3.0"]) {
    it(`returns a ${v} result (ips[].version "4")`, async () => {
      const r = await runPlugin(env("ADD"), conf({ cniVersion: v }));
      expect(r.code, r.stdout).toBe(0);
      expect(r.json).toEqual({
        cniVersion: v,
        interfaces: [hostIf, podIf],
        ips: [{ version: "4", interface: 1, address: "10.0.1.5/32", gateway: "169.254.1.1" }],
        routes: [route],
        dns: {},
      });
    });
  }

  it("uses the prefix and gateway the daemon gives, and omits mtu when it gives none", async () => {
    const { mtu: _mtu, ...noMtu } = DEFAULT_ADD_ANSWER;
    daemon.on("POST /v1/cni/add", () => ({
      status: 200,
      body: { ...noMtu, prefix: 24, gateway: "10.0.1.253" },
    }));
    const r = await runPlugin(env("ADD"), conf());
    expect(r.json?.interfaces).toEqual([hostIf, podIf]);
    expect(r.json?.ips).toEqual([{ interface: 1, address: "10.0.1.5/24", gateway: "10.0.1.253" }]);
    expect(r.json?.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.0.1.253" }]);
  });

  it("passes the configuration's dns through to the result", async () => {
    const dns = { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"], options: ["ndots:5"] };
    const r = await runPlugin(env("ADD"), conf({ dns }));
    expect(r.json?.dns).toEqual(dns);
  });

  it("keeps a prevResult it is handed and appends its own interfaces", async () => {
    const prev = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "dummy0", mac: "02:00:00:00:00:09" }],
      ips: [{ interface: 0, address: "192.168.9.2/24" }],
      routes: [{ dst: "192.168.0.0/16" }],
      dns: { nameservers: ["192.168.9.1"] },
    };
    const r = await runPlugin(env("ADD"), conf({ cniVersion: "1.0.0", prevResult: prev }));
    expect(r.json).toEqual({
      cniVersion: "1.0.0",
      interfaces: [prev.interfaces[0], hostIf, podIf],
      ips: [
        { interface: 0, address: "192.168.9.2/24" },
        { interface: 2, address: "10.0.1.5/32", gateway: "169.254.1.1" },
      ],
      routes: [{ dst: "192.168.0.0/16" }, route],
      dns: { nameservers: ["192.168.9.1"] },
    });
  });

  it("reads a chunked answer", async () => {
    daemon.on("POST /v1/cni/add", () => ({ status: 200, body: DEFAULT_ADD_ANSWER, chunked: true }));
    const r = await runPlugin(env("ADD"), conf());
    expect(r.code, r.stdout).toBe(0);
    expect(r.json?.ips).toEqual([expect.objectContaining({ address: "10.0.1.5/32" })]);
  });

  it("maps the daemon's 503 TryAgainLater to code 11 with its message", async () => {
    daemon.on("POST /v1/cni/add", () => ({
      status: 503,
      body: { error: { code: "TryAgainLater", message: "no idle IP within 30 s" } },
    }));
    const r = await runPlugin(env("ADD"), conf());
    expectError(r, 11, "no idle IP within 30 s");
  });

  it("maps the daemon's 400 BadRequest to code 7", async () => {
    daemon.on("POST /v1/cni/add", () => ({
      status: 400,
      body: { error: { code: "BadRequest", message: "netns is missing or invalid" } },
    }));
    const r = await runPlugin(env("ADD"), conf());
    expectError(r, 7, "netns is missing or invalid");
  });

  it("maps any other daemon error to code 999 with its message", async () => {
    daemon.on("POST /v1/cni/add", () => ({
      status: 500,
      body: { error: { code: "Internal", message: "veth creation failed: File exists" } },
    }));
    const r = await runPlugin(env("ADD"), conf());
    expectError(r, 999, "veth creation failed: File exists");
    expect(r.json?.details).toContain("HTTP 500");
  });

  it("maps a non-JSON error answer to code 999", async () => {
    daemon.on("POST /v1/cni/add", () => ({ status: 502, text: "bad gateway" }));
    const r = await runPlugin(env("ADD"), conf());
    expectError(r, 999, "bad gateway");
  });

  for (const [what, body] of [
    ["no ip", { ...DEFAULT_ADD_ANSWER, ip: undefined }],
    ["an IPv6 ip", { ...DEFAULT_ADD_ANSWER, ip: "fd00::5" }],
    ["a bad host interface", { ...DEFAULT_ADD_ANSWER, hostIfname: "x; reboot" }],
    ["a bad MAC", { ...DEFAULT_ADD_ANSWER, podMac: "zz" }],
    ["not JSON", "not json"],
  ] as [string, unknown][]) {
    it(`rejects a 200 answer with ${what} (code 999)`, async () => {
      daemon.on("POST /v1/cni/add", () =>
        typeof body === "string" ? { status: 200, text: body } : { status: 200, body },
      );
      const r = await runPlugin(env("ADD"), conf());
      expectError(r, 999, "invalid answer from the eniway daemon");
    });
  }

  it("answers code 11 when the daemon's socket does not exist", async () => {
    const r = await runPlugin(env("ADD"), conf({ socket: join(tmp.dir, "absent.sock") }));
    expectError(r, 11, "try again later: daemon not reachable");
    expect(r.json?.details).toContain("ENOENT");
  });

  it("answers code 11 when nothing listens on the socket path", async () => {
    const dead = join(tmp.dir, "dead.sock");
    writeFileSync(dead, "");
    const r = await runPlugin(env("ADD"), conf({ socket: dead }));
    expectError(r, 11, "daemon not reachable");
    expect(r.json?.details).toContain("ECONNREFUSED");
  });

  it("answers code 11 when the daemon drops the connection", async () => {
    daemon.on("POST /v1/cni/add", () => "destroy");
    const r = await runPlugin(env("ADD"), conf());
    expectError(r, 11, "daemon not reachable");
  });

  it("gives up after timeoutSeconds with code 11", async () => {
    daemon.on("POST /v1/cni/add", () => "hang");
    const started = Date.now();
    const r = await runPlugin(env("ADD"), conf({ timeoutSeconds: 0.5 }));
    const took = Date.now() - started;
    expectError(r, 11, "daemon not reachable");
    expect(r.json?.details).toContain("no answer within 0.5 s");
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(5000);
  });

  it("waits for a slow daemon within timeoutSeconds", async () => {
    daemon.on("POST /v1/cni/add", () => ({ status: 200, body: DEFAULT_ADD_ANSWER, delayMs: 700 }));
    const started = Date.now();
    const r = await runPlugin(env("ADD"), conf({ timeoutSeconds: 5 }));
    expect(r.code, r.stdout).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
    expect(r.json?.ips).toEqual([expect.objectContaining({ address: "10.0.1.5/32" })]);
  });

  it("with debug: true logs JSON lines on stderr and keeps stdout to the result", async () => {
    const r = await runPlugin(env("ADD"), conf({ debug: true }));
    expect(r.code).toBe(0);
    expect(r.json?.cniVersion).toBe("1.1.0");
    const lines = r.stderr.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(lines.map((l) => JSON.parse(l).msg)).toContain("daemon answered");
  });
});

// ------------------------------------------------------------------------ DEL

describe("DEL", () => {
  it("forwards the attachment and prevResult to POST /v1/cni/del; prints nothing", async () => {
    const prev = prevResult11();
    const r = await runPlugin(env("DEL"), conf({ prevResult: prev }));
    expectSilentSuccess(r);
    expect(daemon.of("POST /v1/cni/del").map((q) => q.body)).toEqual([
      { containerId: "c0ffee01", ifname: "eth0", netns: POD_NETNS, network: "eniway-net", prevResult: prev },
    ]);
  });

  it("succeeds twice in a row (containerd's stop and remove)", async () => {
    expectSilentSuccess(await runPlugin(env("DEL"), conf({ prevResult: prevResult11() })));
    expectSilentSuccess(await runPlugin(env("DEL", { CNI_NETNS: "" }), conf()));
    expect(daemon.of("POST /v1/cni/del")).toHaveLength(2);
  });

  it("succeeds with an empty CNI_NETNS and no prevResult", async () => {
    const r = await runPlugin(env("DEL", { CNI_NETNS: "" }), conf());
    expectSilentSuccess(r);
    expect(daemon.of("POST /v1/cni/del")[0]?.body).toEqual({
      containerId: "c0ffee01",
      ifname: "eth0",
      netns: "",
      network: "eniway-net",
    });
  });

  it("succeeds with an empty CNI_NETNS and no prevResult when the daemon is down", async () => {
    const r = await runPlugin(env("DEL", { CNI_NETNS: "" }), conf({ socket: join(tmp.dir, "absent.sock") }));
    expectSilentSuccess(r);
  });

  for (const v of ["0.3.1", "0.4.0", "1.0.0"]) {
    it(`works with a ${v} configuration`, async () => {
      expectSilentSuccess(await runPlugin(env("DEL"), conf({ cniVersion: v })));
    });
  }

  it("reports a daemon error instead of hiding it", async () => {
    daemon.on("POST /v1/cni/del", () => ({
      status: 500,
      body: { error: { code: "Internal", message: "store write failed" } },
    }));
    const r = await runPlugin(env("DEL"), conf());
    expectError(r, 999, "store write failed");
  });

  it("maps a daemon 503 to code 11", async () => {
    daemon.on("POST /v1/cni/del", () => ({
      status: 503,
      body: { error: { code: "TryAgainLater", message: "busy" } },
    }));
    const r = await runPlugin(env("DEL"), conf());
    expectError(r, 11, "busy");
  });

  it("succeeds when the daemon hangs past timeoutSeconds", async () => {
    daemon.on("POST /v1/cni/del", () => "hang");
    const r = await runPlugin(env("DEL", { CNI_NETNS: "" }), conf({ timeoutSeconds: 0.3 }));
    expectSilentSuccess(r);
  });

  it("ignores identifiers in prevResult that must not reach a command, and still succeeds", async () => {
    const prev = {
      cniVersion: "1.1.0",
      interfaces: [{ name: "x;reboot" }, { name: "eth0", sandbox: POD_NETNS }],
      ips: [
        { interface: 1, address: "$(reboot)/32" },
        { interface: 1, address: "300.1.1.1/32" },
      ],
    };
    const r = await runPlugin(env("DEL"), conf({ socket: join(tmp.dir, "absent.sock"), prevResult: prev }));
    expectSilentSuccess(r);
  });
});

// --------------------------------------------- DEL fallback, real namespaces

describe("DEL without a daemon cleans what eniway made for the pod (real namespaces)", () => {
  let ns = "";
  // The host veth eniway's datapath makes for c0ffee01/eth0.
  const HOST = hostVethName("c0ffee01", "eth0");
  const PEER = "enip0fa11bac";
  const POD_IP = "10.250.0.5";
  const OTHER_IP = "10.250.0.6";

  beforeEach(() => {
    ns = createNetns();
    ip("-n", ns, "link", "set", "lo", "up");
    ip("-n", ns, "link", "add", HOST, "type", "veth", "peer", "name", PEER);
    ip("-n", ns, "link", "set", HOST, "up");
    ip("-n", ns, "link", "add", "other0", "type", "veth", "peer", "name", "other1");
    ip("-n", ns, "link", "set", "other0", "up");
    ip("-n", ns, "route", "add", `${POD_IP}/32`, "dev", HOST);
    ip("-n", ns, "rule", "add", "priority", "512", "to", `${POD_IP}/32`, "lookup", "main");
    // Two "from" rules at the same priority: the plugin must repeat until none is left.
    ip("-n", ns, "rule", "add", "priority", "2048", "from", `${POD_IP}/32`, "lookup", "1001");
    ip("-n", ns, "rule", "add", "priority", "2048", "from", `${POD_IP}/32`, "lookup", "1002");
    // Another pod's state, which must survive.
    ip("-n", ns, "route", "add", `${OTHER_IP}/32`, "dev", "other0");
    ip("-n", ns, "rule", "add", "priority", "512", "to", `${OTHER_IP}/32`, "lookup", "main");
    ip("-n", ns, "rule", "add", "priority", "2048", "from", `${OTHER_IP}/32`, "lookup", "1001");
  });

  afterEach(() => {
    if (ns) deleteNetns(ns);
    ns = "";
  });

  const podGone = (): void => {
    expect(ipOk("-n", ns, "link", "show", HOST), "host veth removed").toBe(false);
    expect(ipOk("-n", ns, "link", "show", PEER), "its peer went with it").toBe(false);
    const rules = ip("-n", ns, "rule", "show");
    expect(rules).not.toContain(POD_IP);
    expect(ip("-n", ns, "route", "show", "exact", `${POD_IP}/32`).trim()).toBe("");
  };
  const otherKept = (): void => {
    const rules = ip("-n", ns, "rule", "show");
    expect(rules).toMatch(new RegExp(`512:\\s+from all to ${OTHER_IP.replaceAll(".", "\\.")}`));
    expect(rules).toMatch(new RegExp(`2048:\\s+from ${OTHER_IP.replaceAll(".", "\\.")}`));
    expect(ip("-n", ns, "route", "show", "exact", `${OTHER_IP}/32`)).toContain("dev other0");
    expect(ipOk("-n", ns, "link", "show", "other0")).toBe(true);
  };

  it("with nodeNetns=/var/run/netns/NAME (ip -n)", async () => {
    const r = await runPlugin(
      env("DEL"),
      conf({
        socket: join(tmp.dir, "absent.sock"),
        nodeNetns: `/var/run/netns/${ns}`,
        prevResult: prevResult11(POD_NETNS, HOST, POD_IP),
      }),
    );
    expectSilentSuccess(r);
    podGone();
    otherKept();
  });

  it("with any other nodeNetns path (nsenter --net)", async () => {
    const link = join(tmp.dir, "node-ns");
    symlinkSync(`/run/netns/${ns}`, link);
    const r = await runPlugin(
      env("DEL"),
      conf({
        socket: join(tmp.dir, "absent.sock"),
        nodeNetns: link,
        prevResult: prevResult11(POD_NETNS, HOST, POD_IP),
      }),
    );
    expectSilentSuccess(r);
    podGone();
    otherKept();
  });

  it("without nodeNetns, in the plugin's own namespace", async () => {
    const r = await runPlugin(
      env("DEL"),
      conf({ socket: join(tmp.dir, "absent.sock"), prevResult: prevResult11(POD_NETNS, HOST, POD_IP) }),
      { wrapper: ["ip", "netns", "exec", ns] },
    );
    expectSilentSuccess(r);
    podGone();
    otherKept();
  });

  it("is idempotent: a second DEL with the same prevResult succeeds", async () => {
    const c = conf({
      socket: join(tmp.dir, "absent.sock"),
      nodeNetns: `/var/run/netns/${ns}`,
      prevResult: prevResult11(POD_NETNS, HOST, POD_IP),
    });
    expectSilentSuccess(await runPlugin(env("DEL"), c));
    expectSilentSuccess(await runPlugin(env("DEL"), c));
    podGone();
    otherKept();
  });

  it("leaves an address alone whose route now leads to another interface", async () => {
    // prevResult names OTHER_IP, but its route is other0's, not our veth's.
    const r = await runPlugin(
      env("DEL"),
      conf({
        socket: join(tmp.dir, "absent.sock"),
        nodeNetns: `/var/run/netns/${ns}`,
        prevResult: prevResult11(POD_NETNS, HOST, OTHER_IP),
      }),
    );
    expectSilentSuccess(r);
    otherKept();
    expect(ipOk("-n", ns, "link", "show", HOST)).toBe(false);
  });

  it("deletes only its own veth: interfaces prevResult names otherwise survive", async () => {
    // What a chain's prevResult can hold besides our veth: another plugin's host interface, the
    // bandwidth plugin's ifb, a node device, even a name of our veth pattern that is not this pod's.
    const strangers = ["other0", "bwp0fa11bac", "eni0123456789a"];
    // (This kernel has no dummy driver: an ifb as the bandwidth plugin makes, a bridge as a node device.)
    ip("-n", ns, "link", "add", "bwp0fa11bac", "type", "ifb");
    ip("-n", ns, "link", "add", "eni0123456789a", "type", "bridge");
    const prev = {
      cniVersion: "1.1.0",
      interfaces: [
        { name: "other0", mac: "02:00:00:00:00:01" },
        { name: "eth0", mac: "02:aa:bb:cc:dd:01", sandbox: POD_NETNS },
        { name: "bwp0fa11bac", mac: "02:00:00:00:00:02" },
        { name: "eni0123456789a", mac: "02:00:00:00:00:03" },
      ],
      ips: [{ interface: 1, address: `${POD_IP}/32`, gateway: "169.254.1.1" }],
    };
    const r = await runPlugin(
      env("DEL"),
      conf({ socket: join(tmp.dir, "absent.sock"), nodeNetns: `/var/run/netns/${ns}`, prevResult: prev }),
    );
    expectSilentSuccess(r);
    podGone();
    for (const dev of strangers) expect(ipOk("-n", ns, "link", "show", dev), `${dev} survives`).toBe(true);
    otherKept();
  });

  it("without prevResult it finds the pod's address by the route through its veth", async () => {
    const r = await runPlugin(
      env("DEL", { CNI_NETNS: "" }),
      conf({ socket: join(tmp.dir, "absent.sock"), nodeNetns: `/var/run/netns/${ns}` }),
    );
    expectSilentSuccess(r);
    podGone();
    otherKept();
  });

  it("logs what it ran on stderr with debug: true", async () => {
    const r = await runPlugin(
      env("DEL"),
      conf({
        debug: true,
        socket: join(tmp.dir, "absent.sock"),
        nodeNetns: `/var/run/netns/${ns}`,
        prevResult: prevResult11(POD_NETNS, HOST, POD_IP),
      }),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const logs = r.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string; argv?: string[] });
    expect(logs.some((l) => l.msg === "daemon unreachable; cleaning up locally")).toBe(true);
    expect(logs.some((l) => l.argv?.join(" ").includes(`link del ${HOST}`))).toBe(true);
    podGone();
  });
});

// ---------------------------------------------------------------------- CHECK

describe("CHECK", () => {
  it("forwards prevResult to POST /v1/cni/check; prints nothing on success", async () => {
    const prev = prevResult11();
    const r = await runPlugin(env("CHECK"), conf({ prevResult: prev }));
    expectSilentSuccess(r);
    expect(daemon.of("POST /v1/cni/check").map((q) => q.body)).toEqual([
      { containerId: "c0ffee01", ifname: "eth0", netns: POD_NETNS, network: "eniway-net", prevResult: prev },
    ]);
  });

  it("works with a 0.4.0 configuration", async () => {
    expectSilentSuccess(
      await runPlugin(env("CHECK"), conf({ cniVersion: "0.4.0", prevResult: prevResult11() })),
    );
  });

  it("requires prevResult (code 7)", async () => {
    const r = await runPlugin(env("CHECK"), conf());
    expectError(r, 7, "prevResult");
    expect(daemon.requests).toHaveLength(0);
  });

  it("reports what the daemon found wrong", async () => {
    daemon.on("POST /v1/cni/check", () => ({
      status: 500,
      body: { error: { code: "Internal", message: "route to 10.0.1.5 is missing" } },
    }));
    const r = await runPlugin(env("CHECK"), conf({ prevResult: prevResult11() }));
    expectError(r, 999, "route to 10.0.1.5 is missing");
  });

  it("drift the daemon found is code 100, not a configuration error, with what is missing", async () => {
    daemon.on("POST /v1/cni/check", () => ({
      status: 409,
      body: {
        error: { code: "CheckFailed", message: "CHECK failed: no route 10.0.1.5/32 dev eni0123456789a" },
      },
    }));
    const r = await runPlugin(env("CHECK"), conf({ prevResult: prevResult11() }));
    expectError(r, 100, "no route 10.0.1.5/32");
  });

  it("a container the daemon does not know is code 3", async () => {
    daemon.on("POST /v1/cni/check", () => ({
      status: 404,
      body: { error: { code: "UnknownContainer", message: "no allocation for c0ffee01/eth0" } },
    }));
    const r = await runPlugin(env("CHECK"), conf({ prevResult: prevResult11() }));
    expectError(r, 3, "no allocation for c0ffee01/eth0");
  });

  it("fails with code 11 when the daemon is down", async () => {
    const r = await runPlugin(
      env("CHECK"),
      conf({ socket: join(tmp.dir, "absent.sock"), prevResult: prevResult11() }),
    );
    expectError(r, 11, "daemon not reachable");
  });
});

// ------------------------------------------------------------------------- GC

describe("GC", () => {
  const attachments = [
    { containerID: "aaaa1111", ifname: "eth0" },
    { containerID: "bbbb2222", ifname: "net1" },
  ];
  const forwarded = [
    { containerId: "aaaa1111", ifname: "eth0" },
    { containerId: "bbbb2222", ifname: "net1" },
  ];
  const gcEnv = { CNI_COMMAND: "GC", CNI_PATH: "/opt/cni/bin" };

  it("forwards exactly the cni.dev/valid-attachments", async () => {
    const r = await runPlugin(gcEnv, conf({ "cni.dev/valid-attachments": attachments }));
    expectSilentSuccess(r);
    expect(daemon.of("POST /v1/cni/gc").map((q) => q.body)).toEqual([
      { network: "eniway-net", validAttachments: forwarded },
    ]);
  });

  it("accepts the older cni.dev/attachments spelling", async () => {
    const r = await runPlugin(gcEnv, conf({ "cni.dev/attachments": attachments }));
    expectSilentSuccess(r);
    expect(daemon.of("POST /v1/cni/gc")[0]?.body).toEqual({
      network: "eniway-net",
      validAttachments: forwarded,
    });
  });

  it("prefers cni.dev/valid-attachments when both are present (libcni sends both)", async () => {
    const r = await runPlugin(
      gcEnv,
      conf({ "cni.dev/valid-attachments": attachments, "cni.dev/attachments": [attachments[0]] }),
    );
    expectSilentSuccess(r);
    expect(daemon.of("POST /v1/cni/gc")[0]?.body).toEqual({
      network: "eniway-net",
      validAttachments: forwarded,
    });
  });

  it("forwards an empty list as an empty list", async () => {
    expectSilentSuccess(await runPlugin(gcEnv, conf({ "cni.dev/valid-attachments": [] })));
    expect(daemon.of("POST /v1/cni/gc")[0]?.body).toEqual({ network: "eniway-net", validAttachments: [] });
  });

  it("refuses to run without an attachment list (code 7), rather than release everything", async () => {
    const r = await runPlugin(gcEnv, conf());
    expectError(r, 7, "cni.dev/valid-attachments");
    expect(daemon.requests).toHaveLength(0);
  });

  it("rejects a malformed attachment (code 7)", async () => {
    const r = await runPlugin(gcEnv, conf({ "cni.dev/valid-attachments": [{ ifname: "eth0" }] }));
    expectError(r, 7, "valid-attachments[0]");
  });

  it("fails with code 11 when the daemon is down", async () => {
    const r = await runPlugin(
      gcEnv,
      conf({ socket: join(tmp.dir, "absent.sock"), "cni.dev/valid-attachments": attachments }),
    );
    expectError(r, 11, "daemon not reachable");
  });

  it("reports a daemon error", async () => {
    daemon.on("POST /v1/cni/gc", () => ({
      status: 500,
      body: { error: { code: "Internal", message: "boom" } },
    }));
    const r = await runPlugin(gcEnv, conf({ "cni.dev/valid-attachments": attachments }));
    expectError(r, 999, "boom");
  });
});

// --------------------------------------------------------------------- STATUS

describe("STATUS", () => {
  const statusEnv = { CNI_COMMAND: "STATUS", CNI_PATH: "/opt/cni/bin" };

  it("succeeds silently when GET /readyz answers 200", async () => {
    const r = await runPlugin(statusEnv, conf());
    expectSilentSuccess(r);
    expect(daemon.of("GET /readyz")).toHaveLength(1);
  });

  it("answers code 50 when there is no daemon", async () => {
    const r = await runPlugin(statusEnv, conf({ socket: join(tmp.dir, "absent.sock") }));
    expectError(r, 50, "plugin not available");
    expect(r.json?.details).toContain("not reachable");
  });

  it("answers code 50 when the daemon is not ready", async () => {
    daemon.on("GET /readyz", () => ({ status: 503, body: { ready: false } }));
    const r = await runPlugin(statusEnv, conf());
    expectError(r, 50, "plugin not available");
    expect(r.json?.details).toContain("HTTP 503");
  });

  it("answers code 50 when the daemon does not answer in time", async () => {
    daemon.on("GET /readyz", () => "hang");
    const r = await runPlugin(statusEnv, conf({ timeoutSeconds: 0.3 }));
    expectError(r, 50, "plugin not available");
  });
});
