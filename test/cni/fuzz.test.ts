// Fuzzed CNI input through the node's CNI binary (the forwarder) to a real
// daemon (a sandbox node): mutated stdin (structure, types, sizes, unicode,
// truncation, bytes) and environment (missing, empty, very long, odd bytes)
// for every command and CNI version. Every run ends within its timeout;
// stdout is a valid result or the spec's error JSON with a known error code;
// a rejected request allocates nothing; the daemon stays healthy. A
// configuration whose socket the forwarder cannot read (mangled, cut short)
// sends it to the default socket: the plugin runs in a private /run whose
// /run/eniway/eniway.sock is the node's, so those too reach the daemon, and
// nothing reaches the machine's own /run. Seeded: ENIWAY_RANDOM_SEED=N
// replays a run, ENIWAY_FUZZ_CASES=N runs more.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERR } from "../../cni/spec/spec.js";
import { socketRequest } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { netconf } from "../../src/sandbox/plugin.js";
import { type Sandbox, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { prng } from "../helpers/prng.js";
import { DEFAULT_SOCKET, type PrivateRun, privateRun, runPlugin } from "./helpers.js";

const SEED = Number(process.env.ENIWAY_RANDOM_SEED ?? Date.now() % 1_000_000);
const CASES = Number(process.env.ENIWAY_FUZZ_CASES ?? 1500);
const PREFIX = `ewfz${process.pid % 10000}`;
const POD_NS = `${PREFIX}-pod`;
const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"];
const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const CODES: readonly number[] = Object.values(ERR);

describe(`fuzzed CNI input through the plugin to a real daemon (seed ${SEED}, ${CASES} cases)`, () => {
  let dir: string;
  let sb: Sandbox;
  let base: Record<string, Json>;
  let atDefault: PrivateRun;
  let machineHadQueue = false;
  const random = prng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const int = (n: number): number => Math.floor(random() * n);
  /** Random bytes from the seeded generator, so a seed replays the same run. */
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-fuzz-"));
    sb = await sandboxUp({
      dir: join(dir, "sb"),
      nodes: 1,
      world: sandboxWorld(1, PREFIX),
      // The node holds 12 IPs and each released one cools for 30 s, so accepted ADDs can drain it: an ADD
      // then waits for an IP up to pool.allocateTimeoutSeconds (30 by default) and answers "try again".
      // That wait is kept well inside the plugin's timeout below, so a drained node still ends every run.
      sets: ["pool.allocateTimeoutSeconds=3"],
      log: silentLogger,
    });
    execFileSync("ip", ["netns", "add", POD_NS]);
    base = (await netconf(sb.file.nodes[0]!)) as Record<string, Json>;
    machineHadQueue = existsSync(`${DEFAULT_SOCKET}.del`);
    atDefault = privateRun(dir);
    atDefault.exec("ln", "-s", sb.file.nodes[0]!.socket, DEFAULT_SOCKET);
  }, 120_000);

  afterAll(async () => {
    atDefault?.remove();
    await sb?.stop();
    try {
      execFileSync("ip", ["netns", "del", POD_NS]);
    } catch {}
    await rm(dir, { recursive: true, force: true });
  });

  const allocations = async (): Promise<number> => {
    const r = await socketRequest(sb.file.nodes[0]!.socket, "GET", "/v1/allocations", undefined, 5000);
    return (r.body as { allocations: unknown[] }).allocations.length;
  };

  /** A value of a random type; sometimes huge, sometimes unicode or control characters. */
  const junk = (): Json => {
    switch (int(10)) {
      case 0:
        return null;
      case 1:
        return random() < 0.5;
      case 2:
        return pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 3.5]);
      case 3:
        return "x".repeat(pick([0, 1, 16, 255, 4096, 200_000]));
      case 4:
        return pick([
          "eth0\n",
          "../../etc/passwd",
          "é\u0000\u202e名前",
          "\ud83d\ude00".repeat(50),
          " ",
          "%00",
          "$(reboot)",
        ]);
      case 5:
        return [junk(), junk()];
      case 6:
        return { [pick(["a", "type", "ipam", "cniVersion", "__proto__", "constructor"])]: junk() };
      case 7:
        return Array.from({ length: int(2000) }, () => int(10));
      default:
        return bytes(int(64)).toString("latin1");
    }
  };

  const mutateConf = (): string => {
    const conf: Record<string, Json> = { ...base, cniVersion: pick(VERSIONS) };
    const keys = Object.keys(conf);
    switch (int(9)) {
      case 0:
        delete conf[pick(keys)];
        break;
      case 1: {
        const key = pick(keys);
        conf[key] = junk();
        // A socket path outside the test's folder could make a DEL record its request beside it.
        if (key === "socket" && typeof conf.socket === "string" && conf.socket.startsWith("/"))
          conf.socket = join(dir, "absent.sock");
        break;
      }
      case 2:
        conf[`x-${int(1000)}`] = junk();
        break;
      case 3:
        conf.cniVersion = pick(["", "0.1.0", "9.9.9", "1.0", "v1.0.0", "1.0.0\n"]);
        break;
      case 4:
        conf.prevResult = junk();
        break;
      case 5: {
        const text = JSON.stringify(conf);
        return text.slice(0, int(text.length)); // truncated
      }
      case 6:
        return bytes(int(512)).toString("latin1");
      case 7:
        return `${"[".repeat(100_000)}${"]".repeat(100_000)}`; // deep nesting
      default:
        break; // unchanged: the environment carries the mutation
    }
    return JSON.stringify(conf);
  };

  const mutateEnv = (): Record<string, string | undefined> => {
    const env: Record<string, string | undefined> = {
      CNI_COMMAND: pick(COMMANDS),
      CNI_CONTAINERID: bytes(32).toString("hex"),
      CNI_NETNS: `/var/run/netns/${POD_NS}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: sb.file.nodes[0]!.cniBinDir,
      CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=fuzz",
    };
    const n = 1 + int(3);
    for (let i = 0; i < n; i++) {
      const k = pick(Object.keys(env));
      env[k] = pick([
        undefined,
        "",
        "x".repeat(pick([16, 300, 5000, 100_000])),
        "eth0\u0001",
        "../../x",
        "lo",
        "/var/run/netns/no-such-netns",
        "relative/path",
        "add",
        "K8S_POD_NAME=;;=;IgnoreUnknown=maybe",
        "\u00e9\u202e",
      ]);
    }
    return env;
  };

  it("every run ends, answers a result or a spec error, and a rejected request allocates nothing", async () => {
    const added: { env: Record<string, string | undefined>; conf: string }[] = [];
    let errors = 0;
    for (let i = 0; i < CASES; i++) {
      const env = mutateEnv();
      const conf = mutateConf();
      const before = await allocations();
      const where = `case ${i} (seed ${SEED}): ${JSON.stringify(env).slice(0, 400)} ${JSON.stringify(conf.slice(0, 120))}`;
      // Rejects on a hang or a non-JSON stdout; the error names the case.
      const r = await runPlugin(env, conf, { timeoutMs: 15_000, wrapper: atDefault.wrapper }).catch(
        (e: Error) => {
          throw new Error(`${where}: ${e.message}`);
        },
      );
      if (r.code === 0) {
        if (env.CNI_COMMAND === "ADD") {
          expect(Array.isArray(r.json?.ips), where).toBe(true);
          added.push({ env, conf });
          // Take it off at once (as the runtime would), so the pod's namespace is free for the next ADD.
          const del = await runPlugin(
            { ...env, CNI_COMMAND: "DEL" },
            JSON.stringify({ ...base, cniVersion: "1.0.0" }),
          );
          expect(del.code, `${where}: DEL after ADD`).toBe(0);
          expect(await allocations(), `${where}: DEL after ADD`).toBe(before);
        } else if (env.CNI_COMMAND === "VERSION")
          expect(Array.isArray(r.json?.supportedVersions), where).toBe(true);
      } else {
        errors++;
        expect(typeof r.json?.code, `${where}: ${r.stdout.slice(0, 200)}`).toBe("number");
        expect(CODES, `${where}: ${r.stdout.slice(0, 300)}`).toContain(r.json?.code);
        expect(typeof r.json?.msg, where).toBe("string");
        expect(r.stderr, where).toBe("");
        if (env.CNI_COMMAND === "ADD")
          expect(await allocations(), `${where}: allocated on a rejected ADD`).toBe(before);
      }
      if (i % 100 === 0) {
        const ready = await socketRequest(sb.file.nodes[0]!.socket, "GET", "/readyz", undefined, 5000);
        expect(ready.status, where).toBe(200);
      }
    }
    expect(await allocations()).toBe(0);
    // The daemon was always there: no DEL was recorded for later, here, at the default socket or the machine's.
    expect(existsSync(`${sb.file.nodes[0]!.socket}.del`)).toBe(false);
    expect(atDefault.exec("ls", "/run/eniway")).toBe("eniway.sock\n");
    if (!machineHadQueue) expect(existsSync(`${DEFAULT_SOCKET}.del`)).toBe(false);
    // Nothing of the pods stays in the kernel: no host veth on the node, no interface in the pod's namespace.
    const links = (ns: string): string[] =>
      (
        JSON.parse(execFileSync("ip", ["-n", ns, "-j", "link", "show"]).toString()) as { ifname: string }[]
      ).map((l) => l.ifname);
    expect(links(sb.file.nodes[0]!.netns).filter((l) => !/^(lo|eth\d+)$/.test(l))).toEqual([]);
    expect(links(POD_NS)).toEqual(["lo"]);
    expect(errors).toBeGreaterThan(CASES / 2);
    console.log(`fuzz: ${CASES} cases, ${errors} rejected, ${added.length} ADDs accepted (seed ${SEED})`);
  }, 900_000);
});
