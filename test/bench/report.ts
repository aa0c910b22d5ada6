// BENCHMARKS.md from one `npm run bench`: the machine and versions it ran on,
// every figure of every bench (or why a bench has none), and the plots, written
// as SVG files under docs/bench/ that the Markdown links to.

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, machine, release, totalmem, type } from "node:os";
import { join } from "node:path";
import { exec } from "../../lib/exec.js";
import { packageRoot } from "../../lib/process.js";
import type { ClusterFigures } from "./cluster-bench.js";
import { type CniFigures, REF } from "./cni-bench.js";
import type { ContainerdFigures } from "./containerd-bench.js";
import { type DatapathFigures, PATHS, pathLabel } from "./datapath-bench.js";
import type { KubeFigures } from "./kube-bench.js";
import {
  burstSpec,
  datapathSpec,
  latencySpec,
  memorySpec,
  poolSpec,
  REFERENCE,
  renderSvg,
  type TopLevelSpec,
} from "./plot.js";
import type { PolicyFigures } from "./policy-bench.js";
import type { BurstFigures, ScrapeFigures, WarmFigures } from "./pool-bench.js";
import type { ThroughputFigure } from "./sim-throughput.js";
import type { SoakFigures } from "./soak-bench.js";

/** What each bench returns, by the name its JSON line carries. */
export interface BenchFigures {
  "sim-throughput": ThroughputFigure[];
  "warm-allocate": WarmFigures;
  "cold-burst": BurstFigures;
  cni: CniFigures;
  containerd: ContainerdFigures;
  scrape: ScrapeFigures;
  kubernetes: KubeFigures;
  soak: SoakFigures;
  cluster: ClusterFigures;
  policy: PolicyFigures;
  datapath: DatapathFigures;
}
export type BenchName = keyof BenchFigures;

export type Outcome<T> =
  | { status: "ok"; value: T }
  | { status: "failed"; error: string }
  | { status: "skipped"; reason: string };

/** One run's figures; a bench that is absent was not run. */
export type Figures = { [K in BenchName]?: Outcome<BenchFigures[K]> };

/** Each bench's section heading, the title `npm run bench` prints before its figures, and its source. */
export const BENCHES: { readonly [K in BenchName]: { heading: string; title: string; source: string } } = {
  "sim-throughput": {
    heading: "Simulator throughput",
    title: "simulator throughput through pop-core (simulator pinned to one core, 16 concurrent callers)",
    source: "sim-throughput.ts",
  },
  "warm-allocate": {
    heading: "Allocation from a warm pool",
    title: "daemon allocate from a warm pool (sequential allocate+release over the unix socket)",
    source: "pool-bench.ts",
  },
  "cold-burst": {
    heading: "Burst on a cold pool",
    title:
      "burst of 60 allocations on a cold pool (Attach 1.5 s, other calls 100-300 ms; 8 ENIs x 30 IPs), in ip mode and in prefix mode",
    source: "pool-bench.ts",
  },
  cni: {
    heading: "CNI ADD and DEL",
    title: "CNI ADD/DEL from a warm pool: eniway plugin vs reference bridge + host-local (same run, ms)",
    source: "cni-bench.ts",
  },
  containerd: {
    heading: "containerd RunPodSandbox",
    title:
      "containerd CRI RunPodSandbox/Stop/Remove: eniway vs bridge + host-local (same run, alternating, ms)",
    source: "containerd-bench.ts",
  },
  scrape: {
    heading: "/metrics and /dashboard",
    title: "/metrics and /dashboard of a daemon with 200 allocated IPs (7 ENIs x 30 IPs)",
    source: "pool-bench.ts",
  },
  kubernetes: {
    heading: "The Kubernetes side",
    title:
      "the Kubernetes side against a real kube-apiserver (100 pods on one node; kubernetes.checkSeconds 20)",
    source: "kube-bench.ts",
  },
  soak: {
    heading: "Soak",
    title:
      "soak: 5000 DEL/ADD cycles through the plugin against one daemon holding 100 live pods (each cycle replaces one; windows of 250)",
    source: "soak-bench.ts",
  },
  cluster: {
    heading: "A real cluster",
    title:
      "a real cluster (sandbox up --cluster, 2 nodes): helm install, Deployments, eniway vs bridge + host-local",
    source: "cluster-bench.ts",
  },
  policy: {
    heading: "NetworkPolicy at scale",
    title:
      "NetworkPolicy against a real API server: 1,000 pod objects in 10 namespaces, 200 policies; programming latency, the ADD's extra cost, TCP throughput",
    source: "policy-bench.ts",
  },
  datapath: {
    heading: "The datapath",
    title:
      "the datapath on a two-node sandbox: one TCP stream (iperf3) and ping round trips of pod ↔ pod (eniway) against node ↔ node (the underlay) and bridge + host-local, the legs between, plain veth chains and a shared device (ipvlan) on the ENIs; the MTU end to end",
    source: "datapath-bench.ts",
  },
};

