// Simulator throughput through the real pop-core client: the simulator runs
// as its own process pinned to one core, the load comes from this process.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import RPCClient from "@alicloud/pop-core";

export interface ThroughputFigure {
  action: string;
  calls: number;
  seconds: number;
  perSecond: number;
  errors: number;
}

const AK = "bench-ak";
const SK = "bench-sk";

async function startSimProcess(
  worldFile: string,
  cli: string,
): Promise<{ child: ChildProcess; url: string }> {
  const hasTaskset = await readFile("/usr/bin/taskset").then(
    () => true,
    () => false,
  );
  const args = ["node", cli, "sim", "--world", worldFile, "--listen", "127.0.0.1:0"];
  const child = hasTaskset
    ? spawn("taskset", ["-c", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(args[0]!, args.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  return { child, url };
}

async function load(
  seconds: number,
  concurrency: number,
  call: (worker: number, i: number) => Promise<unknown>,
): Promise<{ calls: number; errors: number; elapsed: number }> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let calls = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        try {
          await call(w, i);
        } catch {
          errors++;
        }
        calls++;
      }
    }),
  );
  return { calls, errors, elapsed: (performance.now() - start) / 1000 };
}

export async function simThroughput(cli: string, seconds = 3, concurrency = 16): Promise<ThroughputFigure[]> {
  const dir = await mkdtemp(join(tmpdir(), "eniway-bench-"));
  const worldFile = join(dir, "world.json");
  await writeFile(
    worldFile,
    JSON.stringify({
      regionId: "cn-hangzhou",
      credentials: [{ accessKeyId: AK, accessKeySecret: SK }],
      vpc: { vpcId: "vpc-bench", cidr: "10.0.0.0/8" },
      vSwitches: [{ vSwitchId: "vsw-bench", zoneId: "z1", cidr: "10.1.0.0/16" }],
      securityGroups: ["sg-bench"],
      instanceTypes: [{ instanceTypeId: "ecs.bench", eniQuantity: 8, eniPrivateIpAddressQuantity: 20 }],
      instances: Array.from({ length: 20 }, (_, i) => ({
        instanceId: `i-bench-${i}`,
        instanceType: "ecs.bench",
        zoneId: "z1",
        vSwitchId: "vsw-bench",
      })),
    }),
  );
  const { child, url } = await startSimProcess(worldFile, cli);
  try {
    const ecs = new RPCClient({
      endpoint: url,
      apiVersion: "2014-05-26",
      accessKeyId: AK,
      accessKeySecret: SK,
    });
    const req = <T>(action: string, params: Record<string, unknown>): Promise<T> =>
      ecs.request<T>(action, { RegionId: "cn-hangzhou", ...params }, { method: "POST", formatParams: false });
    // Unattached ENIs to assign into: each takes 49 secondary IPs; give each worker its own, enough
    // for 16,000 calls/s (at 8,000 a fast run filled them and counted the quota errors as failures).
    const perWorker = Math.ceil((seconds * 16_000) / 49 / concurrency) + 1;
    const enis: string[][] = [];
    for (let w = 0; w < concurrency; w++) {
      const mine: string[] = [];
      for (let k = 0; k < perWorker; k++) {
        const r = await req<{ NetworkInterfaceId: string }>("CreateNetworkInterface", {
          VSwitchId: "vsw-bench",
          SecurityGroupId: "sg-bench",
        });
        mine.push(r.NetworkInterfaceId);
      }
      enis.push(mine);
    }
    const describe = await load(seconds, concurrency, (w) =>
      req("DescribeNetworkInterfaces", { InstanceId: `i-bench-${w % 20}`, MaxResults: 100 }),
    );
    const assign = await load(seconds, concurrency, (w, i) =>
      req("AssignPrivateIpAddresses", {
        NetworkInterfaceId: enis[w]![Math.floor(i / 49)],
        SecondaryPrivateIpAddressCount: 1,
      }),
    );
    return [
      { action: "DescribeNetworkInterfaces", ...describe },
      { action: "AssignPrivateIpAddresses", ...assign },
    ].map((r) => ({
      action: r.action,
      calls: r.calls,
      seconds: Number(r.elapsed.toFixed(2)),
      perSecond: Math.round(r.calls / r.elapsed),
      errors: r.errors,
    }));
  } finally {
    child.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
}
