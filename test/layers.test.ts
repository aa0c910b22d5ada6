// The tree is the architecture (docs/architecture.md): each folder imports
// only from its own layer and the ones below it, and the netlink helper (a
// separate bun executable) stands alone. The node's CNI binary is C
// (cni/forwarder/) and imports nothing. This reads every import of the project's sources and fails on one
// that goes the wrong way.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../lib/process.js";

const ROOT = packageRoot();

/** Lowest first. A file may import from its own layer and those before it. */
const LAYERS: [layer: string, folders: string[]][] = [
  ["lib", ["lib/"]],
  ["cloud", ["cloud/"]],
  ["pool", ["pool/"]],
  ["cni", ["cni/facts.ts", "cni/spec/", "cni/netlink/", "cni/datapath/", "cni/policy/"]],
  ["kubernetes", ["src/kubernetes/"]],
  ["metrics", ["src/metrics/"]],
  ["dashboard", ["src/dashboard/"]],
  ["daemon", ["src/daemon/"]],
  ["image", ["src/image/"]],
  ["sandbox", ["src/sandbox/"]],
  ["cli", ["src/cli/"]],
];

/**
 * The netlink helper's executable (cni/netlink/main.ts, compiled by bun):
 * its own files and these dependency-free ones (a trailing "/" is a
 * folder), nothing else; and nothing imports its entry point.
 */
const PLUGIN = "cni/netlink/";
const PLUGIN_ENTRY = "cni/netlink/main.ts";
const PLUGIN_MAY_USE = ["cni/facts.ts", "lib/net.ts", "lib/json.ts"];
const pluginMayUse = (file: string): boolean =>
  PLUGIN_MAY_USE.some((f) => (f.endsWith("/") ? file.startsWith(f) : file === f));
/** Built-in modules of the runtimes: Node's, and bun's for the netlink helper. */
const builtin = (spec: string): boolean => spec.startsWith("node:") || spec.startsWith("bun:");

type Graph = Map<string, string[]>;

function layerOf(file: string): number {
  return LAYERS.findIndex(([, folders]) =>
    folders.some((f) => (f.endsWith("/") ? file.startsWith(f) : file === f)),
  );
}

/** Every import that breaks a rule, as "from → to: why". */
function violations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, imports] of graph) {
    for (const to of imports) {
      const bad = (why: string): void => {
        out.push(`${from} → ${to}: ${why}`);
      };
      const ours = to.endsWith(".ts"); // relative imports, resolved to repository paths
      if (to.startsWith("test/")) bad("production code never imports a test");
      else if (from.startsWith(PLUGIN)) {
        if (!ours && !builtin(to)) bad("the netlink helper uses no npm package");
        else if (ours && !to.startsWith(PLUGIN) && !pluginMayUse(to))
          bad(`the netlink helper may use only its own files and ${PLUGIN_MAY_USE.join(", ")}`);
      } else if (pluginMayUse(from) && !builtin(to) && !pluginMayUse(to))
        bad(
          "the netlink helper compiles this file: it imports nothing but built-ins and the helper's other files",
        );
      else if (!ours)
        continue; // node: built-ins and npm packages
      else if (to === PLUGIN_ENTRY)
        bad("nothing imports the netlink helper's entry: it is a separate executable");
      else if (
        from.startsWith("cloud/") &&
        !from.startsWith("cloud/simulator/") &&
        to.startsWith("cloud/simulator/")
      )
        bad("the cloud client never depends on the simulator");
      else {
        const a = layerOf(from);
        const b = layerOf(to);
        if (a >= 0 && b > a) bad(`${LAYERS[a]![0]} may not import ${LAYERS[b]![0]}, a layer above it`);
      }
    }
  }
  if (graph.size === 0) out.push("no sources read");
  return out;
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** The project's import graph: relative imports as repository paths (".js" → ".ts"), others as written. */
function readGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of ["lib", "cloud", "pool", "cni", "src"].flatMap(sources)) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const imports = [...text.matchAll(IMPORT)].map((m) => {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (!spec.startsWith(".")) return spec;
      return relative(ROOT, normalize(join(ROOT, dirname(file), spec))).replace(/\.js$/, ".ts");
    });
    graph.set(file, imports);
  }
  return graph;
}

describe("the layers", () => {
  it("no folder imports one above it; the netlink helper stands alone", () => {
    expect(violations(readGraph())).toEqual([]);
  });

  it("every source belongs to a layer", () => {
    const loose = [...readGraph().keys()].filter((f) => layerOf(f) < 0);
    expect(loose).toEqual([]);
  });

  it("reads the imports it checks (the helper's and the daemon's)", () => {
    const g = readGraph();
    expect(g.get("src/daemon/cni-exec.ts")).toContain("cni/spec/spec.ts");
    expect(g.get("cni/netlink/protocol.ts")).toContain("lib/net.ts");
    expect(g.get("cni/netlink/main.ts")).toContain("cni/netlink/helper.ts");
    expect(g.get("cni/netlink/helper.ts")).toContain("bun:ffi");
    expect(g.get("src/daemon/node.ts")).toContain("pool/pool.ts");
    expect(g.get("src/daemon/node.ts")).toContain("cni/datapath/datapath.ts");
  });

  it("catches each kind of wrong import", () => {
    const bad: Graph = new Map([
      ["pool/pool.ts", ["src/daemon/node.ts", "lib/log.ts"]],
      ["cloud/api.ts", ["cloud/simulator/state.ts"]],
      ["lib/log.ts", ["cloud/errors.ts"]],
      ["cni/netlink/main.ts", ["cni/datapath/ip.ts", "lib/log.ts", "yaml", "node:fs", "cni/facts.ts"]],
      ["cni/facts.ts", ["lib/log.ts"]],
      ["cni/netlink/helper.ts", ["bun:ffi", "cni/netlink/rtnl.ts", "cni/datapath/pod.ts"]],
      ["src/daemon/daemon.ts", ["src/cli/main.ts", "cni/netlink/main.ts"]],
      ["src/sandbox/demo.ts", ["test/daemon-harness.ts"]],
    ]);
    expect(violations(bad)).toEqual([
      "pool/pool.ts → src/daemon/node.ts: pool may not import daemon, a layer above it",
      "cloud/api.ts → cloud/simulator/state.ts: the cloud client never depends on the simulator",
      "lib/log.ts → cloud/errors.ts: lib may not import cloud, a layer above it",
      "cni/netlink/main.ts → cni/datapath/ip.ts: the netlink helper may use only its own files and cni/facts.ts, lib/net.ts, lib/json.ts",
      "cni/netlink/main.ts → lib/log.ts: the netlink helper may use only its own files and cni/facts.ts, lib/net.ts, lib/json.ts",
      "cni/netlink/main.ts → yaml: the netlink helper uses no npm package",
      "cni/facts.ts → lib/log.ts: the netlink helper compiles this file: it imports nothing but built-ins and the helper's other files",
      "cni/netlink/helper.ts → cni/datapath/pod.ts: the netlink helper may use only its own files and cni/facts.ts, lib/net.ts, lib/json.ts",
      "src/daemon/daemon.ts → src/cli/main.ts: daemon may not import cli, a layer above it",
      "src/daemon/daemon.ts → cni/netlink/main.ts: nothing imports the netlink helper's entry: it is a separate executable",
      "src/sandbox/demo.ts → test/daemon-harness.ts: production code never imports a test",
    ]);
  });
});
