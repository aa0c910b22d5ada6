// The world file: parseWorld names the offending key path, and
// `eniway sim --world FILE --listen HOST:PORT` (the built CLI) refuses a bad
// file with exit code 1 and that key on stderr, or announces its address.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseWorld } from "../../cloud/simulator/world.js";
import { BUILT } from "../../lib/process.js";
import { rawCall } from "../helpers/sign.js";
import { AK, ECS_VERSION, SK, worldJson } from "../helpers/sim.js";

const CLI = BUILT.cli;

function clone(over: Record<string, unknown> = {}): Record<string, unknown> {
  return structuredClone(worldJson(over));
}

function errorOf(raw: unknown): string {
  try {
    parseWorld(raw);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("parseWorld accepted a bad world");
}

describe("parseWorld", () => {
  it("accepts the test world and the example world of the design", () => {
    const w = parseWorld(clone());
    expect(w.instances.map((i) => i.instanceId)).toEqual(["i-a", "i-b"]);
    expect(w.faults.errorRate).toBe(0);
    const design = parseWorld({
      regionId: "cn-hangzhou",
      credentials: [{ accessKeyId: "AK", accessKeySecret: "SK" }],
      vpc: { vpcId: "vpc-sim", cidr: "10.0.0.0/16" },
      vSwitches: [{ vSwitchId: "vsw-a", zoneId: "cn-hangzhou-k", cidr: "10.0.1.0/24" }],
      securityGroups: ["sg-sim"],
      instanceTypes: [
        {
          instanceTypeId: "ecs.g7.large",
          eniQuantity: 3,
          eniPrivateIpAddressQuantity: 6,
          eniIpv6AddressQuantity: 6,
        },
      ],
      instances: [
        {
          instanceId: "i-node-a",
          instanceType: "ecs.g7.large",
          zoneId: "cn-hangzhou-k",
          vSwitchId: "vsw-a",
          netns: "eniway-node-a",
        },
      ],
      latencyMs: { AttachNetworkInterface: 1000, DetachNetworkInterface: 1000 },
      throttle: { "*": { qps: 50, burst: 100 } },
      faults: { errorRate: 0, actions: {} },
      datapath: { vpcNetns: "eniway-vpc" },
    });
    expect(design.datapath?.vpcNetns).toBe("eniway-vpc");
  });

  it("names the key path of each problem", () => {
    const cases: [string, (w: Record<string, unknown>) => void, RegExp][] = [
      [
        "unknown instance type",
        (w) => {
          (w.instances as Record<string, unknown>[])[0]!.instanceType = "ecs.nope";
        },
        /^instances\[0\]\.instanceType: .*ecs\.nope/,
      ],
      [
        "vSwitch outside the VPC",
        (w) => {
          (w.vSwitches as Record<string, unknown>[])[0]!.cidr = "192.168.0.0/24";
        },
        /^vSwitches\[0\]\.cidr: .*not inside/,
      ],
      [
        "unknown key in vpc",
        (w) => {
          (w.vpc as Record<string, unknown>).foo = 1;
        },
        /^vpc\.foo: is not a known key/,
      ],
      [
        "unknown action in throttle",
        (w) => {
          w.throttle = { NoSuchAction: { qps: 1, burst: 1 } };
        },
        /^throttle\.NoSuchAction: /,
      ],
      [
        "unknown action in latencyMs",
        (w) => {
          w.latencyMs = { AttachNetworkInterfaces: 10 };
        },
        /^latencyMs\.AttachNetworkInterfaces: /,
      ],
      [
        "ill-typed quota",
        (w) => {
          (w.instanceTypes as Record<string, unknown>[])[1]!.eniQuantity = "4";
        },
        /^instanceTypes\[1\]\.eniQuantity: must be a number/,
      ],
      [
        "missing required key",
        (w) => {
          delete w.regionId;
        },
        /^regionId: is required/,
      ],
      [
        "overlapping vSwitches",
        (w) => {
          (w.vSwitches as Record<string, unknown>[])[1]!.cidr = "10.0.1.0/29";
        },
        /^vSwitches\[1\]\.cidr: overlaps/,
      ],
      [
        "zone mismatch",
        (w) => {
          (w.instances as Record<string, unknown>[])[1]!.vSwitchId = "vsw-j";
        },
        /^instances\[1\]\.zoneId: /,
      ],
      [
        "duplicate instance",
        (w) => {
          (w.instances as Record<string, unknown>[])[1]!.instanceId = "i-a";
        },
        /^instances\[1\]\.instanceId: duplicates/,
      ],
      [
        "fault rate above 1",
        (w) => {
          w.faults = { actions: { CreateNetworkInterface: { rate: 1.5 } } };
        },
        /^faults\.actions\.CreateNetworkInterface\.rate: /,
      ],
      [
        "ram role ttl below a minute",
        (w) => {
          w.ramRole = { roleName: "R", ttlSeconds: 10 };
        },
        /^ramRole\.ttlSeconds: /,
      ],
    ];
    for (const [what, mutate, want] of cases) {
      const w = clone();
      mutate(w);
      expect(errorOf(w), what).toMatch(want);
    }
  });
});

describe("eniway sim (the built CLI)", () => {
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-contract-"));
    // The suite's global setup builds dist/; without it this test cannot run, and says so.
    if (!existsSync(CLI))
      throw new Error(`${CLI} is missing: run \`npm run build\` (vitest's global setup does)`);
  }, 90_000);

  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.pid !== undefined) c.kill("SIGTERM");
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("exits 1 and names the key for a bad world", async () => {
    const bad = clone();
    (bad.instances as Record<string, unknown>[])[0]!.instanceType = "ecs.missing";
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify(bad));
    const r = await run(process.execPath, [CLI, "sim", "--world", file, "--listen", "127.0.0.1:0"], 15_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("instances[0].instanceType");
    expect(r.stdout).not.toContain("listening on");

    const notJson = join(dir, "broken.json");
    await writeFile(notJson, "{");
    const r2 = await run(
      process.execPath,
      [CLI, "sim", "--world", notJson, "--listen", "127.0.0.1:0"],
      15_000,
    );
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/not valid JSON/);

    const unknownKey = clone({ vpc: { vpcId: "vpc-x", cidr: "10.0.0.0/16", foo: true } });
    const f3 = join(dir, "unknown.json");
    await writeFile(f3, JSON.stringify(unknownKey));
    const r3 = await run(process.execPath, [CLI, "sim", "--world", f3, "--listen", "127.0.0.1:0"], 15_000);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain("vpc.foo");
  });

  it("prints `listening on http://127.0.0.1:PORT` for a good world and serves the API there", async () => {
    const file = join(dir, "good.json");
    await writeFile(file, JSON.stringify(clone()));
    const child = spawn(process.execPath, [CLI, "sim", "--world", file, "--listen", "127.0.0.1:0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const line = await firstLine(child, 15_000);
    const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    expect(m, line).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(0);
    const r = await rawCall({
      endpoint: m![1]!,
      action: "DescribeInstanceTypes",
      version: ECS_VERSION,
      accessKeyId: AK,
      accessKeySecret: SK,
    });
    expect(r.status, r.text).toBe(200);
    expect((r.body.InstanceTypes as { InstanceType: unknown[] }).InstanceType).toHaveLength(2);
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((res) => child.once("exit", (c) => res(c)));
    expect(code).toBe(0);
  });
});

function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      rej(new Error(`${args.join(" ")} did not finish in ${timeoutMs} ms\n${stdout}${stderr}`));
    }, timeoutMs);
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => rej(new Error(`no output in ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        res(out.slice(0, nl));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`exited ${code} before printing; stderr: ${err}`));
    });
  });
}