export const BENCH_NAMES = Object.keys(BENCHES) as BenchName[];

/** The cold burst in ip mode against the same in prefix mode (`pool.mode: prefix`). */
function prefixBurst(ip: BurstFigures, p: NonNullable<BurstFigures["prefix"]>): string[] {
  const calls = [...new Set([...Object.keys(ip.cloudCalls), ...Object.keys(p.cloudCalls)])].sort();
  return [
    table(
      ["", "ip mode", "prefix mode"],
      [
        ["all served (ms)", ip.allServedMs, p.allServedMs],
        ["median served (ms)", ip.p50Ms, p.p50Ms],
        ["all served / lower bound", `${ip.ratio}x`, `${p.ratio}x`],
        ["cloud calls per allocated IP", ip.callsPerIp, p.callsPerIp],
        ...calls.map((c) => [c, ip.cloudCalls[c] ?? 0, p.cloudCalls[c] ?? 0]),
      ],
    ),
    "In prefix mode the pool asks for IPv4 prefixes (/28s of 16 addresses, from a /22 of the vSwitch reserved for them) instead of single IPs.",
  ];
}

/** The plots, by file under docs/bench/, each drawn from one bench's figures. */
const PLOTS: {
  [K in BenchName]?: { file: string; alt: string; spec: (v: BenchFigures[K]) => TopLevelSpec }[];
} = {
  cni: [
    {
      file: "cni-latency.svg",
      alt: `ADD and DEL latency, eniway vs ${REFERENCE}`,
      spec: (v) => latencySpec(v.samples),
    },
  ],
  "cold-burst": [
    { file: "cold-burst.svg", alt: "pods served over time vs the lower bound", spec: (v) => burstSpec(v) },
  ],
  datapath: [
    {
      file: "datapath.svg",
      alt: "TCP throughput and round trip of each path",
      spec: (v) => datapathSpec(v),
    },
  ],
  soak: [
    { file: "soak-pool.svg", alt: "pool composition over the soak", spec: (v) => poolSpec(v.windows) },
    { file: "soak-daemon.svg", alt: "daemon RSS and fds over the soak", spec: (v) => memorySpec(v.windows) },
  ],
};

export const PLOT_DIR = "docs/bench";

// ---- the machine and the versions

/** The machine and the versions, by the names the report shows. */
export interface Environment {
  machine: Record<"CPU" | "memory" | "kernel" | "distribution", string>;
  versions: Record<"Node.js" | "eniway" | "git commit" | "reference CNI plugins" | "containerd", string>;
}

/** A program's stdout, trimmed, or null when it is missing or fails. */
const output = (argv: string[], cwd?: string): Promise<string | null> =>
  exec(argv, undefined, cwd).then(
    (s) => s.trim(),
    () => null,
  );

/** What a CNI plugin says to CNI_COMMAND=VERSION, shortened; as said when it is not the JSON expected. */
function protocolVersions(said: string): string {
  try {
    const v = JSON.parse(said) as { cniVersion?: string; supportedVersions?: string[] };
    return `cniVersion ${v.cniVersion}, supports ${(v.supportedVersions ?? []).join(", ")}`;
  } catch {
    return said;
  }
}

async function referencePlugins(): Promise<string> {
  const bridge = join(REF, "bridge");
  // `env` sets the variable the plugin reads; it is still an argument vector, no shell.
  const said = await output(["env", "-i", "CNI_COMMAND=VERSION", bridge]);
  if (said === null) return `not found: ${bridge} (where test/bench/cni-bench.ts looks)`;
  // "containernetworking-plugins\t1.1.1+ds1-3+b5"
  const deb = (await output(["dpkg-query", "-W", "containernetworking-plugins"]))?.split("\t")[1];
  return `${bridge}${deb ? ` from containernetworking-plugins ${deb}` : ""}; CNI_COMMAND=VERSION: ${protocolVersions(said)}`;
}

