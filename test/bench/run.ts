// `npm run bench`: figures, printed as a table and as JSON lines, then written
// to BENCHMARKS.md with plots in docs/bench/. `npm run bench -- cni soak` runs
// only the benches named and prints them; BENCHMARKS.md and the plots are the
// whole run's and stay as they are. A bench that fails is
// reported and the others still run; the exit code is 1 if any failed.

import { BUILT, packageRoot } from "../../lib/process.js";
import { clusterBench } from "./cluster-bench.js";
import { cniBench } from "./cni-bench.js";
import { containerdBench } from "./containerd-bench.js";
import { datapathBench, PATHS, pathLabel } from "./datapath-bench.js";
import { kubeBench } from "./kube-bench.js";
import { policyBench } from "./policy-bench.js";
import { coldBurst, scrapeWithPods, warmAllocate } from "./pool-bench.js";
import {
  BENCH_NAMES,
  BENCHES,
  type BenchFigures,
  type BenchName,
  type Figures,
  type Outcome,
  signed,
  writeReport,
} from "./report.js";
import { simThroughput } from "./sim-throughput.js";
import { soakBench } from "./soak-bench.js";

interface Bench<K extends BenchName> {
  name: K;
  run: () => Promise<BenchFigures[K]>;
  /** Prints the figures for a person; a JSON line of them follows. */
  print: (v: BenchFigures[K]) => void;
  /** What the JSON line carries, when not all of the figures (raw samples stay out of it). */
  json?: (v: BenchFigures[K]) => object;
}

/** Runs one bench into `figures`: true if it ran, false if it failed. */
type Runner = { name: BenchName; go: (figures: Figures) => Promise<boolean> };

function bench<K extends BenchName>(b: Bench<K>): Runner {
  return {
    name: b.name,
    go: async (figures) => {
      try {
        const v = await b.run();
        // Figures is keyed by every bench; this one's key and figures agree through K.
        (figures as { [P in K]?: Outcome<BenchFigures[P]> })[b.name] = { status: "ok", value: v };
        b.print(v);
        console.log(JSON.stringify({ bench: b.name, ...(b.json ? b.json(v) : v) }));
        return true;
      } catch (e) {
        console.error(`${b.name} failed:`, e);
        figures[b.name] = { status: "failed", error: e instanceof Error ? e.message : String(e) };
        return false;
      }
    },
  };
}

const pad = (x: number | string, n: number): string => String(x).padStart(n);

