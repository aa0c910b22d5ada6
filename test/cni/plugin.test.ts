// Spec conformance of eniway's CNI plugin as a runtime sees it: the built
// node binary (dist/bin/eniway-cni, the forwarder) run the way runtimes run
// it (environment + stdin; stdout, stderr and exit code read back) against
// the REAL daemon of a sandbox node: its pool on the simulator, its datapath
// wiring pods into real network namespaces. The daemon holds the one CNI
// implementation (src/daemon/cni-exec.ts over cni/spec/): environment and
// configuration validation, version negotiation, results, CHECK, GC and
// STATUS are all its answers here. The forwarder's own edges (the frame,
// timeouts, the daemon unreachable, VERSION) are in forwarder.test.ts.
// Root only: namespaces, veths, a private /run.

import { chmod, copyFile, mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/datapath/names.js";
import { POD_GATEWAY } from "../../cni/facts.js";
import { SUPPORTED_VERSIONS } from "../../cni/spec/spec.js";
import { socketRequest } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { sleep } from "../../lib/time.js";
import type { Allocation } from "../../pool/pool.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { cleanUp } from "../helpers/netns.js";
import {
  DEFAULT_SOCKET,
  ensurePluginBuilt,
  ip,
  ipOk,
  PLUGIN,
  type PrivateRun,
  privateRun,
  type RunOptions,
  type RunResult,
  runPlugin,
} from "./helpers.js";

const PREFIX = `ewcp${process.pid % 10000}`;
const NETWORK = "eniway-net";
/** A namespace path that does not exist: requests refused before any wiring never open it. */
const NO_NETNS = `/var/run/netns/${PREFIX}-absent`;
/** How long an ADD waits for an IP before it answers "try again" (set below). */
const ALLOCATE_TIMEOUT_S = 3;

let dir: string;
let sb: Sandbox;
let node: SandboxNode;
/** A mount namespace whose /run/eniway/eniway.sock (the forwarder's default) is the node's socket. */
let atDefault: PrivateRun;
const namespaces = new Set<string>();
let podCount = 0;

beforeAll(async () => {
  ensurePluginBuilt();
  dir = await mkdtemp(join(tmpdir(), "eniway-cni-"));
  sb = await sandboxUp({
    dir: join(dir, "sb"),
    nodes: 1,
    world: sandboxWorld(1, PREFIX),
    // No warm IPs kept beyond what pods gave back; released ones are reused soon; GC's age floor off.
    sets: [
      "pool.minIdle=0",
      "pool.maxIdle=0",
      "pool.cooldownSeconds=0.5",
      `pool.allocateTimeoutSeconds=${ALLOCATE_TIMEOUT_S}`,
      "cni.gcMinAgeSeconds=0",
    ],
    log: silentLogger,
  });
  node = sb.file.nodes[0]!;
  atDefault = privateRun(dir);
  atDefault.exec("ln", "-s", node.socket, DEFAULT_SOCKET);
}, 120_000);

afterAll(async () => {
  atDefault?.remove();
  expect(await cleanUp({ sandbox: sb, namespaces, dir, prefix: PREFIX })).toEqual([]);
});

const allocations = async (): Promise<Allocation[]> =>
  (
    (await socketRequest(node.socket, "GET", "/v1/allocations", undefined, 10_000)).body as {
      allocations: Allocation[];
    }
  ).allocations;
const allocationOf = async (containerId: string): Promise<Allocation | undefined> =>
  (await allocations()).find((a) => a.containerId === containerId);

const conf = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: "1.1.0",
  name: NETWORK,
  type: "eniway",
  socket: node.socket,
  ...over,
});

/** A configuration with some keys removed (an `undefined` in `over` removes the key). */
const confWithout = (over: Record<string, unknown>): Record<string, unknown> => {
  const c = conf(over);
  for (const [k, v] of Object.entries(over)) if (v === undefined) delete c[k];
  return c;
};

const env = (
  command: string,
  over: Record<string, string | undefined> = {},
): Record<string, string | undefined> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: "c0ffee01",
  CNI_NETNS: NO_NETNS,
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  ...over,
});

const cni = (
  vars: Record<string, string | undefined>,
  stdin: string | Record<string, unknown>,
  opts: RunOptions = {},
): Promise<RunResult> => runPlugin(vars, stdin, { timeoutMs: 60_000, ...opts });