export async function environment(): Promise<Environment> {
  const root = packageRoot();
  const osRelease = await readFile("/etc/os-release", "utf8").catch(() => "");
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? "unknown";
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
  const commit = await output(["git", "rev-parse", "--short", "HEAD"], root);
  const dirty = await output(["git", "status", "--porcelain", "--untracked-files=no"], root);
  const cpu = cpus();
  return {
    machine: {
      CPU: `${cpu[0]?.model ?? "unknown"} x ${cpu.length}`,
      memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
      kernel: `${type()} ${release()} ${machine()}`,
      distribution: pretty,
    },
    versions: {
      "Node.js": process.version,
      eniway: pkg.version,
      "git commit":
        commit === null ? "unknown (no git)" : `${commit}${dirty ? " with uncommitted changes" : ""}`,
      "reference CNI plugins": await referencePlugins(),
      containerd: (await output(["containerd", "--version"])) ?? "not found (`containerd --version` failed)",
    },
  };
}

// ---- Markdown

const table = (header: string[], rows: (string | number)[][]): string =>
  [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");

/** A two-column table of named values. */
const facts = (named: Record<string, string | number>, header = ["figure", "value"]): string =>
  Object.keys(named).length === 0 ? "(none)" : table(header, Object.entries(named));

export const signed = (n: number): string => `${n >= 0 ? "+" : ""}${n}`;
const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : "n/a");

