// Every `eniway` command: its flags in one table each (src/cli/args.ts), from
// which both the parsing and the help are made, and its module, imported only
// when it runs: the daemon never loads the simulator, the sandbox or the image
// builder, and --help loads none of them.

import { DEFAULT_SOCKET } from "../../cni/facts.js";
import { type Command, command, type Flag, type Flags } from "./args.js";
import type { CtlCommand } from "./ctl.js";

const write = (s: string): void => {
  process.stdout.write(s);
};

const SET = {
  type: "string",
  value: "KEY=VALUE",
  multiple: true,
  description: "override a key of the daemon's configuration, a dotted path: pool.minIdle=3",
} as const satisfies Flag;

const WORLD = {
  type: "string",
  value: "FILE",
  description: "the simulated cloud's world, a JSON file: region, vSwitches, instance types, instances",
} as const satisfies Flag;

const DIR = {
  type: "string",
  value: "DIR",
  required: true,
  description: "the sandbox's folder: its state, logs, configurations and sandbox.json",
} as const satisfies Flag;

const CTL_FLAGS = {
  socket: { type: "string", value: "PATH", default: DEFAULT_SOCKET, description: "the daemon's API socket" },
  json: { type: "boolean", description: "JSON for scripts instead of a table" },
} as const satisfies Flags;

/** An operator command: it asks the daemon at --socket (src/cli/ctl.ts). */
const ctlCommand = (name: CtlCommand, summary: string): Command =>
  command({
    name,
    summary,
    flags: CTL_FLAGS,
    run: async (f) => (await import("./ctl.js")).ctl(name, f, write),
  });

export const COMMANDS: readonly Command[] = [
  command({
    name: "sim",
    summary: "the cloud simulator (ECS, VPC, metadata) in the foreground",
    flags: {
      world: { ...WORLD, otherwise: "a demo world of two nodes" },
      listen: {
        type: "string",
        value: "HOST:PORT",
        default: "127.0.0.1:0",
        description: "where to listen; port 0 is any free port, and the URL is printed",
      },
    },
    run: async (f) => (await import("./sim.js")).sim(f),
  }),
  command({
    name: "daemon",
    summary: "the node daemon, which keeps a warm pool of ENI IPs for the CNI plugin and serves its API",
    flags: {
      config: {
        type: "string",
        value: "FILE",
        required: { unless: "check-config" },
        description: "the configuration file, YAML",
      },
      "check-config": {
        type: "string",
        value: "FILE",
        description: "validate this configuration file and exit: 1 with the key that is wrong",
      },
      set: SET,
    },
    run: async (f) => (await import("./daemon.js")).daemon(f),
  }),
  command({
    name: "node-init",
    summary: "the chart's init container, which sets the node's sysctls and installs the plugin",
    flags: {
      "cni-bin-dir": {
        type: "string",
        value: "DIR",
        required: true,
        description: "the node's CNI bin folder: the plugin is copied to DIR/eniway",
      },
      ipv6: {
        type: "boolean",
        description: "also turn on IPv6 forwarding (the daemon's ipStack is dual)",
      },
    },
    run: async (f) => (await import("./node-init.js")).runNodeInit(f),
  }),
  command({
    name: "image build",
    summary: "the Dockerfile's image as an OCI archive, without Docker or a registry",
    flags: {
      out: {
        type: "string",
        value: "FILE",
        default: "eniway-image.tar",
        description: "the archive to write",
      },
      name: {
        type: "string",
        value: "NAME:TAG",
        otherwise: "eniway:VERSION, the chart's default",
        description: "the image's name",
      },
    },
    run: async (f) => (await import("./image.js")).imageBuild(f),
  }),
  command({
    name: "sandbox up",
    summary: "a simulated VPC on this machine, a daemon per node; Ctrl-C removes it (as root)",
    flags: {
      dir: DIR,
      nodes: { type: "string", value: "N", default: "2", description: "how many nodes" },
      world: { ...WORLD, otherwise: "a world of N nodes" },
      set: SET,
      kubernetes: {
        type: "boolean",
        description: "also etcd and kube-apiserver; each daemon runs as the eniway ServiceAccount",
      },
      cluster: {
        type: "boolean",
        description: "a real cluster: control plane, containerd, kubelet, kube-proxy; eniway by helm install",
      },
      "test-images": {
        type: "boolean",
        needs: "cluster",
        description: "also the images Kubernetes' e2e suite runs, built by bash test/kubernetes.sh",
      },
      "dual-stack": {
        type: "boolean",
        needs: "cluster",
        description:
          "IPv4 and IPv6 per pod: an IPv6 VPC, the IPv6DualStack gate, dual Service ranges, the daemon's ipStack=dual",
      },
    },
    run: async (f) => (await import("./sandbox.js")).sandboxUpCommand(f),
  }),
  command({
    name: "sandbox down",
    summary: "clean up after a crashed sandbox (processes, namespaces, links, the folder)",
    flags: { dir: DIR },
    run: async (f) => (await import("./sandbox.js")).sandboxDownCommand(f),
  }),
  command({
    name: "sandbox demo",
    summary: "what npm start runs, a 2-node sandbox with four pods and a TCP ping across nodes (as root)",
    flags: {},
    run: async () => (await import("./sandbox.js")).sandboxDemoCommand(),
  }),
  ctlCommand("status", "the daemon's readiness, ENIs, idle/assigned/cooling IPs and blocked vSwitches"),
  ctlCommand("pods", "the pods of the daemon's node, with container, ifname, IP, ENI and CNI network"),
  ctlCommand("enis", "the daemon's ENIs, with phase, vSwitch, MAC, IPs and how many are assigned"),
  ctlCommand("mapping", "pods (API server) × pool × cloud compared, each disagreement named; exit 1 on any"),
  ctlCommand("gc", "resync the daemon with the cloud now, and print what it fixed"),
  command({
    name: "policy",
    summary: "what may reach a pod of the daemon's node, and what it may reach",
    operands: ["NAMESPACE/NAME"],
    flags: CTL_FLAGS,
    run: async (f, [pod]) => (await import("./ctl.js")).policy(pod!, f, write),
  }),
  command({
    name: "version",
    summary: "print eniway's version (also eniway --version)",
    flags: {},
    run: async () => {
      write(`${(await import("./version.js")).packageInfo().version}\n`);
      return 0;
    },
  }),
];
