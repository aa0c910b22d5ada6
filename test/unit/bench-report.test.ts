// The bench report: the five plots render to real SVG from small data, and
// writeReport writes BENCHMARKS.md with every figure, a section for each bench
// that failed or was skipped, and links to exactly the plots it wrote.

import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../lib/process.js";
import type { CniFigures } from "../bench/cni-bench.js";
import { type DatapathFigures, PATHS, type PathFigures, type PathName } from "../bench/datapath-bench.js";
import { burstSpec, datapathSpec, latencySpec, memorySpec, poolSpec, renderSvg } from "../bench/plot.js";
import { BENCH_NAMES, type BenchFigures, type Figures, writeReport } from "../bench/report.js";
import type { SoakWindow } from "../bench/soak-bench.js";

/** The elements vega drew for one kind of mark (its aria-roledescription), with their aria-labels. */
const marks = (svg: string, kind: string): string[] =>
  [
    ...svg.matchAll(
      new RegExp(`aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="${kind}"`, "g"),
    ),
  ].map((m) => m[1]!);

const axisTitles = (svg: string): string[] =>
  [...svg.matchAll(/<g class="mark-text role-axis-title"[^>]*><text[^>]*>([^<]*)<\/text>/g)].map(
    (m) => m[1]!,
  );

const isSvg = (svg: string): void => {
  expect(svg.startsWith("<svg")).toBe(true);
  expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
  expect(svg).toMatch(/ width="\d+" height="\d+"/);
};

const samples: CniFigures["samples"] = {
  eniway: { add: [5.5, 6.1, 7.2, 8.3], del: [3.1, 4.2, 5.3] },
  bridge: { add: [9.4, 10.5, 11.6], del: [2.1, 3.2, 4.3, 5.4] },
};

const windows = (n: number): SoakWindow[] =>
  Array.from({ length: n }, (_, i) => ({
    cycles: (i + 1) * 250,
    addP50Ms: 11 + i / 100,
    addP99Ms: 21 + i / 100,
    rssMiB: 60 + i,
    fds: 30 + i,
    storeBytes: 5000 + i,
    idle: 6 + (i % 2),
    allocated: i % 2,
    enis: 1,
  }));

describe("bench plots", () => {
  it("(a) ADD and DEL latency: one ECDF curve per plugin in each operation's panel", async () => {
    const svg = await renderSvg(latencySpec(samples));
    isSvg(svg);
    const lines = marks(svg, "line mark");
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => l.includes("plugin: eniway"))).toHaveLength(2);
    expect(lines.filter((l) => l.includes("plugin: bridge + host-local"))).toHaveLength(2);
    expect(axisTitles(svg)).toEqual(
      expect.arrayContaining([
        "latency (ms, log scale)",
        "latency (ms, log scale)",
        "share of calls at or below",
      ]),
    );
    expect(svg).toContain(">ADD</text>");
    expect(svg).toContain(">DEL</text>");
  });

  it("(b) cold burst: a step per allocation and the lower bound as a rule", async () => {
    const svg = await renderSvg(
      burstSpec({ servedAtMs: [2600, 1800, 4000, 1900, 2500], lowerBoundMs: 1700 }),
    );
    isSvg(svg);
    const [line, ...more] = [...svg.matchAll(/aria-roledescription="line mark" d="([^"]*)"/g)].map(
      (m) => m[1]!,
    );
    expect(more).toHaveLength(0);
    // From (0, 0): across then up for each of the 5 allocations.
    expect(line!.match(/L/g)).toHaveLength(10);
    const rules = marks(svg, "rule mark");
    expect(rules).toHaveLength(1);
    expect(rules[0]).toContain(": 1700;");
    expect(rules[0]).toContain("cloud lower bound");
    expect(axisTitles(svg)).toEqual(["time since the burst started (ms)", "pods served"]);
    expect(svg).toContain("Cold burst: 5 allocations");
  });

  it("(c) pool composition: idle IPs, allocated IPs and ENIs, a point per window", async () => {
    const svg = await renderSvg(poolSpec(windows(4)));
    isSvg(svg);
    const lines = marks(svg, "line mark");
    expect(lines).toHaveLength(3);
    for (const s of ["idle IPs", "allocated IPs", "ENIs"])
      expect(lines.some((l) => l.endsWith(`series: ${s}`))).toBe(true);
    expect(marks(svg, "point")).toHaveLength(12);
    expect(axisTitles(svg)).toEqual(["ADD/DEL cycles", "count at the window's end"]);
  });

  it("(e) the datapath: a throughput bar and a round-trip bar per path, a tick per run and per p99", async () => {
    const svg = await renderSvg(datapathSpec(datapath()));
    isSvg(svg);
    const bars = marks(svg, "bar");
    expect(bars).toHaveLength(2 * PATHS.length);
    expect(marks(svg, "tick")).toHaveLength(3 * PATHS.length + PATHS.length);
    expect(
      bars.some((b) => b.includes("pod ↔ pod, two nodes (eniway)") && b.includes("datapath: eniway")),
    ).toBe(true);
    expect(bars.some((b) => b.includes("macvlan passthru on the ENIs (by hand)"))).toBe(true);
    expect(axisTitles(svg)).toEqual(
      expect.arrayContaining([
        "TCP Gbit/s (median; ticks: each run)",
        "request/response µs, echoes back to back (p50; tick: p99)",
      ]),
    );
  });

  it("(d) daemon over the soak: RSS and fds, one panel each", async () => {
    const svg = await renderSvg(memorySpec(windows(5)));
    isSvg(svg);
    expect(marks(svg, "line mark")).toHaveLength(2);
    const points = marks(svg, "point");
    expect(points).toHaveLength(10);
    expect(points.filter((p) => p.includes("resident memory (MiB): 64"))).toHaveLength(1);
    expect(axisTitles(svg)).toEqual([
      "ADD/DEL cycles",
      "resident memory (MiB)",
      "ADD/DEL cycles",
      "open file descriptors",
    ]);
  });
});