/** A CNI error: exit 1, the spec's error JSON on stdout, silent stderr. */
function expectError(r: RunResult, code: number, msgPart?: string | RegExp): void {
  expect(r.code, r.stdout).toBe(1);
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

// ---------------------------------------------------------------- the pods

interface Pod {
  id: string;
  ifname: string;
  ns: string;
  netns: string;
}

/** A pod: a fresh network namespace, removed after the test. */
function newPod(id: string, ifname = "eth0"): Pod {
  const ns = `${PREFIX}-${++podCount}`;
  ip("netns", "add", ns);
  namespaces.add(ns);
  return { id, ifname, ns, netns: `/var/run/netns/${ns}` };
}

const podEnv = (p: Pod, command: string, over: Record<string, string | undefined> = {}) =>
  env(command, { CNI_CONTAINERID: p.id, CNI_NETNS: p.netns, CNI_IFNAME: p.ifname, ...over });

/** ADD of the pod, which must succeed; the result. */
async function addPod(
  p: Pod,
  c: Record<string, unknown> = conf(),
  over: Record<string, string | undefined> = {},
  opts: RunOptions = {},
): Promise<Record<string, unknown>> {
  const r = await cni(podEnv(p, "ADD", over), c, opts);
  expect(r.code, r.stdout).toBe(0);
  expect(r.stderr).toBe("");
  expect(r.stdout.endsWith("}\n")).toBe(true);
  return r.json ?? {};
}

/** DEL of the pod, which must succeed silently and leave nothing of it. */
async function delPod(p: Pod, c: Record<string, unknown> = conf()): Promise<void> {
  expectSilentSuccess(await cni(podEnv(p, "DEL"), c));
  expect(await allocationOf(p.id)).toBeUndefined();
  expect(ipOk("-n", node.netns, "link", "show", hostVethName(p.id, p.ifname))).toBe(false);
}

/** A link as the kernel has it. */
function link(ns: string, name: string): { ifname: string; address: string; mtu: number } {
  const [l] = JSON.parse(ip("-n", ns, "-j", "link", "show", name)) as {
    ifname: string;
    address: string;
    mtu: number;
  }[];
  if (!l) throw new Error(`no link ${name} in ${ns}`);
  return l;
}

/** Each test leaves the node as it found it: anything still allocated is deleted (a real DEL). */
afterEach(async () => {
  for (const a of await allocations())
    await cni(env("DEL", { CNI_CONTAINERID: a.containerId, CNI_IFNAME: a.ifname, CNI_NETNS: "" }), {
      ...conf(),
      name: a.network || NETWORK,
    });
  for (const ns of namespaces) ipOk("netns", "del", ns);
  namespaces.clear();
}, 60_000);

// ------------------------------------------------------------ environment (4)

describe("environment validation (code 4, naming the variable)", () => {
  it("rejects a missing CNI_COMMAND", async () => {
    expectError(await cni({}, conf()), 4, "required env variables [CNI_COMMAND] missing");
  });

  it("rejects an unknown CNI_COMMAND", async () => {
    expectError(await cni(env("FROB"), conf()), 4, "unknown CNI_COMMAND: FROB");
  });

  for (const cmd of ["ADD", "DEL", "CHECK"]) {
    for (const v of ["CNI_CONTAINERID", "CNI_IFNAME"]) {
      it(`${cmd} requires ${v}`, async () => {
        const p = newPod("req0001");
        const r = await cni(podEnv(p, cmd, { [v]: undefined }), conf({ prevResult: {} }));
        expectError(r, 4, v);
        expect(await allocations()).toEqual([]);
      });
    }
  }

  for (const cmd of ["ADD", "CHECK"]) {
    it(`${cmd} requires CNI_NETNS`, async () => {
      const r = await cni(env(cmd, { CNI_NETNS: "" }), conf({ prevResult: {} }));
      expectError(r, 4, "CNI_NETNS");
    });
  }

  it("lists every missing variable at once", async () => {
    const r = await cni({ CNI_COMMAND: "ADD" }, conf());
    expectError(r, 4, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing");
  });

  it("does not require CNI_NETNS for DEL, nor CNI_PATH for anything", async () => {
    expectSilentSuccess(await cni(env("DEL", { CNI_NETNS: undefined, CNI_PATH: undefined }), conf()));
  });

  for (const id of ["-leading-dash", "_leading", "has/slash", "has space", "semi;colon", "ünïcode"]) {
    it(`rejects the container ID ${JSON.stringify(id)}`, async () => {
      const r = await cni(env("ADD", { CNI_CONTAINERID: id }), conf());
      expectError(r, 4, "CNI_CONTAINERID");
      expect(r.json?.details).toBe(id);
    });
  }

  it("rejects a container ID longer than 256 characters", async () => {
    const id = `a${"b".repeat(256)}`;
    const r = await cni(env("ADD", { CNI_CONTAINERID: id }), conf());
    expectError(r, 4, "CNI_CONTAINERID");
    expect(r.json?.msg).toContain("longer than 256");
  });

  it("accepts container IDs of any case with _ . and -, and stores them as given", async () => {
    const p = newPod("ABCdef_0.1-2");
    await addPod(p);
    expect((await allocationOf("ABCdef_0.1-2"))?.ifname).toBe("eth0");
    await delPod(p);
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
      const r = await cni(env("ADD", { CNI_IFNAME: name }), conf());
      expectError(r, 4, "CNI_IFNAME");
      expect(r.json?.msg).toContain(why);
    });
  }

  // Names libcni accepts but eniway cannot wire: refused before anything is allocated.
  for (const name of ["net@1", "eth#0", "é", 'a"b', "a\\b"]) {
    for (const cmd of ["ADD", "CHECK"]) {
      it(`${cmd} refuses CNI_IFNAME ${JSON.stringify(name)} (code 4, nothing allocated)`, async () => {
        const p = newPod("badif01", name);
        const r = await cni(podEnv(p, cmd), conf({ prevResult: {} }));
        expectError(r, 4, "CNI_IFNAME");
        expect(r.json?.msg).toContain("eniway cannot wire this interface name");
        expect(await allocations()).toEqual([]);
        expect(ip("-n", p.ns, "-o", "link", "show").trim().split("\n")).toHaveLength(1); // lo only
      });
    }
    it(`DEL of CNI_IFNAME ${JSON.stringify(name)} succeeds with nothing to do`, async () => {
      expectSilentSuccess(await cni(env("DEL", { CNI_IFNAME: name }), conf()));
    });
  }

  it("accepts a 15-character interface name and wires it", async () => {
    const p = newPod("ifname15", "a".repeat(15));
    const result = await addPod(p);
    expect((result.interfaces as { name: string }[])[1]?.name).toBe("a".repeat(15));
    expect(link(p.ns, "a".repeat(15)).ifname).toBe("a".repeat(15));
    await delPod(p);
  });

  for (const cmd of ["ADD", "DEL"]) {
    it(`${cmd} rejects a relative CNI_NETNS`, async () => {
      expectError(await cni(env(cmd, { CNI_NETNS: "run/netns/x" }), conf()), 4, "CNI_NETNS");
    });
  }

  it("rejects unknown CNI_ARGS keys", async () => {
    const r = await cni(env("ADD", { CNI_ARGS: "K8S_POD_NAME=web;FOO=bar" }), conf());
    expectError(r, 4, "CNI_ARGS");
    expect(r.json?.msg).toContain("FOO=bar");
  });

  for (const pair of ["FOO", "A=B=C", "K8S_POD_NAME=web;"]) {
    it(`rejects the CNI_ARGS pair in ${JSON.stringify(pair)}`, async () => {
      expectError(await cni(env("ADD", { CNI_ARGS: pair }), conf()), 4, "CNI_ARGS: invalid pair");
    });
  }

  it("rejects an IgnoreUnknown that is not a boolean", async () => {
    expectError(await cni(env("ADD", { CNI_ARGS: "IgnoreUnknown=maybe;FOO=bar" }), conf()), 4, "CNI_ARGS");
  });

  for (const flag of ["1", "true", "TRUE", "True"]) {
    it(`IgnoreUnknown=${flag} ignores unknown keys and uses the known ones`, async () => {
      const p = newPod(`ign-${flag}`);
      await addPod(p, conf(), { CNI_ARGS: `IgnoreUnknown=${flag};FOO=bar;K8S_POD_NAME=web-0;OTHER=x` });
      expect((await allocationOf(p.id))?.pod).toEqual({ namespace: "", name: "web-0", uid: "" });
      await delPod(p);
    });
  }

  it("IgnoreUnknown=0 still rejects unknown keys", async () => {
    expectError(await cni(env("ADD", { CNI_ARGS: "IgnoreUnknown=0;FOO=bar" }), conf()), 4, "unknown args");
  });

  it("refuses a pod name in CNI_ARGS that no Kubernetes object has (code 7)", async () => {
    const p = newPod("badpod01");
    const r = await cni(
      podEnv(p, "ADD", { CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=Web_0!" }),
      conf(),
    );
    expectError(r, 7, "invalid K8S_POD_NAME in CNI_ARGS");
    expect(await allocations()).toEqual([]);
  });
});

// ------------------------------------------------- the node's own namespace (8)

describe("the node's own network namespace as CNI_NETNS (code 8)", () => {
  for (const cmd of ["ADD", "CHECK", "DEL"]) {
    it(`${cmd} refuses it, by any path that leads to it`, async () => {
      for (const path of [`/var/run/netns/${node.netns}`, `/run/netns/${node.netns}`]) {
        const r = await cni(env(cmd, { CNI_NETNS: path }), conf({ prevResult: {} }));
        expectError(r, 8, "plugin's netns and netns from CNI_NETNS should not be the same");
        expect(r.json?.details).toBe(path);
      }
      expect(await allocations()).toEqual([]);
    });
  }

  it("the configuration's nodeNetns is accepted, and changes nothing: the daemon knows its node", async () => {
    const c = conf({ nodeNetns: `/var/run/netns/${PREFIX}-elsewhere` });
    expectError(await cni(env("ADD", { CNI_NETNS: `/var/run/netns/${node.netns}` }), c), 8);
    const p = newPod("nodens01");
    await addPod(p, c);
    await delPod(p, c);
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
    // Without a socket the forwarder can read, it goes to the default one: the node's, here.
    it(`rejects ${what} with code 6`, async () => {
      const r = await cni(env("ADD"), text as string, { wrapper: atDefault.wrapper });
      expectError(r, 6, "error unmarshall network config");
      expect(r.json?.cniVersion).toBe("1.1.0");
    });
  }

  it("rejects a configuration cut short with code 6 (its version unknown: 1.1.0)", async () => {
    const text = JSON.stringify(conf({ cniVersion: "0.4.0" }));
    const r = await cni(env("ADD"), text.slice(0, -3), { wrapper: atDefault.wrapper });
    expectError(r, 6, "error unmarshall network config");
    expect(r.json?.cniVersion).toBe("1.1.0");
  });

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
      const r = await cni(env("ADD"), confWithout({ cniVersion: v }));
      expectError(r, 1, "incompatible CNI versions");
      expect(r.json?.details).toContain(`plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
    });
  }

  it("reports the configuration's own cniVersion in errors", async () => {
    const r = await cni(env("ADD"), conf({ cniVersion: "0.4.0", debug: "yes" }));
    expectError(r, 7, "debug");
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
      const r = await cni(
        env(cmd as string),
        conf({ cniVersion: v, prevResult: {}, "cni.dev/valid-attachments": [] }),
      );
      expectError(r, 1, `config version does not allow ${cmd}`);
      expect(r.json?.cniVersion).toBe(v);
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
    ["a string timeoutSeconds", { timeoutSeconds: "60" }, "timeoutSeconds"],
    ["a zero timeoutSeconds", { timeoutSeconds: 0 }, "timeoutSeconds"],
    ["a negative timeoutSeconds", { timeoutSeconds: -1 }, "timeoutSeconds"],
    ["a timeoutSeconds over an hour", { timeoutSeconds: 3601 }, "timeoutSeconds"],
    ["a relative nodeNetns", { nodeNetns: "netns/node" }, "nodeNetns"],
    ["a non-boolean debug", { debug: "yes" }, "debug"],
    ["a prevResult that is not an object", { prevResult: [1] }, "prevResult"],
  ];
  for (const [what, over, msg] of badConfigs) {
    it(`rejects ${what} with code 7 naming the key`, async () => {
      const r = await cni(env("ADD"), confWithout(over));
      expectError(r, 7, msg);
    });
  }

  // A socket the forwarder cannot use sends it to the default socket, where the daemon says what is wrong.
  const badSockets: [string, unknown, string][] = [
    ["a relative socket", "run/eniway.sock", "socket must be an absolute path"],
    ["a numeric socket", 5, "socket must be an absolute path"],
    ["an empty socket", "", "socket must be an absolute path"],
    ["a socket with a NUL", "/run/a\u0000b", "socket must be an absolute path"],
    [
      "a socket longer than a unix address holds",
      `/run/${"s".repeat(110)}`,
      "socket must be at most 107 bytes",
    ],
  ];
  for (const [what, socket, msg] of badSockets) {
    it(`rejects ${what} with code 7 (the daemon at the default socket says so)`, async () => {
      const r = await cni(env("ADD"), conf({ socket }), { wrapper: atDefault.wrapper });
      expectError(r, 7, msg);
    });
  }

  it("uses the default socket /run/eniway/eniway.sock when none is configured", async () => {
    const p = newPod("defsock1");
    const c = confWithout({ socket: undefined });
    const result = await addPod(p, c, {}, { wrapper: atDefault.wrapper });
    expect(result.ips).toEqual([
      expect.objectContaining({ address: `${(await allocationOf(p.id))?.ip}/32` }),
    ]);
    expectSilentSuccess(await cni(podEnv(p, "DEL"), c, { wrapper: atDefault.wrapper }));
    expect(await allocationOf(p.id)).toBeUndefined();
  });

  it("ignores keys it does not know (runtimeConfig, capabilities, args, cni.dev/*, others)", async () => {
    const p = newPod("unknown1");
    await addPod(
      p,
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
    await delPod(p);
  });

  it("accepts as type the name it is installed under (the spec's binary on disk), and names it when refusing", async () => {
    const bin = join(dir, "bin");
    const plugin = join(bin, "eniway-custom");
    await mkdir(bin, { recursive: true });
    await copyFile(PLUGIN, plugin);
    await chmod(plugin, 0o755);
    const p = newPod("custom01");
    await addPod(p, conf({ type: "eniway-custom" }), {}, { plugin });
    const wrong = await cni(podEnv(p, "CHECK"), conf({ type: "bridge", prevResult: {} }), { plugin });
    expectError(wrong, 7, 'wrong type "bridge"');
    expect(wrong.json?.details).toContain('installed as "eniway-custom"');
    // Under its usual name, that type is another plugin's.
    expectError(
      await cni(podEnv(p, "CHECK"), conf({ type: "eniway-custom", prevResult: {} })),
      7,
      "wrong type",
    );
    await delPod(p);
  });
});

// ------------------------------------------------------------------------ ADD

describe("ADD", () => {
  /** The result a version asks for, from what the kernel and the pool have. */
  async function expectedResult(p: Pod, version: string): Promise<Record<string, unknown>> {
    const a = await allocationOf(p.id);
    expect(a, `${p.id} is allocated`).toBeDefined();
    const host = link(node.netns, hostVethName(p.id, p.ifname));
    const pod = link(p.ns, p.ifname);
    const v1 = version.startsWith("1.");
    const mtu = version === "1.1.0";
    return {
      cniVersion: version,
      interfaces: [
        { name: host.ifname, mac: host.address, ...(mtu ? { mtu: host.mtu } : {}) },
        { name: p.ifname, mac: pod.address, ...(mtu ? { mtu: pod.mtu } : {}), sandbox: p.netns },
      ],
      ips: [{ ...(v1 ? {} : { version: "4" }), interface: 1, address: `${a?.ip}/32`, gateway: POD_GATEWAY }],
      routes: [{ dst: "0.0.0.0/0", gw: POD_GATEWAY }],
      dns: {},
    };
  }

  it("allocates, wires the pod and stores its attachment: network, namespace path and pod from CNI_ARGS", async () => {
    const p = newPod("0123abcd", "net1");
    const result = await addPod(p, conf({ name: "pods" }), {
      CNI_ARGS:
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=5f1e-22",
    });
    const a = await allocationOf(p.id);
    expect(a).toMatchObject({
      containerId: "0123abcd",
      ifname: "net1",
      network: "pods",
      netns: p.netns,
      pod: { namespace: "default", name: "web-0", uid: "5f1e-22" },
    });
    // The pod has its address and its default route, through the gateway the result names.
    expect(ip("-n", p.ns, "-o", "addr", "show", "net1")).toContain(`inet ${a?.ip}/32`);
    expect(ip("-n", p.ns, "route", "show", "default")).toContain(`via ${POD_GATEWAY} dev net1`);
    expect(result.ips).toEqual([{ interface: 1, address: `${a?.ip}/32`, gateway: POD_GATEWAY }]);
    await delPod(p, conf({ name: "pods" }));
  });

  it("stores an empty pod when CNI_ARGS is unset", async () => {
    const p = newPod("noargs01");
    await addPod(p);
    expect((await allocationOf(p.id))?.pod).toEqual({ namespace: "", name: "", uid: "" });
    await delPod(p);
  });

  it("returns a 1.1.0 result with interface MTUs", async () => {
    const p = newPod("v110res1");
    const result = await addPod(p, conf({ cniVersion: "1.1.0" }));
    expect(result).toEqual(await expectedResult(p, "1.1.0"));
    expect((result.interfaces as { mtu: number }[])[0]?.mtu).toBeGreaterThan(0);
    await delPod(p);
  });

  it("returns a 1.0.0 result (no mtu, no ips[].version)", async () => {
    const p = newPod("v100res1");
    expect(await addPod(p, conf({ cniVersion: "1.0.0" }))).toEqual(await expectedResult(p, "1.0.0"));
    await delPod(p);
  });

  for (const v of ["0.4.0", "0.3.1", "0.3.0"]) {
    it(`returns a ${v} result (ips[].version "4")`, async () => {
      const p = newPod(`v${v.replaceAll(".", "")}res1`);
      expect(await addPod(p, conf({ cniVersion: v }))).toEqual(await expectedResult(p, v));
      await delPod(p);
    });
  }

  it("a repeated ADD (a runtime's retry) answers the same pod again", async () => {
    const p = newPod("again001");
    const first = await addPod(p);
    const second = await addPod(p);
    expect(second).toEqual(first);
    expect((await allocations()).filter((a) => a.containerId === p.id)).toHaveLength(1);
    await delPod(p);
  });

  it("passes the configuration's dns through to the result, well-formed fields only", async () => {
    const dns = { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"], options: ["ndots:5"] };
    const p = newPod("dns00001");
    const result = await addPod(p, conf({ dns: { ...dns, domain: 7, extra: "x" } }));
    expect(result.dns).toEqual(dns);
    await delPod(p);
  });

  it("keeps a prevResult it is handed and appends its own interfaces", async () => {
    const prev = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "dummy0", mac: "02:00:00:00:00:09" }],
      ips: [{ interface: 0, address: "192.168.9.2/24" }],
      routes: [{ dst: "192.168.0.0/16" }],
      dns: { nameservers: ["192.168.9.1"] },
    };
    const p = newPod("prev0001");
    const result = await addPod(p, conf({ cniVersion: "1.0.0", prevResult: prev }));
    const own = await expectedResult(p, "1.0.0");
    const [host, pod] = own.interfaces as Record<string, unknown>[];
    expect(result).toEqual({
      cniVersion: "1.0.0",
      interfaces: [prev.interfaces[0], host, pod],
      ips: [
        { interface: 0, address: "192.168.9.2/24" },
        { interface: 2, address: `${(await allocationOf(p.id))?.ip}/32`, gateway: POD_GATEWAY },
      ],
      routes: [{ dst: "192.168.0.0/16" }, { dst: "0.0.0.0/0", gw: POD_GATEWAY }],
      dns: { nameservers: ["192.168.9.1"] },
    });
    await delPod(p);
  });

  it("converts a prevResult's ips to the configuration's version (0.4.0: each with its version)", async () => {
    const prev = {
      cniVersion: "0.4.0",
      interfaces: [{ name: "dummy0" }],
      ips: [
        { interface: 0, address: "192.168.9.2/24" },
        { version: "6", interface: 0, address: "fd00::2/64" },
      ],
    };
    const p = newPod("prev0002");
    const result = await addPod(p, conf({ cniVersion: "0.4.0", prevResult: prev }));
    expect(result.ips).toEqual([
      { version: "4", interface: 0, address: "192.168.9.2/24" },
      { version: "6", interface: 0, address: "fd00::2/64" },
      { version: "4", interface: 2, address: `${(await allocationOf(p.id))?.ip}/32`, gateway: POD_GATEWAY },
    ]);
    await delPod(p);
  });

  it("with debug: true, stdout is still the result alone and stderr silent", async () => {
    const p = newPod("debug001");
    const r = await cni(podEnv(p, "ADD"), conf({ debug: true }));
    expect(r.code, r.stdout).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.json).toEqual(await expectedResult(p, "1.1.0"));
    await delPod(p);
  });

  it("a namespace that does not exist: the daemon's error (999, with its words), and nothing stays allocated", async () => {
    const r = await cni(env("ADD", { CNI_CONTAINERID: "nonetns1" }), conf());
    expectError(r, 999, "open pod namespace: No such file or directory");
    expect(await allocationOf("nonetns1")).toBeUndefined();
    expect(ipOk("-n", node.netns, "link", "show", hostVethName("nonetns1", "eth0"))).toBe(false);
  });
});

// ------------------------------------------------------------------------ DEL

describe("DEL", () => {
  it("releases the IP and unwires the pod; prints nothing", async () => {
    const p = newPod("del00001");
    const result = await addPod(p);
    const a = await allocationOf(p.id);
    expectSilentSuccess(await cni(podEnv(p, "DEL"), conf({ prevResult: result })));
    expect(await allocationOf(p.id)).toBeUndefined();
    expect(ipOk("-n", node.netns, "link", "show", hostVethName(p.id, "eth0"))).toBe(false);
    expect(ipOk("-n", p.ns, "link", "show", "eth0")).toBe(false);
    expect(ip("-n", node.netns, "route", "show", "exact", `${a?.ip}/32`).trim()).toBe("");
    expect(ip("-n", node.netns, "rule", "show")).not.toContain(`${a?.ip} `);
  });

  it("succeeds twice in a row (containerd's stop and remove), the second with no namespace and no prevResult", async () => {
    const p = newPod("del00002");
    const result = await addPod(p);
    expectSilentSuccess(await cni(podEnv(p, "DEL"), conf({ prevResult: result })));
    expectSilentSuccess(await cni(podEnv(p, "DEL", { CNI_NETNS: "" }), conf()));
    expect(await allocationOf(p.id)).toBeUndefined();
  });

  it("with an empty CNI_NETNS and no prevResult it still releases and unwires", async () => {
    const p = newPod("del00003");
    await addPod(p);
    expectSilentSuccess(await cni(podEnv(p, "DEL", { CNI_NETNS: "" }), conf()));
    expect(await allocationOf(p.id)).toBeUndefined();
    expect(ipOk("-n", node.netns, "link", "show", hostVethName(p.id, "eth0"))).toBe(false);
  });

  it("of an attachment the daemon never had succeeds", async () => {
    expectSilentSuccess(await cni(env("DEL", { CNI_CONTAINERID: "neverseen" }), conf()));
  });

  for (const v of ["0.3.1", "0.4.0", "1.0.0"]) {
    it(`works with a ${v} configuration`, async () => {
      const p = newPod(`del-${v}`);
      const c = conf({ cniVersion: v });
      const result = await addPod(p, c);
      expectSilentSuccess(await cni(podEnv(p, "DEL"), { ...c, prevResult: result }));
      expect(await allocationOf(p.id)).toBeUndefined();
    });
  }

  it("deletes only its own: an interface prevResult merely names survives", async () => {
    const p = newPod("del00004");
    const result = (await addPod(p)) as { interfaces: Record<string, unknown>[] };
    ip("-n", node.netns, "link", "add", "ewnode0", "type", "bridge");
    try {
      const named = {
        ...result,
        interfaces: [{ name: "ewnode0", mac: "02:00:00:00:0e:01" }, ...result.interfaces],
      };
      expectSilentSuccess(await cni(podEnv(p, "DEL"), conf({ prevResult: named })));
      expect(ipOk("-n", node.netns, "link", "show", "ewnode0")).toBe(true);
      expect(ipOk("-n", node.netns, "link", "show", hostVethName(p.id, "eth0"))).toBe(false);
    } finally {
      ipOk("-n", node.netns, "link", "del", "ewnode0");
    }
  });

  it("ignores identifiers in prevResult that must not reach a command, and still succeeds", async () => {
    const p = newPod("del00005");
    await addPod(p);
    const prev = {
      cniVersion: "1.1.0",
      interfaces: [{ name: "x;reboot" }, { name: "eth0", sandbox: "$(reboot)" }],
      ips: [
        { interface: 1, address: "$(reboot)/32" },
        { interface: 1, address: "300.1.1.1/32" },
      ],
    };
    expectSilentSuccess(await cni(podEnv(p, "DEL"), conf({ prevResult: prev })));
    expect(await allocationOf(p.id)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------- CHECK

describe("CHECK", () => {
  it("passes silently for a pod wired as its ADD said", async () => {
    const p = newPod("check001");
    const result = await addPod(p);
    expectSilentSuccess(await cni(podEnv(p, "CHECK"), conf({ prevResult: result })));
    await delPod(p);
  });

  it("works with a 0.4.0 configuration", async () => {
    const p = newPod("check002");
    const c = conf({ cniVersion: "0.4.0" });
    const result = await addPod(p, c);
    expectSilentSuccess(await cni(podEnv(p, "CHECK"), { ...c, prevResult: result }));
    await delPod(p);
  });

  it("requires prevResult (code 7)", async () => {
    const p = newPod("check003");
    await addPod(p);
    expectError(await cni(podEnv(p, "CHECK"), conf()), 7, "CHECK requires prevResult");
    await delPod(p);
  });

  it("a container the daemon does not know is code 3", async () => {
    const p = newPod("check004");
    const r = await cni(podEnv(p, "CHECK"), conf({ prevResult: {} }));
    expectError(r, 3, "no allocation for check004/eth0");
  });

  it("drift is code 100 and names what is missing", async () => {
    const p = newPod("check005");
    const result = await addPod(p);
    const podIp = (await allocationOf(p.id))?.ip;
    ip("-n", node.netns, "route", "del", `${podIp}/32`);
    const r = await cni(podEnv(p, "CHECK"), conf({ prevResult: result }));
    expectError(r, 100, "CHECK failed");
    expect(r.json?.msg).toContain(podIp);
    await delPod(p);
  });
});

// ------------------------------------------------------------------------- GC

describe("GC", () => {
  const GC_NET = "gc-net";
  const gcConf = (over: Record<string, unknown>) => conf({ name: GC_NET, ...over });
  const gcEnv = { CNI_COMMAND: "GC", CNI_PATH: "/opt/cni/bin" };
  const attachment = (p: Pod) => ({ containerID: p.id, ifname: p.ifname });
  /** Three pods of the GC's network and one of another. */
  async function pods(): Promise<{ a: Pod; b: Pod; c: Pod; other: Pod }> {
    const a = newPod("gcaaaa01");
    const b = newPod("gcbbbb02", "net1");
    const c = newPod("gccccc03");
    const other = newPod("gcother4");
    for (const p of [a, b, c]) await addPod(p, gcConf({}));
    await addPod(other, conf());
    return { a, b, c, other };
  }
  const held = async (): Promise<string[]> => (await allocations()).map((x) => x.containerId).sort();

  it("releases exactly its network's attachments that cni.dev/valid-attachments does not list", async () => {
    const { a, b, c, other } = await pods();
    expectSilentSuccess(
      await cni(gcEnv, gcConf({ "cni.dev/valid-attachments": [attachment(a), attachment(b)] })),
    );
    expect(await held()).toEqual([a.id, b.id, other.id].sort());
    expect(ipOk("-n", node.netns, "link", "show", hostVethName(c.id, "eth0")), "unwired").toBe(false);
    expect(ipOk("-n", node.netns, "link", "show", hostVethName(b.id, "net1"))).toBe(true);
  });

  it("accepts the older cni.dev/attachments spelling", async () => {
    const { c, other } = await pods();
    expectSilentSuccess(await cni(gcEnv, gcConf({ "cni.dev/attachments": [attachment(c)] })));
    expect(await held()).toEqual([c.id, other.id].sort());
  });

  it("prefers cni.dev/valid-attachments when both are present (libcni sends both)", async () => {
    const { a, b, c, other } = await pods();
    expectSilentSuccess(
      await cni(
        gcEnv,
        gcConf({
          "cni.dev/valid-attachments": [attachment(a), attachment(b), attachment(c)],
          "cni.dev/attachments": [attachment(a)],
        }),
      ),
    );
    expect(await held()).toEqual([a.id, b.id, c.id, other.id].sort());
  });

  it("an empty list releases every attachment of its network, and no other's", async () => {
    const { other } = await pods();
    expectSilentSuccess(await cni(gcEnv, gcConf({ "cni.dev/valid-attachments": [] })));
    expect(await held()).toEqual([other.id]);
  });

  it("lists by container and interface: the same container on another interface is not listed", async () => {
    const { b, other } = await pods();
    const r = await cni(
      gcEnv,
      gcConf({ "cni.dev/valid-attachments": [{ containerID: b.id, ifname: "eth0" }] }),
    );
    expectSilentSuccess(r);
    expect(await held()).toEqual([other.id]);
  });

  it("refuses to run without an attachment list (code 7), rather than release everything", async () => {
    const { a, b, c, other } = await pods();
    expectError(await cni(gcEnv, gcConf({})), 7, "cni.dev/valid-attachments");
    expect(await held()).toEqual([a.id, b.id, c.id, other.id].sort());
  });

  for (const [what, list] of [
    ["an attachment without containerID", [{ ifname: "eth0" }]],
    ["an attachment that is not an object", ["gcaaaa01/eth0"]],
    ["a containerID the daemon cannot store", [{ containerID: "-bad", ifname: "eth0" }]],
  ] as [string, unknown[]][]) {
    it(`rejects ${what} (code 7) and releases nothing`, async () => {
      const { a, b, c, other } = await pods();
      const r = await cni(gcEnv, gcConf({ "cni.dev/valid-attachments": list }));
      expectError(r, 7, "valid-attachments[0]");
      expect(await held()).toEqual([a.id, b.id, c.id, other.id].sort());
    });
  }
});

// --------------------------------------------------------------------- STATUS

describe("STATUS", () => {
  it("succeeds silently when the daemon is ready", async () => {
    expectSilentSuccess(await cni({ CNI_COMMAND: "STATUS", CNI_PATH: "/opt/cni/bin" }, conf()));
  });

  it("needs no variable but CNI_COMMAND", async () => {
    expectSilentSuccess(await cni({ CNI_COMMAND: "STATUS" }, conf({ name: "another-net" })));
  });
});

// ------------------------------------------------- the daemon cannot serve (11)

describe("an ADD the daemon cannot serve in time", () => {
  interface PoolView {
    idle: number;
    cooling: number;
    pending: number;
    intents: number;
  }
  const poolView = async (): Promise<PoolView> => {
    const b = (await socketRequest(node.socket, "GET", "/v1/pool")).body;
    return {
      idle: Number(b.idle),
      cooling: Number(b.cooling),
      pending: Number(b.pending),
      intents: Number(b.intents),
    };
  };
  async function settled(): Promise<PoolView> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const v = await poolView();
      if (v.pending === 0 && v.intents === 0 && v.cooling === 0) return v;
      expect(Date.now(), JSON.stringify(v)).toBeLessThan(deadline);
      await sleep(200);
    }
  }

  it("answers code 11 with the daemon's reason when no IP comes within the allocation timeout", async () => {
    // What the pool holds idle goes to pods first: the ADD under test must wait for the cloud.
    const { idle } = await settled();
    for (let i = 0; i < idle; i++) await addPod(newPod(`filler${i}`));
    expect((await poolView()).idle).toBe(0);
    const admin = `${sb.file.sim.endpoint}/admin/latency`;
    const latency = (await (await fetch(admin)).json()) as Record<string, unknown>;
    const slow = (ALLOCATE_TIMEOUT_S + 3) * 1000;
    await fetch(admin, {
      method: "PUT",
      body: JSON.stringify({ ...latency, AssignPrivateIpAddresses: slow, CreateNetworkInterface: slow }),
    });
    try {
      const p = newPod("tryagain");
      const started = Date.now();
      const r = await cni(podEnv(p, "ADD"), conf());
      expectError(r, 11, `no IP became available within ${ALLOCATE_TIMEOUT_S * 1000} ms`);
      expect(r.json?.details).toBe("TryAgainLater");
      expect(Date.now() - started).toBeGreaterThanOrEqual(ALLOCATE_TIMEOUT_S * 1000 - 100);
      expect(await allocationOf(p.id)).toBeUndefined();
      expect(ipOk("-n", p.ns, "link", "show", "eth0")).toBe(false);
    } finally {
      await fetch(admin, { method: "PUT", body: JSON.stringify(latency) });
    }
    // The cloud's late answer settles before the pods go.
    await settled();
  }, 90_000);
});