const benches: Runner[] = [
  bench({
    name: "sim-throughput",
    run: () => simThroughput(BUILT.cli),
    print: (figures) => {
      for (const f of figures)
        console.log(
          `${f.action.padEnd(28)} ${pad(f.perSecond, 6)} calls/s  (${f.calls} calls in ${f.seconds} s, ${f.errors} errors; target >= 500)`,
        );
    },
    json: (figures) => ({ figures }),
  }),
  bench({
    name: "warm-allocate",
    run: () => warmAllocate(),
    print: (w) =>
      console.log(
        `daemon-side p50 ${w.daemonP50Ms} ms, p99 ${w.daemonP99Ms} ms; socket round trip p50 ${w.roundTripP50Ms.toFixed(2)} ms, p99 ${w.roundTripP99Ms.toFixed(2)} ms (n=${w.n})`,
      ),
  }),
  bench({
    name: "cold-burst",
    run: () => coldBurst(),
    print: (b) => {
      console.log(
        `all served after ${b.allServedMs} ms (first ${b.firstMs} ms, median ${b.p50Ms} ms); lower bound ${b.lowerBoundMs} ms; ratio ${b.ratio}x`,
      );
      console.log(`cloud calls: ${JSON.stringify(b.cloudCalls)}; ${b.callsPerIp} calls per allocated IP`);
      if (b.prefix)
        console.log(
          `prefix mode: all served after ${b.prefix.allServedMs} ms (first ${b.prefix.firstMs} ms, median ${b.prefix.p50Ms} ms; ratio ${b.prefix.ratio}x); cloud calls: ${JSON.stringify(b.prefix.cloudCalls)}; ${b.prefix.callsPerIp} calls per allocated IP`,
        );
    },
    json: ({ servedAtMs: _, ...rest }) => rest,
  }),
  bench({
    name: "cni",
    run: () => cniBench(),
    print: (c) => {
      console.log(`            ADD p50  ADD p90  DEL p50  DEL p90  VERSION p50`);
      for (const [name, v] of [
        ["eniway", c.eniway],
        ["bridge", c.bridge],
      ] as const)
        console.log(
          `${name.padEnd(10)} ${pad(v.addP50, 8)} ${pad(v.addP90, 8)} ${pad(v.delP50, 8)} ${pad(v.delP90, 8)} ${pad(v.versionP50, 12)}`,
        );
      console.log(
        `ratio eniway/bridge: ADD ${c.ratio.add}x (target <= 1.0), DEL ${c.ratio.del}x (target <= 0.8), VERSION ${c.ratio.version}x (target <= 1.2); binary ${c.binaryMB.eniway} MB (target <= 5), bridge ${c.binaryMB.bridge} MB`,
      );
      console.log(
        `daemon share of an ADD (p50): allocation ${c.daemon.allocateP50} ms, kernel work ${c.daemon.kernelP50} ms`,
      );
      if (c.dual)
        console.log(
          `dual stack (n=${c.dual.n}): ADD p50 eniway ${c.dual.eniway.addP50} ms, bridge ${c.dual.bridge.addP50} ms: ${c.dual.ratio.add}x; DEL p50 ${c.dual.eniway.delP50} vs ${c.dual.bridge.delP50} ms: ${c.dual.ratio.del}x; eniway dual/IPv4 ADD ${c.dual.ratio.addVsIpv4}x`,
        );
    },
    json: ({ samples: _, ...rest }) => rest,
  }),
  bench({
    name: "containerd",
    run: () => containerdBench(),
    print: (c) =>
      console.log(
        `RunPodSandbox p50 eniway ${c.eniway.runP50} ms, bridge ${c.bridge.runP50} ms: ${c.ratio.run}x (target <= 1.0); StopPodSandbox ${c.ratio.stop}x, RemovePodSandbox ${c.ratio.remove}x`,
      ),
  }),
  bench({
    name: "scrape",
    run: () => scrapeWithPods(),
    print: (s) =>
      console.log(
        `/metrics p50 ${s.metricsP50Ms} ms (${s.metricsBytes} bytes); /dashboard/data p50 ${s.dashboardDataP50Ms} ms (${s.dashboardDataBytes} bytes); page weight ${s.pageBytes} bytes`,
      ),
  }),
  bench({
    name: "kubernetes",
    run: () => kubeBench(),
    print: (k) => {
      console.log(
        `steady state: ${k.requestsPerMinute} API requests/minute over ${k.windowSeconds} s (${JSON.stringify(k.requestsInWindow)})`,
      );
      console.log(
        `pod deleted without DEL → IP released: ${k.deletionToReleaseMs.min}–${k.deletionToReleaseMs.max} ms for ${k.deletionToReleaseMs.n} pods (grace ${k.releaseGraceSeconds} s + at most one check of ${k.checkSeconds} s)`,
      );
    },
  }),
  bench({
    name: "soak",
    run: () => soakBench(),
    print: (s) => {
      console.log("cycles  ADD p50  ADD p99  RSS MiB  fds  store bytes  idle  ENIs");
      for (const w of s.windows)
        console.log(
          `${pad(w.cycles, 6)} ${pad(w.addP50Ms, 8)} ${pad(w.addP99Ms, 8)} ${pad(w.rssMiB, 8)} ${pad(w.fds, 4)} ${pad(w.storeBytes, 12)} ${pad(w.idle, 5)} ${pad(w.enis, 5)}`,
        );
      console.log(
        `${s.live} pods live; after warm-up: RSS ${signed(s.rssGrowthMiB)} MiB (target <= 10), at most ${s.rssMaxMiB} MiB (target <= 100), fds ${signed(s.fdGrowth)}, store ${signed(s.storeGrowthBytes)} bytes, ADD p99 last/first ${s.p99Trend}x`,
      );
    },
  }),
  bench({
    name: "cluster",
    run: () => clusterBench(),
    print: (c) => {
      const d = c.deploymentToRunningMs;
      console.log(`helm install → every DaemonSet pod and node Ready: ${c.installToReadyMs} ms`);
      console.log(
        `Deployment of ${d.pods} pods → all Running: eniway ${d.eniway} ms, bridge ${d.bridge} ms, ratio eniway/bridge ${d.ratio}x`,
      );
      console.log(`daemon RSS with ${c.daemonRssMiB.pods} pods on its node: ${c.daemonRssMiB.rss} MiB`);
      console.log(`sandbox stop with ${c.stopMs.pods} pods running: ${c.stopMs.ms} ms (target <= 10000)`);
    },
  }),
  bench({
    name: "policy",
    run: () => policyBench(),
    print: (p) => {
      console.log(
        `${p.pods} pods, ${p.policies} policies, ${p.rules} nft rules: change → enforced p50 ${p.programmingMs.p50} ms, p99 ${p.programmingMs.p99} ms (target p99 <= 1000)`,
      );
      console.log(
        `ADD p50 ${p.addP50Ms.withPolicies} ms with policies, ${p.addP50Ms.without} ms without: +${p.addP50Ms.extra} ms (target <= 1)`,
      );
      console.log(
        `the same ADDs inside the daemon: mean ${p.daemonAddMeanMs.withPolicies} ms with policies, ${p.daemonAddMeanMs.without} ms without: +${p.daemonAddMeanMs.extra} ms (target <= 1)`,
      );
      console.log(
        `TCP ${p.throughputGbps.withPolicies} Gbit/s with policies, ${p.throughputGbps.without} without: ${p.throughputGbps.ratio}x (target >= 0.95)`,
      );
      console.log(
        `a pod object on the watch: ${p.podObjectBytes} bytes, sent to every node's daemon on each change`,
      );
      console.log(`the daemon's resident memory with every pod and policy cached: ${p.daemonRssMiB} MiB`);
    },
  }),
  bench({
    name: "datapath",
    run: () => datapathBench(),
    print: (d) => {
      const kind = d.shared.kind;
      console.log(
        `${"path".padEnd(44)} veth fwd  Gbit/s  (runs)              retrans (spurious)  CPU% snd/rcv  ms/GB  RR p50/p99/mean µs  paced p50/p99`,
      );
      for (const n of PATHS) {
        const p = d.paths[n];
        console.log(
          `${pathLabel(n, kind).padEnd(44)} ${pad(p.vethPairs, 4)} ${pad(p.forwards, 3)} ${pad(p.gbps, 7)}  (${p.runsGbps.join(", ")})`.padEnd(
            90,
          ) +
            `${pad(p.retransmits, 7)} (${p.spurious})`.padEnd(20) +
            `${p.cpu.senderPct}/${p.cpu.receiverPct}`.padEnd(14) +
            `${p.cpu.msPerGB}`.padEnd(7) +
            `${p.rttUs.p50}/${p.rttUs.p99}/${p.rttUs.mean}`.padEnd(20) +
            `${p.pacedRttUs.p50}/${p.pacedRttUs.p99} (${p.rttUs.lost + p.pacedRttUs.lost} lost)`,
        );
      }
      console.log(
        `ratio pod/underlay ${d.ratio.podToUnderlay}x (target >= 0.95), pod/bridge ${d.ratio.podToBridge}x; chain 4 pairs/2 pairs ${d.ratio.chain4ToChain2}x; the two extra hops add ${d.extraRttUs.pod} µs to a request/response (chains: ${d.extraRttUs.chains} µs)`,
      );
      console.log(
        `veth (eniway) ${d.paths.pod.gbps} Gbit/s, ${kind} ${d.paths.shared.gbps} Gbit/s (${d.ratio.sharedToUnderlay}x the underlay, ${d.ratio.sharedToPod}x veth), underlay ${d.paths.underlay.gbps} Gbit/s`,
      );
      console.log(`shared device: ${d.shared.note}`);
      console.log(
        `iperf3: ${d.affinity}; ${d.runs} rounds of ${d.seconds} s, ${d.echoes.backToBack} echoes back to back and ${d.echoes.paced} paced per path`,
      );
      const m = d.mtu;
      console.log(
        `MTU: daemon ${m.daemon ?? "not in the result"}, pod eth0 ${m.podEth0}, host veth ${m.hostVeth}, ENI ${m.eni}, node eth0 ${m.nodePrimary}, VPC router ${m.vpcRouter}, ${kind} ${m.shared}, bridge pod ${m.bridgePod}`,
      );
      console.log(
        `DF ping pod → pod: ${m.fits.size} bytes ${m.fits.replies}/${m.fits.sent} answered, ${m.tooBig.size} bytes ${m.tooBig.replies}/${m.tooBig.sent} (${m.tooBig.said}); TCP MSS ${m.tcpMss}; IP fragments ${m.fragments} in ${m.namespaces} namespaces`,
      );
    },
  }),
];

async function main(): Promise<number> {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !(BENCH_NAMES as string[]).includes(n));
  if (unknown.length) {
    console.error(`unknown bench ${unknown.join(", ")}; the benches: ${BENCH_NAMES.join(", ")}`);
    return 2;
  }
  const figures: Figures = {};
  const failed: BenchName[] = [];
  let ran = 0;
  for (const b of benches) {
    if (only.length && !only.includes(b.name)) continue;
    console.log(`${ran ? "\n" : ""}# ${BENCHES[b.name].title}`);
    ran += 1;
    if (!(await b.go(figures))) failed.push(b.name);
  }
  if (only.length) console.log("\nBENCHMARKS.md is left as it is: it holds a whole run's figures");
  else {
    const { report, plots } = await writeReport(figures, packageRoot());
    console.log(`\nwrote ${report} and ${plots.length} plots`);
  }
  if (failed.length) console.error(`failed: ${failed.join(", ")}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