/** Datapath figures where every number is different. */
function datapath(): DatapathFigures {
  const path = (): PathFigures => ({
    vethPairs: u(),
    forwards: u(),
    gbps: u(),
    runsGbps: [u(), u(), u()],
    retransmits: u(),
    spurious: u(),
    cpu: { senderPct: u(), receiverPct: u(), msPerGB: u() },
    rttUs: { p50: u(), p99: u(), mean: u(), n: u(), lost: u() },
    pacedRttUs: { p50: u(), p99: u(), n: u(), lost: u() },
  });
  return {
    runs: u(),
    seconds: u(),
    echoes: { backToBack: u(), paced: u() },
    affinity: "the client on CPU 0, the server on CPU 1",
    shared: { kind: "macvlan passthru", note: "no ipvlan in this kernel" },
    paths: Object.fromEntries(PATHS.map((n) => [n, path()])) as Record<PathName, PathFigures>,
    ratio: {
      podToUnderlay: u(),
      podToBridge: u(),
      sharedToUnderlay: u(),
      sharedToPod: u(),
      chain4ToChain2: u(),
    },
    extraRttUs: { pod: u(), chains: u() },
    mtu: {
      daemon: u(),
      podEth0: u(),
      hostVeth: u(),
      eni: u(),
      nodePrimary: u(),
      vpcRouter: u(),
      shared: u(),
      bridgePod: u(),
      fits: { size: u(), sent: u(), replies: u() },
      tooBig: { size: u(), sent: u(), replies: u(), said: "ping: local error: message too long, mtu=1500" },
      tcpMss: u(),
      fragments: u(),
      namespaces: u(),
    },
  };
}