/** Each bench's figures as Markdown, every figure that `npm run bench` prints. */
const SECTIONS: { [K in BenchName]: (v: BenchFigures[K]) => string[] } = {
  "sim-throughput": (figures) => [
    table(
      ["action", "calls/s", "calls", "seconds", "errors"],
      figures.map((f) => [f.action, f.perSecond, f.calls, f.seconds, f.errors]),
    ),
    "Target: at least 500 calls/s each.",
  ],
  "warm-allocate": (w) => [
    table(
      ["measured", "p50 (ms)", "p99 (ms)"],
      [
        ["daemon side (its allocation histogram)", w.daemonP50Ms, w.daemonP99Ms],
        ["unix socket round trip", w.roundTripP50Ms.toFixed(2), w.roundTripP99Ms.toFixed(2)],
      ],
    ),
    `${w.n} sequential allocate + release pairs.`,
  ],
  "cold-burst": (b) => [
    facts({
      pods: b.pods,
      "all served (ms)": b.allServedMs,
      "first served (ms)": b.firstMs,
      "median served (ms)": b.p50Ms,
      "cloud's lower bound (ms)": b.lowerBoundMs,
      "all served / lower bound": `${b.ratio}x`,
      "cloud calls per allocated IP": b.callsPerIp,
    }),
    facts(b.cloudCalls, ["cloud call", "count"]),
    ...(b.prefix ? prefixBurst(b, b.prefix) : []),
    "The lower bound is the fastest create (100 ms) + the fastest attach call (100 ms) + the attach itself (1500 ms): no IP can be served earlier.",
  ],
  cni: (c) => {
    const row = (what: string, e: number, b: number, r?: number): (string | number)[] => [
      what,
      e,
      b,
      r === undefined ? ratio(e, b) : r,
    ];
    return [
      table(
        ["ms", "eniway", REFERENCE, "eniway / bridge"],
        [
          row("ADD p50", c.eniway.addP50, c.bridge.addP50, c.ratio.add),
          row("ADD p90", c.eniway.addP90, c.bridge.addP90),
          row("DEL p50", c.eniway.delP50, c.bridge.delP50, c.ratio.del),
          row("DEL p90", c.eniway.delP90, c.bridge.delP90),
          row("VERSION p50", c.eniway.versionP50, c.bridge.versionP50, c.ratio.version),
          row("binary size (MB)", c.binaryMB.eniway, c.binaryMB.bridge),
        ],
      ),
      `${c.n} ADD/DEL pairs of each plugin, alternating which goes first. Targets for the p50 ratios: ADD <= 1.0, DEL <= 0.8, VERSION <= 1.2; the binary <= 5 MB. eniway's binary is the native forwarder; the work is the daemon's.`,
      `The daemon's share of an eniway ADD (p50, from its histograms): allocation ${c.daemon.allocateP50} ms, kernel work ${c.daemon.kernelP50} ms.`,
      ...(c.dual
        ? [
            `Dual stack (\`ipStack: dual\`, ${c.dual.n} pairs in a second sandbox; the reference with an IPv4 and an IPv6 host-local range):`,
            table(
              ["ms", "eniway", REFERENCE, "eniway / bridge"],
              [
                row("dual-stack ADD p50", c.dual.eniway.addP50, c.dual.bridge.addP50, c.dual.ratio.add),
                row("dual-stack DEL p50", c.dual.eniway.delP50, c.dual.bridge.delP50, c.dual.ratio.del),
              ],
            ),
            `eniway's dual-stack ADD is ${c.dual.ratio.addVsIpv4}x its IPv4 ADD.`,
          ]
        : []),
    ];
  },
  containerd: (c) => [
    table(
      ["ms", "eniway", REFERENCE, "eniway / bridge"],
      [
        ["RunPodSandbox p50", c.eniway.runP50, c.bridge.runP50, c.ratio.run],
        ["RunPodSandbox p90", c.eniway.runP90, c.bridge.runP90, ratio(c.eniway.runP90, c.bridge.runP90)],
        ["StopPodSandbox p50", c.eniway.stopP50, c.bridge.stopP50, c.ratio.stop],
        ["RemovePodSandbox p50", c.eniway.removeP50, c.bridge.removeP50, c.ratio.remove],
      ],
    ),
    `${c.n} pods through each of two private containerds (CRI, as kubelet calls it), alternating. Target for RunPodSandbox p50: <= 1.0.`,
    "Each RunPodSandbox runs the plugin once (ADD), Stop and Remove once each (DEL).",
  ],
  scrape: (s) => [
    table(
      ["endpoint", "p50 (ms)", "bytes"],
      [
        ["/metrics", s.metricsP50Ms, s.metricsBytes],
        ["/dashboard/data", s.dashboardDataP50Ms, s.dashboardDataBytes],
        ["/dashboard, everything it loads", "", s.pageBytes],
      ],
    ),
    `With ${s.pods} allocated IPs.`,
  ],
  kubernetes: (k) => [
    `Steady state: ${k.requestsPerMinute} API requests/minute over ${k.windowSeconds} s with ${k.pods} pods.`,
    facts(k.requestsInWindow, ["request", "count in the window"]),
    `A pod deleted without a DEL has its IP released after ${k.deletionToReleaseMs.min}–${k.deletionToReleaseMs.max} ms (${k.deletionToReleaseMs.n} pods; grace ${k.releaseGraceSeconds} s + at most one check of ${k.checkSeconds} s).`,
  ],
  soak: (s) => [
    table(
      [
        "cycles",
        "ADD p50 (ms)",
        "ADD p99 (ms)",
        "RSS (MiB)",
        "fds",
        "store bytes",
        "idle",
        "allocated",
        "ENIs",
      ],
      s.windows.map((w) => [
        w.cycles,
        w.addP50Ms,
        w.addP99Ms,
        w.rssMiB,
        w.fds,
        w.storeBytes,
        w.idle,
        w.allocated,
        w.enis,
      ]),
    ),
    `${s.cycles} cycles with ${s.live} pods live. After the warm-up window: RSS ${signed(s.rssGrowthMiB)} MiB (target <= 10), at most ${s.rssMaxMiB} MiB (target <= 100), fds ${signed(s.fdGrowth)}, store ${signed(s.storeGrowthBytes)} bytes, ADD p99 last/first ${s.p99Trend}x.`,
  ],
  cluster: (c) => {
    const d = c.deploymentToRunningMs;
    return [
      facts({
        "helm install → every DaemonSet pod and node Ready (ms)": c.installToReadyMs,
        [`Deployment of ${d.pods} pods → all Running, eniway (ms)`]: d.eniway,
        [`Deployment of ${d.pods} pods → all Running, ${REFERENCE} (ms)`]: d.bridge,
        "eniway / bridge": `${d.ratio}x`,
        [`daemon RSS with ${c.daemonRssMiB.pods} pods on its node (MiB)`]: c.daemonRssMiB.rss,
        [`sandbox stop with ${c.stopMs.pods} pods running, until nothing is left (ms, target <= 10000)`]:
          c.stopMs.ms,
      }),
    ];
  },
  policy: (p) => [
    facts({
      "pod objects in the API server": p.pods,
      [`policy changed in the API server → enforced, p50 / p99 (ms, n=${p.programmingMs.n}, target p99 <= 1000)`]: `${p.programmingMs.p50} / ${p.programmingMs.p99}`,
      "nft rules on the node": p.rules,
      [`ADD p50 of an isolated pod, with ${p.policies} policies / none (ms, n=${p.addP50Ms.n})`]: `${p.addP50Ms.withPolicies} / ${p.addP50Ms.without}`,
      "the ADD's extra cost through the plugin (ms, target <= 1)": p.addP50Ms.extra,
      "the same ADDs inside the daemon, mean with / without (ms)": `${p.daemonAddMeanMs.withPolicies} / ${p.daemonAddMeanMs.without}`,
      "the ADD's extra cost inside the daemon (ms, target <= 1)": p.daemonAddMeanMs.extra,
      "the pod held by the gate after its address until its rules are in, mean with / without (ms)": `${p.heldMeanMs.withPolicies} / ${p.heldMeanMs.without}`,
      [`TCP between two pods, with ${p.policies} policies / none (Gbit/s)`]: `${p.throughputGbps.withPolicies} / ${p.throughputGbps.without}`,
      "throughput ratio (target >= 0.95)": `${p.throughputGbps.ratio}x`,
      "a pod object as its watch sends it (bytes; every node's daemon gets each pod change)":
        p.podObjectBytes,
      "the daemon's resident memory, its caches holding every pod and policy (MiB)": p.daemonRssMiB,
    }),
  ],
  datapath: (d) => {
    const p = d.paths;
    const kind = d.shared.kind;
    return [
      table(
        [
          "path",
          "veth pairs",
          "forwards",
          "TCP Gbit/s (median)",
          "runs",
          "retransmits (spurious)",
          "CPU % sender / receiver",
          "CPU ms/GB",
          "request/response p50 / p99 / mean (µs)",
          "replies (lost)",
          "paced p50 / p99 (µs)",
        ],
        PATHS.map((n) => [
          pathLabel(n, kind),
          p[n].vethPairs,
          p[n].forwards,
          p[n].gbps,
          p[n].runsGbps.join(", "),
          `${p[n].retransmits} (${p[n].spurious})`,
          `${p[n].cpu.senderPct} / ${p[n].cpu.receiverPct}`,
          p[n].cpu.msPerGB,
          `${p[n].rttUs.p50} / ${p[n].rttUs.p99} / ${p[n].rttUs.mean}`,
          `${p[n].rttUs.n} (${p[n].rttUs.lost})`,
          `${p[n].pacedRttUs.p50} / ${p[n].pacedRttUs.p99} (${p[n].pacedRttUs.n}, ${p[n].pacedRttUs.lost} lost)`,
        ]),
      ),
      `${d.runs} rounds; in each, every path once: one TCP stream for ${d.seconds} s (iperf3, ${d.affinity}), then ${d.echoes.backToBack} ICMP echoes back to back (\`ping -A\`: the next goes when the reply is in, a request/response test) and ${d.echoes.paced} paced 10 ms apart (those mostly measure how fast idle CPUs wake). Veth pairs and forwards are what a packet crosses one way (a forward: a namespace that routes it on). Spurious retransmits are those the receiver reported having already (DSACK): reordered, not lost. CPU: the iperf3 processes' own (with the softirq work done in their context, on veths most of the path's), as a share of one CPU, and both together per GB carried.`,
      facts({
        "pod ↔ pod / node ↔ node (target >= 0.95)": `${d.ratio.podToUnderlay}x`,
        "pod ↔ pod / bridge + host-local": `${d.ratio.podToBridge}x`,
        [`${kind} / node ↔ node`]: `${d.ratio.sharedToUnderlay}x`,
        [`${kind} / pod ↔ pod`]: `${d.ratio.sharedToPod}x`,
        "plain veth chain, 4 pairs / 2 pairs: what the pod path's two extra hops alone predict": `${d.ratio.chain4ToChain2}x`,
        "request/response time the two extra hops add, mean: pod ↔ pod − node ↔ node (µs)": d.extraRttUs.pod,
        "the same in plain veth chains: 4 pairs − 2 pairs (µs)": d.extraRttUs.chains,
      }),
      `veth (eniway) ${p.pod.gbps} Gbit/s, ${kind} ${p.shared.gbps} Gbit/s, underlay ${p.underlay.gbps} Gbit/s. The shared device: ${d.shared.note}.`,
      facts(
        {
          "in the ADD's result (CNI 1.1.0): the daemon's datapath.mtu": d.mtu.daemon ?? "not in the result",
          "pod eth0": d.mtu.podEth0,
          "the pod's host veth": d.mtu.hostVeth,
          "the ENI device": d.mtu.eni,
          "the node's primary device (eth0)": d.mtu.nodePrimary,
          "the VPC router's device of the ENI": d.mtu.vpcRouter,
          [`the ${kind} device`]: d.mtu.shared,
          "a bridge + host-local pod's eth0": d.mtu.bridgePod,
          [`pod → pod across the nodes, DF set, ${d.mtu.fits.size} bytes of payload (MTU − 28)`]: `${d.mtu.fits.replies} of ${d.mtu.fits.sent} answered`,
          [`the same with ${d.mtu.tooBig.size} bytes (MTU − 27)`]: `${d.mtu.tooBig.replies} of ${d.mtu.tooBig.sent} answered${d.mtu.tooBig.said ? `: ${d.mtu.tooBig.said}` : ""}`,
          "TCP MSS pod → pod": d.mtu.tcpMss,
          [`IP fragments made or reassembled over all the runs, in the ${d.mtu.namespaces} namespaces the traffic crossed`]:
            d.mtu.fragments,
        },
        ["MTU and fragmentation", "this run"],
      ),
    ];
  },
};

