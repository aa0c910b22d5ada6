// Chaining: a conflist of eniway then the reference `portmap` plugin, run the
// way libcni runs a chain (ADD in order, each plugin getting the previous
// result as prevResult; DEL in reverse order with the cached result), with
// every plugin executed inside the node namespace as a runtime on that node
// would. portmap installs its DNAT rules there; the node's own address at the
// hostPort must then reach a TCP server in the pod, and DEL must remove them.

import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SandboxNode } from "../../src/sandbox/sandbox.js";
import {
  allocations,
  type ChainCall,
  type Conflist,
  chainAdd,
  chainCheck,
  chainDel,
  describeRuns,
  ECHO_ADDRESS_SERVER,
  hostVeths,
  must,
  netnsNames,
  nodeAddress,
  podRules,
  quiet,
  REFERENCE_PLUGINS,
  type RuntimeSandbox,
  requireTools,
  startSandbox,
  tcpConnect,
  uniquePrefix,
} from "./helpers.js";

const PREFIX = uniquePrefix("m");
const HOST_PORT = 18080;
const CONTAINER_PORT = 8080;
const IPTABLES_MODE = /\((nf_tables|legacy)\)/;

describe("eniway chained with the portmap plugin", () => {
  let rs: RuntimeSandbox;
  let node: SandboxNode;
  let other: SandboxNode;
  let list: Conflist;
  let call: ChainCall;
  let cached: Record<string, unknown> | undefined;
  let podIp = "";
  let nodeIp = "";
  let server: ChildProcess | undefined;
  const podNetns = `${PREFIX}-pod1`;

  const natRules = async (): Promise<string> =>
    must(["ip", "netns", "exec", node.netns, "iptables-save", "-t", "nat"]);

  beforeAll(async () => {
    requireTools({
      [join(REFERENCE_PLUGINS, "portmap")]: "containernetworking-plugins",
      iptables: "iptables",
      "iptables-save": "iptables",
    });
    rs = await startSandbox(PREFIX, 2);
    [node, other] = rs.nodes as [SandboxNode, SandboxNode];
    nodeIp = await nodeAddress(node);
    await must(["ip", "netns", "add", podNetns]);
    // The sandbox's eniway entry; 1.0.0 because the reference plugins here
    // (containernetworking-plugins 1.1.1) speak CNI up to 1.0.0.
    const eniway = (JSON.parse(await readFile(node.cniConfFile, "utf8")) as Conflist).plugins[0]!;
    list = {
      cniVersion: "1.0.0",
      name: `${PREFIX}-pm`,
      plugins: [eniway, { type: "portmap", capabilities: { portMappings: true }, snat: true }],
    };
    call = {
      containerId: `${PREFIX}-ctr1`,
      netns: `/var/run/netns/${podNetns}`,
      ifname: "eth0",
      runtimeConfig: {
        portMappings: [{ hostPort: HOST_PORT, containerPort: CONTAINER_PORT, protocol: "tcp" }],
      },
      binDirs: [node.cniBinDir, REFERENCE_PLUGINS],
      inNetns: node.netns,
    };
  }, 120_000);

  afterAll(async () => {
    try {
      if (server?.pid && server.exitCode === null) server.kill("SIGKILL");
      if (cached && list) await chainDel(list, call, cached);
      quiet(["ip", "netns", "del", podNetns]);
    } finally {
      await rs?.stop();
    }
    expect(netnsNames().filter((n) => n.startsWith(PREFIX))).toEqual([]);
  }, 60_000);

  it("iptables works in the node namespace, and we know its mode", async () => {
    const v = await must(["iptables", "--version"]);
    expect(v).toMatch(IPTABLES_MODE);
    // portmap runs `iptables` from PATH; its rules land in this namespace only.
    expect(await natRules()).not.toContain("CNI-HOSTPORT-DNAT");
  });

  it("ADD through the chain: eniway wires the pod, portmap adds a DNAT from the hostPort to it", async () => {
    const runs = await chainAdd(list, call);
    expect(
      runs.map((r) => r.code),
      describeRuns(runs),
    ).toEqual([0, 0]);
    const [eniwayRun, portmapRun] = runs as [(typeof runs)[0], (typeof runs)[0]];
    const eniwayResult = JSON.parse(eniwayRun.stdout) as { ips: { address: string }[] };
    // libcni's rules: portmap got eniway's result and only the capability it declared.
    expect(portmapRun.stdinSent.prevResult).toEqual(eniwayResult);
    expect(portmapRun.stdinSent.runtimeConfig).toEqual(call.runtimeConfig);
    expect(eniwayRun.stdinSent.runtimeConfig).toBeUndefined();
    // portmap passes the result through unchanged: it is the chain's result.
    cached = JSON.parse(portmapRun.stdout) as Record<string, unknown>;
    expect(cached).toEqual(eniwayResult);
    podIp = eniwayResult.ips[0]!.address.split("/")[0]!;
    expect(podIp).toMatch(/^10\.0\./);
    const mine = (await allocations(node)).filter((a) => a.containerId === call.containerId);
    expect(mine.map((a) => a.ip)).toEqual([podIp]);

    const nat = await natRules();
    expect(nat).toContain("-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT");
    expect(nat).toContain("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT");
    expect(nat).toMatch(
      new RegExp(
        `--dport ${HOST_PORT} -j DNAT --to-destination ${podIp.replaceAll(".", "\\.")}:${CONTAINER_PORT}`,
      ),
    );
    expect(nat).toContain(`id: \\"${call.containerId}\\"`);
    // The other node's namespace is untouched.
    const otherNat = await must(["ip", "netns", "exec", other.netns, "iptables-save", "-t", "nat"]);
    expect(otherNat).not.toContain("CNI-HOSTPORT-DNAT");
  });

  it("CHECK through the chain: eniway passes; portmap 1.1.1 trips over its own IPv6 bug", async () => {
    const runs = await chainCheck(list, call, cached!);
    const [eniwayRun, portmapRun] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(eniwayRun.code, describeRuns(runs)).toBe(0);
    // containernetworking/plugins#819 (fixed after 1.1.1): portmap's CHECK
    // looks for an ip6tables chain even when the result has only IPv4.
    if (portmapRun.code !== 0) expect(portmapRun.stdout).toMatch(/could not check ipv6 dnat: chain CNI-DN-/);
  });

  it("the node's address at the hostPort reaches a TCP server in the pod (from the node namespace)", async () => {
    server = spawn(
      "ip",
      ["netns", "exec", podNetns, process.execPath, "-e", ECHO_ADDRESS_SERVER, String(CONTAINER_PORT)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    await new Promise<void>((resolve, reject) => {
      let err = "";
      server!.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
      });
      server!.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("ready")) resolve();
      });
      server!.once("exit", (code) => reject(new Error(`server exited ${code}: ${err}`)));
    });
    // Directly, for reference.
    const direct = await tcpConnect(node.netns, podIp, CONTAINER_PORT);
    expect(direct.code, direct.stderr).toBe(0);
    // Through the DNAT: the pod sees the connection on its own address and port.
    const r = await tcpConnect(node.netns, nodeIp, HOST_PORT);
    expect(r.code, `connect ${nodeIp}:${HOST_PORT} from ${node.netns}: ${r.stderr}`).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ local: podIp, localPort: CONTAINER_PORT, remote: nodeIp });
    // A port nobody mapped does not reach the pod.
    const unmapped = await tcpConnect(node.netns, nodeIp, HOST_PORT + 1);
    expect(unmapped.code).not.toBe(0);
  });

  // From another node the SYN is DNATed to the pod; the pod's SYN-ACK would
  // match `from podIP lookup <ENI table>` and leave through the pod's ENI with
  // the node's address as source, which the VPC's source check drops. The
  // datapath marks connections that arrive on the primary interface and routes
  // their replies by `fwmark 0x80 lookup main` (priority 1024), as the AWS VPC
  // CNI does; this test proves that return path.
  it("the node's address at the hostPort reaches the pod from another node", async () => {
    const r = await tcpConnect(other.netns, nodeIp, HOST_PORT);
    expect(r.code, `connect ${nodeIp}:${HOST_PORT} from ${other.netns}: ${r.stderr}`).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ local: podIp, localPort: CONTAINER_PORT });
  });

  it("DEL in reverse order removes the DNAT, then the pod's wiring and allocation; DEL twice is fine", async () => {
    for (let i = 0; i < 2; i++) {
      const runs = await chainDel(list, call, cached);
      expect(
        runs.map((r) => `${r.type}:${r.code}`),
        describeRuns(runs),
      ).toEqual(["portmap:0", "eniway:0"]);
    }
    cached = undefined;
    const nat = await natRules();
    expect(nat).not.toContain(podIp);
    expect(nat).not.toMatch(/CNI-DN-/);
    expect(nat).not.toContain(call.containerId);
    expect(await allocations(node)).toEqual([]);
    expect(await hostVeths(node)).toEqual([]);
    expect(await podRules(node, podIp)).toEqual([]);
    const r = await tcpConnect(node.netns, nodeIp, HOST_PORT);
    expect(r.code, "the hostPort still answers after DEL").not.toBe(0);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
  });

  it("a DEL with no netns and no prevResult (the container is long gone) succeeds for the whole chain", async () => {
    const runs = await chainDel(list, { ...call, netns: "" }, undefined);
    expect(
      runs.map((r) => r.code),
      describeRuns(runs),
    ).toEqual([0, 0]);
  });
});
