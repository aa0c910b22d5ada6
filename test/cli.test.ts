// The `eniway` command's flags are strict (node:util parseArgs): an unknown
// flag, a flag without its value and a stray argument each stop the command
// with a message naming them, before it does anything. Every command has a
// --help made from the same table as its parser, and eniway has a --version.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT, packageRoot } from "../lib/process.js";
import { type Command, parseOptions } from "../src/cli/args.js";
import { COMMANDS } from "../src/cli/commands.js";
import { synopsis } from "../src/cli/usage.js";

const eniway = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BUILT.cli, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe("eniway's flags", () => {
  it.each([
    [["status", "--bogus"], /^eniway: status: Unknown option '--bogus'/],
    [["pods", "--json=yes"], /^eniway: pods: Option '--json' does not take an argument/],
    [["daemon", "--config"], /^eniway: daemon: Option '--config <value>' argument missing/],
    [["sim", "--listen", "127.0.0.1:0", "extra"], /^eniway: sim: Unexpected argument 'extra'/],
    [["sandbox", "demo", "--nodes", "3"], /^eniway: sandbox demo: Unknown option '--nodes'/],
    [["sandbox", "up", "--dir"], /^eniway: sandbox up: Option '--dir <value>' argument missing/],
    [["policy", "default/a", "extra"], /^eniway: policy: expected 1 argument\(s\), got 2/],
  ])("eniway %j stops with a message naming what is wrong", (args, message) => {
    const r = eniway(...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
  });

  it("accepts a boolean --json, a --socket PATH and repeated --set", () => {
    const status = eniway("status", "--json", "--socket", "/nonexistent/eniway.sock");
    expect(status.code).toBe(1);
    expect(status.stderr).toContain("cannot reach the daemon at /nonexistent/eniway.sock");
    const daemon = eniway(
      "daemon",
      "--config",
      "/nonexistent.yaml",
      "--set",
      "pool.minIdle=1",
      "--set",
      "a.b=2",
    );
    expect(daemon.code).toBe(1);
    expect(daemon.stderr).toContain("cannot read config /nonexistent.yaml: ENOENT");
  });
});

// Help and the version: stdout, exit 0, nothing on stderr. The help is made
// from each command's flag table; these check it against parseArgs itself.
const VERSION = (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string })
  .version;
const NAMES = COMMANDS.map((c) => c.name);
const byName = (name: string): Command => COMMANDS.find((c) => c.name === name)!;

/** The flags a help's "flags:" lines name: "--dir DIR" → { name: "dir", takesValue: true }. */
function helpFlags(help: string): { name: string; takesValue: boolean }[] {
  const lines = help.slice(help.indexOf("\nflags:\n")).split("\n");
  return lines.flatMap((l) => {
    const m = /^ {2}(?:-\w, )?--([a-z0-9-]+)( [A-Z][^ ]*)? {2}/.exec(l);
    return m ? [{ name: m[1]!, takesValue: m[2] !== undefined }] : [];
  });
}