/** A plot's outcome: its path relative to the report, or why there is none. */
type Drawn = { file: string; alt: string; path: string } | { file: string; alt: string; error: string };

function section<K extends BenchName>(
  name: K,
  outcome: Outcome<BenchFigures[K]> | undefined,
  drawn: Drawn[],
): string {
  const b = BENCHES[name];
  const lines = [`## ${b.heading}`, `\`npm run bench\` (test/bench/${b.source}): ${b.title}.`];
  if (outcome === undefined) lines.push("**Not run.**");
  else if (outcome.status === "skipped") lines.push(`**Skipped:** ${outcome.reason}`);
  else if (outcome.status === "failed") lines.push("**Failed:**", `\`\`\`text\n${outcome.error}\n\`\`\``);
  else lines.push(...SECTIONS[name](outcome.value));
  for (const d of drawn)
    lines.push(
      "path" in d ? `![${d.alt}](${d.path})` : `_The plot ${d.file} could not be drawn: ${d.error}_`,
    );
  return lines.join("\n\n");
}

export function reportMarkdown(figures: Figures, env: Environment, drawn: Map<BenchName, Drawn[]>): string {
  return [
    "# Benchmarks",
    `Written by \`npm run bench\` (test/bench/run.ts) on ${new Date().toISOString()}: every figure and plot below comes from that one run. Run it again to refresh this file and ${PLOT_DIR}/.`,
    "The machine is small and shared, so absolute times move from run to run; where a reference was measured in the same run (the bridge + host-local plugins, the cloud's lower bound), the ratio to it is the steadier figure.",
    "## Machine",
    facts(env.machine, ["part", "this run"]),
    "## Versions",
    facts(env.versions, ["program", "version"]),
    ...BENCH_NAMES.map((name) => section(name, figures[name], drawn.get(name) ?? [])),
  ].join("\n\n");
}

