// `npm run bench`: figures, printed as a table and as JSON lines.

import { BUILT } from "../../lib/process.js";
import { clusterBench } from "./cluster-bench.js";
import { cniBench } from "./cni-bench.js";
import { kubeBench } from "./kube-bench.js";
import { coldBurst, scrapeWithPods, warmAllocate } from "./pool-bench.js";
import { simThroughput } from "./sim-throughput.js";
import { soakBench } from "./soak-bench.js";

const cli = BUILT.cli;

async function main(): Promise<void> {
  console.log(
    "# simulator throughput through pop-core (simulator pinned to one core, 16 concurrent callers)",
  );
  const figures = await simThroughput(cli);
  for (const f of figures) {
    console.log(
      `${f.action.padEnd(28)} ${String(f.perSecond).padStart(6)} calls/s  (${f.calls} calls in ${f.seconds} s, ${f.errors} errors; target >= 500)`,
    );
  }
  console.log(JSON.stringify({ bench: "sim-throughput", figures }));

  console.log("\n# daemon allocate from a warm pool (sequential allocate+release over the unix socket)");
  const warm = await warmAllocate();
  console.log(
    `daemon-side p50 ${warm.daemonP50Ms} ms, p99 ${warm.daemonP99Ms} ms; socket round trip p50 ${warm.roundTripP50Ms.toFixed(2)} ms, p99 ${warm.roundTripP99Ms.toFixed(2)} ms (n=${warm.n})`,
  );
  console.log(JSON.stringify({ bench: "warm-allocate", ...warm }));

  console.log(
    "\n# burst of 60 allocations on a cold pool (Attach 1.5 s, other calls 100-300 ms; 8 ENIs x 30 IPs)",
  );
  const burst = await coldBurst();
  console.log(
    `all served after ${burst.allServedMs} ms (first ${burst.firstMs} ms, median ${burst.p50Ms} ms); lower bound ${burst.lowerBoundMs} ms; ratio ${burst.ratio}x`,
  );
  console.log(`cloud calls: ${JSON.stringify(burst.cloudCalls)}; ${burst.callsPerIp} calls per allocated IP`);
  console.log(JSON.stringify({ bench: "cold-burst", ...burst }));

  console.log(
    "\n# CNI ADD/DEL from a warm pool: eniway plugin vs reference bridge + host-local (same run, ms)",
  );
  const c = await cniBench();
  console.log(`            ADD p50  ADD p90  DEL p50  DEL p90  VERSION p50`);
  for (const [name, v] of [
    ["eniway", c.eniway],
    ["bridge", c.bridge],
  ] as const)
    console.log(
      `${name.padEnd(10)} ${String(v.addP50).padStart(8)} ${String(v.addP90).padStart(8)} ${String(v.delP50).padStart(8)} ${String(v.delP90).padStart(8)} ${String(v.versionP50).padStart(12)}`,
    );
  console.log(
    `ratio eniway/bridge: ADD ${c.ratio.add}x (target <= 1.25), DEL ${c.ratio.del}x (target <= 1.0)`,
  );
  console.log(
    `daemon share of an ADD (p50): allocation ${c.daemon.allocateP50} ms, kernel work ${c.daemon.kernelP50} ms`,
  );
  console.log(JSON.stringify({ bench: "cni", ...c }));

  console.log("\n# /metrics and /dashboard of a daemon with 200 allocated IPs (7 ENIs x 30 IPs)");
  const sc = await scrapeWithPods();
  console.log(
    `/metrics p50 ${sc.metricsP50Ms} ms (${sc.metricsBytes} bytes); /dashboard/data p50 ${sc.dashboardDataP50Ms} ms (${sc.dashboardDataBytes} bytes); page weight ${sc.pageBytes} bytes`,
  );
  console.log(JSON.stringify({ bench: "scrape", ...sc }));

  console.log(
    "\n# the Kubernetes side against a real kube-apiserver (100 pods on one node; kubernetes.checkSeconds 20)",
  );
  const kb = await kubeBench();
  console.log(
    `steady state: ${kb.requestsPerMinute} API requests/minute over ${kb.windowSeconds} s (${JSON.stringify(kb.requestsInWindow)})`,
  );
  console.log(
    `pod deleted without DEL → IP released: ${kb.deletionToReleaseMs.min}–${kb.deletionToReleaseMs.max} ms for ${kb.deletionToReleaseMs.n} pods (grace ${kb.releaseGraceSeconds} s + at most one check of ${kb.checkSeconds} s)`,
  );
  console.log(JSON.stringify({ bench: "kubernetes", ...kb }));

  console.log("\n# soak: 5000 ADD/DEL cycles through the plugin against one daemon (windows of 250)");
  const soak = await soakBench();
  console.log("cycles  ADD p50  ADD p99  RSS MiB  fds  store bytes  idle  ENIs");
  for (const w of soak.windows)
    console.log(
      `${String(w.cycles).padStart(6)} ${String(w.addP50Ms).padStart(8)} ${String(w.addP99Ms).padStart(8)} ${String(w.rssMiB).padStart(8)} ${String(w.fds).padStart(4)} ${String(w.storeBytes).padStart(12)} ${String(w.idle).padStart(5)} ${String(w.enis).padStart(5)}`,
    );
  console.log(
    `after warm-up: RSS ${soak.rssGrowthMiB >= 0 ? "+" : ""}${soak.rssGrowthMiB} MiB (target <= 10), fds ${soak.fdGrowth >= 0 ? "+" : ""}${soak.fdGrowth}, store ${soak.storeGrowthBytes >= 0 ? "+" : ""}${soak.storeGrowthBytes} bytes, ADD p99 last/first ${soak.p99Trend}x`,
  );
  console.log(JSON.stringify({ bench: "soak", ...soak }));

  console.log(
    "\n# a real cluster (sandbox up --cluster, 2 nodes): helm install, Deployments, eniway vs bridge + host-local",
  );
  const cl = await clusterBench();
  console.log(`helm install → every DaemonSet pod and node Ready: ${cl.installToReadyMs} ms`);
  const d = cl.deploymentToRunningMs;
  console.log(
    `Deployment of ${d.pods} pods → all Running: eniway ${d.eniway} ms, bridge ${d.bridge} ms, ratio eniway/bridge ${d.ratio}x`,
  );
  console.log(`daemon RSS with ${cl.daemonRssMiB.pods} pods on its node: ${cl.daemonRssMiB.rss} MiB`);
  console.log(JSON.stringify({ bench: "cluster", ...cl }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
