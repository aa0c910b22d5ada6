// The bench plots: vega-lite specs compiled to vega and rendered to SVG text in
// Node by a headless vega View (renderer "none": no canvas, no browser).

import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { CniFigures } from "./cni-bench.js";
import { type DatapathFigures, PATHS, pathGroup, pathLabel } from "./datapath-bench.js";
import type { BurstFigures } from "./pool-bench.js";
import type { SoakWindow } from "./soak-bench.js";

export type { TopLevelSpec };

/** The SVG text of a vega-lite spec. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const PANEL = { width: 320, height: 200 } as const;

/** The reference plugin's name in plots and tables. */
export const REFERENCE = "bridge + host-local";

/** (a) ADD and DEL latency as ECDF curves, one panel per operation, eniway against the reference. */
export function latencySpec(samples: CniFigures["samples"]): TopLevelSpec {
  const values = (
    [
      ["eniway", samples.eniway],
      [REFERENCE, samples.bridge],
    ] as const
  ).flatMap(([plugin, s]) => [
    ...s.add.map((ms) => ({ plugin, operation: "ADD", ms })),
    ...s.del.map((ms) => ({ plugin, operation: "DEL", ms })),
  ]);
  return {
    title: "CNI ADD and DEL latency from a warm pool (ECDF)",
    data: { values },
    transform: [
      {
        window: [{ op: "cume_dist", as: "share" }],
        sort: [{ field: "ms" }],
        groupby: ["plugin", "operation"],
      },
    ],
    facet: { column: { field: "operation", type: "nominal", title: null } },
    spec: {
      ...PANEL,
      mark: { type: "line", interpolate: "step-after" },
      encoding: {
        // Log: one slow outlier (a first exec, a busy machine) would squeeze every other step into a corner.
        x: { field: "ms", type: "quantitative", title: "latency (ms, log scale)", scale: { type: "log" } },
        y: {
          field: "share",
          type: "quantitative",
          title: "share of calls at or below",
          axis: { format: "%" },
        },
        color: { field: "plugin", type: "nominal", title: "plugin", sort: ["eniway", REFERENCE] },
      },
    },
    resolve: { scale: { x: "independent" } },
  };
}

/** (b) Pods served over time in the cold burst, a step per allocation, against the cloud's lower bound. */
export function burstSpec(burst: Pick<BurstFigures, "servedAtMs" | "lowerBoundMs">): TopLevelSpec {
  const times = [...burst.servedAtMs].sort((a, b) => a - b);
  const [served, bound] = ["eniway: pods served", "cloud lower bound"];
  const steps = [0, ...times].map((ms, pods) => ({ ms, pods, series: served }));
  const x = { field: "ms", type: "quantitative", title: "time since the burst started (ms)" } as const;
  const color = { field: "series", type: "nominal", title: null, sort: [served, bound] } as const;
  return {
    ...PANEL,
    title: `Cold burst: ${times.length} allocations on an empty pool`,
    layer: [
      {
        data: { values: steps },
        mark: { type: "line", interpolate: "step-after" },
        encoding: { x, y: { field: "pods", type: "quantitative", title: "pods served" }, color },
      },
      {
        data: { values: [{ ms: burst.lowerBoundMs, series: bound }] },
        mark: { type: "rule", strokeDash: [4, 4] },
        encoding: { x, color },
      },
    ],
  };
}

type PoolWindow = Pick<SoakWindow, "cycles" | "idle" | "allocated" | "enis">;

/** (c) The pool's composition at the end of each soak window: idle IPs, allocated IPs, ENIs. */
export function poolSpec(windows: PoolWindow[]): TopLevelSpec {
  const series = [
    ["idle IPs", (w: PoolWindow) => w.idle],
    ["allocated IPs", (w: PoolWindow) => w.allocated],
    ["ENIs", (w: PoolWindow) => w.enis],
  ] as const;
  return {
    ...PANEL,
    title: "Pool composition over the soak",
    data: {
      values: windows.flatMap((w) =>
        series.map(([name, of]) => ({ cycles: w.cycles, series: name, n: of(w) })),
      ),
    },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "cycles", type: "quantitative", title: "ADD/DEL cycles" },
      y: { field: "n", type: "quantitative", title: "count at the window's end" },
      color: { field: "series", type: "nominal", title: null, sort: series.map(([name]) => name) },
    },
  };
}

/** (d) The daemon's resident memory and open file descriptors over the soak, one panel each. */
export function memorySpec(windows: Pick<SoakWindow, "cycles" | "rssMiB" | "fds">[]): TopLevelSpec {
  const panel = (field: "rssMiB" | "fds", title: string) =>
    ({
      ...PANEL,
      height: 150,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "cycles", type: "quantitative", title: "ADD/DEL cycles" },
        y: { field, type: "quantitative", title, scale: { zero: false } },
      },
    }) as const;
  return {
    title: "Daemon over the soak",
    data: { values: windows.map(({ cycles, rssMiB, fds }) => ({ cycles, rssMiB, fds })) },
    vconcat: [panel("rssMiB", "resident memory (MiB)"), panel("fds", "open file descriptors")],
  };
}

/** (e) The datapath: each path's TCP throughput (median bar, a tick per run) and round trip (p50 bar, p99 tick). */
export function datapathSpec(v: Pick<DatapathFigures, "paths" | "shared">): TopLevelSpec {
  const rows = PATHS.map((name) => ({
    path: pathLabel(name, v.shared.kind),
    group: pathGroup(name),
    gbps: v.paths[name].gbps,
    runs: v.paths[name].runsGbps,
    p50: v.paths[name].rttUs.p50,
    p99: v.paths[name].rttUs.p99,
  }));
  const y = {
    field: "path",
    type: "nominal",
    title: null,
    sort: rows.map((r) => r.path),
    axis: { labelLimit: 400 },
  } as const;
  const groups = [...new Set(PATHS.map(pathGroup))];
  const color = {
    field: "group",
    type: "nominal",
    title: "datapath",
    sort: groups,
    legend: { labelLimit: 260 },
  } as const;
  const tick = { type: "tick", color: "black", thickness: 2 } as const;
  return {
    title: "The datapath on a two-node sandbox: one TCP stream and ping, per path",
    data: { values: rows },
    hconcat: [
      {
        width: 240,
        layer: [
          {
            mark: "bar",
            encoding: {
              y,
              x: { field: "gbps", type: "quantitative", title: "TCP Gbit/s (median; ticks: each run)" },
              color,
            },
          },
          {
            transform: [{ flatten: ["runs"] }],
            mark: tick,
            encoding: { y, x: { field: "runs", type: "quantitative" } },
          },
        ],
      },
      {
        width: 240,
        layer: [
          {
            mark: "bar",
            encoding: {
              y: { ...y, axis: null },
              x: {
                field: "p50",
                type: "quantitative",
                title: "request/response µs, echoes back to back (p50; tick: p99)",
              },
              color,
            },
          },
          { mark: tick, encoding: { y: { ...y, axis: null }, x: { field: "p99", type: "quantitative" } } },
        ],
      },
    ],
  };
}