// Figures where every number is different, so each can be looked for in the report.
let next = 100;
const u = (): number => {
  next += 1;
  return next + 0.25;
};
const figures = (): { [K in keyof BenchFigures]: BenchFigures[K] } => ({
  "sim-throughput": ["DescribeNetworkInterfaces", "AssignPrivateIpAddresses"].map((action) => ({
    action,
    calls: u(),
    seconds: u(),
    perSecond: u(),
    errors: u(),
  })),
  "warm-allocate": { n: u(), daemonP50Ms: u(), daemonP99Ms: u(), roundTripP50Ms: u(), roundTripP99Ms: u() },
  "cold-burst": {
    pods: u(),
    allServedMs: u(),
    lowerBoundMs: 1700,
    ratio: u(),
    cloudCalls: { CreateNetworkInterface: u(), AttachNetworkInterface: u() },
    callsPerIp: u(),
    firstMs: u(),
    p50Ms: u(),
    servedAtMs: [1800, 1900, 2500],
  },
  cni: {
    n: u(),
    eniway: { addP50: u(), addP90: u(), delP50: u(), delP90: u(), versionP50: u() },
    bridge: { addP50: u(), addP90: u(), delP50: u(), delP90: u(), versionP50: u() },
    ratio: { add: u(), del: u(), version: u() },
    daemon: { allocateP50: u(), kernelP50: u() },
    binaryMB: { eniway: u(), bridge: u() },
    dual: {
      n: u(),
      eniway: { addP50: u(), delP50: u() },
      bridge: { addP50: u(), delP50: u() },
      ratio: { add: u(), del: u(), addVsIpv4: u() },
    },
    samples,
  },
  containerd: {
    n: u(),
    eniway: { runP50: u(), runP90: u(), stopP50: u(), removeP50: u() },
    bridge: { runP50: u(), runP90: u(), stopP50: u(), removeP50: u() },
    ratio: { run: u(), stop: u(), remove: u() },
  },
  scrape: {
    pods: u(),
    metricsP50Ms: u(),
    metricsBytes: u(),
    dashboardDataP50Ms: u(),
    dashboardDataBytes: u(),
    pageBytes: u(),
  },
  kubernetes: {
    pods: u(),
    windowSeconds: u(),
    requestsPerMinute: u(),
    requestsInWindow: { "list pods": u(), "watch nodes": u() },
    releaseGraceSeconds: u(),
    checkSeconds: u(),
    deletionToReleaseMs: { min: u(), max: u(), n: u() },
  },
  soak: {
    cycles: u(),
    windows: windows(3).map((w) => ({
      ...w,
      storeBytes: u(),
      rssMiB: u(),
      fds: u(),
      idle: u(),
      allocated: u(),
    })),
    live: u(),
    rssGrowthMiB: u(),
    rssMaxMiB: u(),
    fdGrowth: u(),
    storeGrowthBytes: u(),
    p99Trend: u(),
  },
  cluster: {
    installToReadyMs: u(),
    deploymentToRunningMs: { eniway: u(), bridge: u(), pods: u(), ratio: u() },
    daemonRssMiB: { pods: u(), rss: u() },
    stopMs: { pods: u(), ms: u() },
  },
  policy: {
    pods: u(),
    policies: u(),
    rules: u(),
    programmingMs: { p50: u(), p99: u(), n: u() },
    addP50Ms: { withPolicies: u(), without: u(), extra: u(), n: u() },
    daemonAddMeanMs: { withPolicies: u(), without: u(), extra: u() },
    heldMeanMs: { withPolicies: u(), without: u() },
    throughputGbps: { withPolicies: u(), without: u(), ratio: u() },
    podObjectBytes: u(),
    daemonRssMiB: u(),
  },
  datapath: datapath(),
});

/** Every number in the figures but the raw samples the plots are drawn from. */
const numbers = (v: unknown): number[] =>
  typeof v === "number"
    ? [v]
    : typeof v === "object" && v !== null
      ? Object.entries(v).flatMap(([k, x]) => (k === "samples" || k === "servedAtMs" ? [] : numbers(x)))
      : [];

/** The relative targets of the Markdown's image links. */
const imageLinks = (md: string): string[] => [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);

/** The Markdown of one bench's section: from its heading to the next. */
const sectionOf = (md: string, heading: string): string => {
  const from = md.indexOf(`\n## ${heading}\n`);
  expect(from).toBeGreaterThan(0);
  const to = md.indexOf("\n## ", from + 1);
  return md.slice(from, to < 0 ? undefined : to);
};