/** Draws a bench's plots, or removes them when it has no figures: an earlier run's would not match. */
async function drawPlots<K extends BenchName>(
  name: K,
  outcome: Outcome<BenchFigures[K]> | undefined,
  outDir: string,
): Promise<Drawn[]> {
  const plots = PLOTS[name] ?? [];
  if (outcome?.status !== "ok") {
    for (const { file } of plots) await rm(join(outDir, PLOT_DIR, file), { force: true });
    return [];
  }
  return Promise.all(
    plots.map(async ({ file, alt, spec }): Promise<Drawn> => {
      const path = `${PLOT_DIR}/${file}`;
      try {
        await writeFile(join(outDir, path), await renderSvg(spec(outcome.value)));
        return { file, alt, path };
      } catch (e) {
        return { file, alt, error: e instanceof Error ? e.message : String(e) };
      }
    }),
  );
}

/** Writes outDir/BENCHMARKS.md and its plots under outDir/docs/bench/; returns what it wrote. */
export async function writeReport(
  figures: Figures,
  outDir: string,
  env?: Environment,
): Promise<{ report: string; plots: string[] }> {
  await mkdir(join(outDir, PLOT_DIR), { recursive: true });
  const drawn = new Map<BenchName, Drawn[]>();
  for (const name of BENCH_NAMES) drawn.set(name, await drawPlots(name, figures[name], outDir));
  const report = join(outDir, "BENCHMARKS.md");
  await writeFile(report, `${reportMarkdown(figures, env ?? (await environment()), drawn)}\n`);
  const plots = [...drawn.values()].flat().flatMap((d) => ("path" in d ? [join(outDir, d.path)] : []));
  return { report, plots };
}