describe("eniway --help and --version", () => {
  it("lists the commands it has", () => {
    expect(NAMES).toEqual([
      ...["sim", "daemon", "node-init", "image build", "sandbox up", "sandbox down", "sandbox demo"],
      ...["status", "pods", "enis", "mapping", "gc", "policy", "version"],
    ]);
  });

  it.each([["--version"], ["version"]])("eniway %s prints package.json's version", (arg) => {
    expect(eniway(arg)).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: "" });
  });

  it.each([[[]], [["--help"]], [["-h"]], [["help"]]])("eniway %j lists every command", (args) => {
    const r = eniway(...args);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    for (const c of COMMANDS) expect(r.stdout).toContain(`  ${synopsis(c)}\n      ${c.summary}\n`);
    expect(r.stdout).toMatch(/eniway daemon --config FILE/); // what test/image/image.test.ts looks for
  });

  it.each(NAMES)("eniway %s: --help, -h and eniway help COMMAND print its usage with every flag", (name) => {
    const words = name.split(" ");
    const help = eniway(...words, "--help");
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(new RegExp(`^eniway ${name}: .+\n\nusage: eniway ${name}\\b`));
    for (const flag of ["help", ...Object.keys(byName(name).flags)])
      expect(help.stdout).toMatch(new RegExp(`^ {2}(-h, )?--${flag}\\b`, "m"));
    expect(eniway(...words, "-h")).toEqual(help);
    expect(eniway("help", ...words)).toEqual(help);
  });

  it("prints the help even when a required flag or the operand is missing", () => {
    for (const args of [
      ["sandbox", "up", "--help"],
      ["node-init", "-h"],
      ["policy", "--help"],
    ])
      expect(eniway(...args)).toMatchObject({ code: 0, stderr: "" });
  });

  it("eniway sandbox --help lists its three commands", () => {
    const r = eniway("sandbox", "--help");
    expect(r).toMatchObject({ code: 0, stderr: "" });
    for (const name of ["sandbox up", "sandbox down", "sandbox demo"])
      expect(r.stdout).toContain(`  ${synopsis(byName(name))}\n`);
  });

  it.each(NAMES)("eniway %s refuses an unknown flag, naming it and its --help", (name) => {
    const r = eniway(...name.split(" "), "--no-such-flag");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`eniway: ${name}: Unknown option '--no-such-flag'`);
    expect(r.stderr).toContain(`see eniway ${name} --help`);
  });

  it.each([
    [["bogus"], 'unknown command "bogus"\nsee eniway --help'],
    [["sandbox", "bogus"], 'unknown command "sandbox bogus"\nsee eniway sandbox --help'],
    [["sandbox"], "sandbox needs a command: up, down, demo\nsee eniway sandbox --help"],
    [["help", "bogus"], 'unknown command "bogus"'],
    [["sandbox", "down"], "sandbox down: needs --dir DIR\nsee eniway sandbox down --help"],
    [["daemon", "--set", "a=1"], "daemon: needs --config FILE (or --check-config)"],
    [
      ["sandbox", "up", "--dir", "/nonexistent", "--test-images"],
      "sandbox up: --test-images needs --cluster",
    ],
    [["sandbox", "up", "--dir", "/nonexistent", "--dual-stack"], "sandbox up: --dual-stack needs --cluster"],
  ])("eniway %j stops with its message on stderr", (args, message) => {
    const r = eniway(...args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`eniway: ${message}`);
  });

  it.each(NAMES)("eniway %s --help lists exactly the flags its parser accepts", (name) => {
    const c = byName(name);
    const listed = helpFlags(eniway(...name.split(" "), "--help").stdout);
    const options = parseOptions(c.flags);
    const accepts = (args: string[]): boolean => {
      try {
        parseArgs({ args, options, strict: true, allowPositionals: c.operands.length > 0 });
        return true;
      } catch {
        return false;
      }
    };
    expect(listed.map((f) => f.name).sort()).toEqual(Object.keys(options).sort());
    for (const f of listed) {
      // A flag the help shows with a value needs one; one shown without takes none.
      expect(accepts(f.takesValue ? [`--${f.name}`, "x"] : [`--${f.name}`]), f.name).toBe(true);
      expect(accepts(f.takesValue ? [`--${f.name}`] : [`--${f.name}=x`]), f.name).toBe(false);
    }
    expect(accepts(["--not-listed"])).toBe(false);
  });
});

// Each command imports its modules when it runs: the daemon never loads the
// simulator, the sandbox or the image builder, and --version no npm package.
describe("eniway's lazy imports", () => {
  let dir = "";
  let config = "";
  let runs = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "eniway-loads-"));
    // A module hook (run in its own thread) that appends each URL loaded to the file $LOADED_LIST.
    writeFileSync(
      join(dir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  appendFileSync(process.env.LOADED_LIST, url + "\\n");
  return next(url, context);
}\n`,
    );
    writeFileSync(
      join(dir, "register.mjs"),
      'import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n',
    );
    // Valid, so `eniway daemon` loads the daemon; its start then stops at once: Kubernetes on, no kubeconfig.
    config = join(dir, "config.yaml");
    writeFileSync(config, "kubernetes:\n  enabled: true\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The files of the package and the npm packages that `eniway ARGS` loads, as paths under dist/ or node_modules/. */
  const loaded = (...args: string[]): string[] => {
    const list = join(dir, `loaded-${++runs}.txt`);
    spawnSync(process.execPath, ["--import", join(dir, "register.mjs"), BUILT.cli, ...args], {
      env: { ...process.env, KUBERNETES_SERVICE_HOST: "", LOADED_LIST: list },
      timeout: 20_000,
    });
    const root = `file://${join(packageRoot(), "dist")}/`;
    return readFileSync(list, "utf8")
      .split("\n")
      .filter((u) => u.startsWith(root) || u.includes("/node_modules/"))
      .map((u) => (u.startsWith(root) ? u.slice(root.length) : u.slice(u.indexOf("/node_modules/") + 1)));
  };

  it("eniway daemon loads the daemon and neither the simulator, the sandbox, the image builder nor a test", () => {
    const files = loaded("daemon", "--config", config);
    expect(files).toContain("src/daemon/daemon.js");
    expect(files.filter((f) => /^(cloud\/simulator|src\/sandbox|src\/image|test)\//.test(f))).toEqual([]);
  });

  it("eniway daemon --check-config loads the configuration's schema, not the daemon or the Kubernetes client", () => {
    const files = loaded("daemon", "--check-config", config);
    expect(files).toContain("src/daemon/config.js");
    expect(files.filter((f) => f === "src/daemon/daemon.js" || f.includes("@kubernetes/"))).toEqual([]);
  });

  it("eniway --version loads only the CLI's own small modules", () => {
    const files = loaded("--version");
    expect(files).toContain("src/cli/version.js");
    expect(files.filter((f) => !/^(src\/cli|lib|cni)\//.test(f))).toEqual([]);
    expect(files.filter((f) => /^src\/cli\/(daemon|sim|sandbox|image|ctl|node-init)\.js$/.test(f))).toEqual(
      [],
    );
  });
});