describe("writeReport", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const outDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), "eniway-bench-report-"));
    dirs.push(d);
    return d;
  };

  it("writes every figure of every bench, the machine and versions, and links each plot it wrote", async () => {
    const f = figures();
    const all: Figures = Object.fromEntries(
      Object.entries(f).map(([name, value]) => [name, { status: "ok", value }]),
    );
    const dir = await outDir();
    const { report, plots } = await writeReport(all, dir);
    expect(report).toBe(join(dir, "BENCHMARKS.md"));
    const md = await readFile(report, "utf8");

    const values = numbers(f);
    expect(values.length).toBeGreaterThan(60);
    const missing = values.filter(
      (n) => !new RegExp(`(?<![\\d.])${String(n).replace(".", "\\.")}(?!\\d)`).test(md),
    );
    expect(missing).toEqual([]);
    for (const k of [
      ...Object.keys(f["cold-burst"].cloudCalls),
      ...Object.keys(f.kubernetes.requestsInWindow),
    ])
      expect(md).toContain(k);
    for (const t of f["sim-throughput"]) expect(md).toContain(t.action);

    for (const h of [
      "## Machine",
      "## Versions",
      "CPU",
      "kernel",
      "distribution",
      "containerd",
      "git commit",
    ])
      expect(md).toContain(h);
    const pkg = JSON.parse(await readFile(join(packageRoot(), "package.json"), "utf8")) as {
      version: string;
    };
    expect(md).toContain(`| Node.js | ${process.version} |`);
    expect(md).toContain(`| eniway | ${pkg.version} |`);
    expect(md).toMatch(/\| reference CNI plugins \| .*\/usr\/lib\/cni\/bridge/);
    expect(md.match(/`npm run bench`/g)!.length).toBeGreaterThanOrEqual(BENCH_NAMES.length);

    expect(plots.map((p) => p.slice(dir.length + 1)).sort()).toEqual(
      [
        "docs/bench/cni-latency.svg",
        "docs/bench/cold-burst.svg",
        "docs/bench/datapath.svg",
        "docs/bench/soak-daemon.svg",
        "docs/bench/soak-pool.svg",
      ].sort(),
    );
    expect(imageLinks(md).sort()).toEqual(plots.map((p) => p.slice(dir.length + 1)).sort());
    for (const p of plots) expect((await readFile(p, "utf8")).startsWith("<svg")).toBe(true);
    expect(sectionOf(md, "CNI ADD and DEL")).toContain("](docs/bench/cni-latency.svg)");
    expect(sectionOf(md, "Soak")).toContain("](docs/bench/soak-pool.svg)");
    expect(sectionOf(md, "The datapath")).toContain("](docs/bench/datapath.svg)");
    expect(sectionOf(md, "The datapath")).toContain("message too long");
  });

  it("says which benches failed or were skipped, and links no plot of theirs", async () => {
    const f = figures();
    const dir = await outDir();
    // A plot from an earlier run that this one has no figures for.
    await writeReport({ soak: { status: "ok", value: f.soak } }, dir);
    expect(existsSync(join(dir, "docs/bench/soak-pool.svg"))).toBe(true);
    await writeFile(join(dir, "docs/bench/unrelated.svg"), "<svg/>");

    const { report, plots } = await writeReport(
      {
        cni: { status: "ok", value: f.cni },
        soak: { status: "failed", error: "ADD 17 failed: no IP" },
        cluster: { status: "skipped", reason: "not among those asked for" },
      },
      dir,
    );
    const md = await readFile(report, "utf8");
    expect(plots).toEqual([join(dir, "docs/bench/cni-latency.svg")]);
    expect(imageLinks(md)).toEqual(["docs/bench/cni-latency.svg"]);
    expect(existsSync(join(dir, "docs/bench/soak-pool.svg"))).toBe(false);
    expect(existsSync(join(dir, "docs/bench/soak-daemon.svg"))).toBe(false);
    expect(existsSync(join(dir, "docs/bench/unrelated.svg"))).toBe(true);

    expect(sectionOf(md, "Soak")).toContain("**Failed:**");
    expect(sectionOf(md, "Soak")).toContain("ADD 17 failed: no IP");
    expect(sectionOf(md, "A real cluster")).toContain("**Skipped:** not among those asked for");
    expect(sectionOf(md, "Simulator throughput")).toContain("**Not run.**");
    expect(sectionOf(md, "CNI ADD and DEL")).toContain(String(f.cni.eniway.addP50));
    expect(sectionOf(md, "CNI ADD and DEL")).toMatch(
      new RegExp(`dual-stack ADD p50 \\| ${f.cni.dual?.eniway.addP50} \\| ${f.cni.dual?.bridge.addP50} \\|`),
    );
  });
});
