// `npm start`: a 2-node sandbox with 2 pods per node, created through the
// real plugin, then a TCP exchange from a pod on one node to a pod on the
// other (nothing beyond iproute2 and Node.js needed). Ctrl-C removes everything.

import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { socketRequest } from "../../lib/http.js";
import type { Logger } from "../../lib/log.js";
import { runPlugin } from "./plugin.js";
import { tcpReach } from "./reach.js";
import { requireRoot, type Sandbox, type SandboxNode, sandboxUp } from "./sandbox.js";

const run = promisify(execFile);

interface Pod {
  name: string;
  node: SandboxNode;
  netns: string;
  containerId: string;
  ip: string;
  eniId: string;
}

/** ADD or DEL of a demo pod through the node's real plugin, as a runtime would call it. */
async function plugin(
  node: SandboxNode,
  command: "ADD" | "DEL",
  pod: Omit<Pod, "ip" | "eniId">,
): Promise<string> {
  const r = await runPlugin(node, {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: `/var/run/netns/${pod.netns}`,
    CNI_IFNAME: "eth0",
    CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};IgnoreUnknown=1`,
  });
  if (r.code !== 0) throw new Error(`plugin ${command} for ${pod.name} failed: ${r.out}`);
  return r.out;
}

export async function demo(log: Logger): Promise<void> {
  requireRoot("eniway sandbox demo (npm start)");
  const dir = join(tmpdir(), "eniway-sandbox");
  process.stdout.write(`starting a 2-node sandbox in ${dir} …\n`);
  const sb: Sandbox = await sandboxUp({ dir, nodes: 2, sets: [], log });
  const pods: Pod[] = [];
  let cleaning = false;
  const cleanup = async (): Promise<void> => {
    if (cleaning) return;
    cleaning = true;
    process.stdout.write("\ncleaning up …\n");
    for (const p of pods) {
      await plugin(p.node, "DEL", p).catch(() => {});
      await run("ip", ["netns", "del", p.netns]).catch(() => {});
    }
    await sb.stop();
    process.stdout.write("done: namespaces, links, daemons and the simulator are gone\n");
  };
  // A second Ctrl-C (or a signal forwarded twice) must not cut the clean-up short.
  const onSignal = (): void => {
    if (cleaning) {
      process.stdout.write("still cleaning up …\n");
      return;
    }
    void cleanup().then(() => process.exit(0));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    for (const node of sb.file.nodes) {
      for (const i of [1, 2]) {
        const name = `pod-${node.name.replace(/^sandbox-/, "")}-${i}`;
        const pod = { name, node, netns: `eniway-${name}`, containerId: `demo-${name}` };
        await run("ip", ["netns", "add", pod.netns]);
        // Recorded first, so `eniway sandbox down` can remove it after a crash.
        await writeFile(join(dir, "pods.json"), JSON.stringify([...pods.map((p) => p.netns), pod.netns]));
        const result = JSON.parse(await plugin(node, "ADD", pod)) as { ips: { address: string }[] };
        const ip = result.ips[0]!.address.split("/")[0]!;
        const allocs = (await socketRequest(node.socket, "GET", "/v1/allocations")).body as {
          allocations: { containerId: string; eniId: string }[];
        };
        const eniId = allocs.allocations.find((a) => a.containerId === pod.containerId)?.eniId ?? "?";
        pods.push({ ...pod, ip, eniId });
      }
    }
    process.stdout.write("\npod                node             IP           ENI\n");
    for (const p of pods)
      process.stdout.write(
        `${p.name.padEnd(18)} ${p.node.instanceId.padEnd(16)} ${p.ip.padEnd(12)} ${p.eniId}\n`,
      );
    const [from, to] = [pods[0]!, pods.find((p) => p.node !== pods[0]!.node)!];
    const r = await tcpReach(from.netns, to.netns, to.ip);
    const result = r.ok ? `reachable (TCP: sent "ping", got "${r.reply}")` : `NOT reachable: ${r.error}`;
    process.stdout.write(`\ncross-node ${from.name} (${from.ip}) → ${to.name} (${to.ip}): ${result}\n`);
    const n = sb.file.nodes[0]!;
    process.stdout.write(`
the pool, live: ${sb.file.nodes.map((x) => `${x.http}/dashboard`).join("  ")}
look further (as root, while this runs):
  curl -s ${n.http}/metrics | grep ^eniway_pool
  ip netns exec ${from.netns} ip route get ${to.ip}
  ip -n ${n.netns} rule; ip -n ${n.netns} route show table all | grep -v local
  curl -s --unix-socket ${n.socket} http://eniway/v1/pool
  curl -s ${sb.file.sim.endpoint}/admin/state
  cat ${join(dir, "sandbox.json")}
Ctrl-C removes everything.
`);
  } catch (e) {
    await cleanup();
    throw e;
  }
  await new Promise(() => {});
}
