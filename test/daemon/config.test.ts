// The daemon's configuration file: its keys and defaults (as its schema states
// them; docs/eniway.example.yaml shows every key), and errors that name the
// offending key (and the file).

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { isObject } from "../../lib/json.js";
import { packageRoot } from "../../lib/process.js";
import { keyPaths, SchemaError } from "../../lib/schema.js";
import {
  applyOverrides,
  ConfigError,
  configSchema,
  loadConfig,
  parseConfig,
} from "../../src/daemon/config.js";
import { kubeClientOf } from "../../src/daemon/daemon.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function file(name: string, text: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "eniway-config-test-"));
  dirs.push(d);
  const f = join(d, name);
  await writeFile(f, text);
  return f;
}

/** The example configuration the project documents. */
const EXAMPLE = join(packageRoot(), "docs/eniway.example.yaml");

/** Each section's default, as the schema states it (its JSON Schema `default`). */
const DEFAULTS = Object.fromEntries(
  Object.entries(configSchema.json.properties ?? {}).map(([key, field]) => [key, field.default]),
);

/** Does `value` have the key path (`*` is any key of a map)? */
function has(value: unknown, path: string[]): boolean {
  const [key, ...rest] = path;
  if (key === undefined) return true;
  if (!isObject(value)) return false;
  if (key === "*") return Object.values(value).some((v) => has(v, rest));
  return key in value && has(value[key], rest);
}

/** The SchemaError parseConfig throws for raw, or fails the test. */
function schemaError(raw: unknown): SchemaError {
  try {
    parseConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaError);
    return e as SchemaError;
  }
  throw new Error(`${JSON.stringify(raw)} was accepted`);
}

describe("config", () => {
  it("takes every key's default from the schema, as a fresh copy", () => {
    const c = parseConfig({});
    expect(c).toEqual(DEFAULTS);
    // null (an empty YAML file) is the same as {}.
    expect(parseConfig(null)).toEqual(c);
    // Defaults are fresh objects, not shared between parses.
    c.eni.vSwitchIds.push("vsw-x");
    expect(parseConfig({}).eni.vSwitchIds).toEqual([]);
  });

  it("a partial section keeps the other defaults of that section", () => {
    const c = parseConfig({ pool: { minIdle: 3 }, cloud: { regionId: "cn-beijing" } });
    const defaults = parseConfig({});
    expect(c.pool).toEqual({ ...defaults.pool, minIdle: 3 });
    expect(c.cloud).toEqual({ ...defaults.cloud, regionId: "cn-beijing" });
  });

  it("docs/eniway.example.yaml parses, with every value as written, and shows every key", async () => {
    const text = await readFile(EXAMPLE, "utf8");
    expect(await loadConfig(EXAMPLE)).toMatchObject(parseYaml(text));
    // A key commented out on a line of its own (`# key: value`) is an alternative to those set beside it.
    const shown: unknown = parseYaml(text.replace(/^(\s*)# (?=\w+: )/gm, "$1"));
    expect(keyPaths(configSchema.json).filter((path) => !has(shown, path.split(".")))).toEqual([]);
  });

  it("accepts JSON", async () => {
    const f = await file(
      "eniway.json",
      JSON.stringify({ pool: { minIdle: 4, maxIdle: 10 }, socket: "/tmp/x.sock", http: { listen: "" } }),
    );
    const c = await loadConfig(f);
    expect(c.pool).toMatchObject({ minIdle: 4, maxIdle: 10 });
    expect(c.socket).toBe("/tmp/x.sock");
    expect(c.http.listen).toBe("");
  });

  const bad: [string, unknown, string, RegExp][] = [
    ["an unknown key", { pool: { minIdel: 2 } }, "pool.minIdel", /not a known key/],
    ["an unknown top-level key", { pools: {} }, "pools", /not a known key/],
    ["an ill-typed key", { pool: { minIdle: "two" } }, "pool.minIdle", /number/],
    ["a non-integer count", { pool: { minIdle: 1.5 } }, "pool.minIdle", /integer/],
    ["a negative count", { pool: { maxIdle: -1 } }, "pool.maxIdle", />= 0/],
    ["maxIdle below minIdle", { pool: { minIdle: 5, maxIdle: 4 } }, "pool.maxIdle", /minIdle/],
    ["dual stack in prefix mode", { ipStack: "dual", pool: { mode: "prefix" } }, "ipStack", /pool\.mode ip/],
    ["an unknown IP stack", { ipStack: "ipv6" }, "ipStack", /ipv4|dual/],
    [
      "an accessKeyId without a secret",
      { cloud: { accessKeyId: "AK" } },
      "cloud.accessKeySecret",
      /required/,
    ],
    [
      "a secret without an accessKeyId",
      { cloud: { accessKeySecret: "SK" } },
      "cloud.accessKeyId",
      /required/,
    ],
    ["a relative socket path", { socket: "eniway.sock" }, "socket", /format/],
    ["a bad endpoint", { cloud: { endpoint: "ecs.aliyuncs.com" } }, "cloud.endpoint", /format/],
    [
      "an endpoint with a path",
      { cloud: { endpoint: "https://ecs.aliyuncs.com/x" } },
      "cloud.endpoint",
      /format/,
    ],
    [
      "a security group id not sg-…",
      { eni: { securityGroupIds: ["sg bad"] } },
      "eni.securityGroupIds[0]",
      /format/,
    ],
    [
      "a node name too long",
      { kubernetes: { nodeName: "a".repeat(254) } },
      "kubernetes.nodeName",
      /at most 253/,
    ],
    ["a bad listen address", { http: { listen: "9470" } }, "http.listen", /HOST:PORT/],
    ["a list where a map goes", { eni: { tags: ["a"] } }, "eni.tags", /object/],
    ["a bad item in a list", { eni: { vSwitchIds: ["vsw-a", 7] } }, "eni.vSwitchIds[1]", /string/],
    ["a reserved tag prefix", { eni: { tags: { "acs:x": "y" } } }, "eni.tags.acs:x", /format/],
    ["kubernetes.enabled maybe", { kubernetes: { enabled: "maybe" } }, "kubernetes.enabled", /auto/],
    ["a section that is not a map", { pool: 3 }, "pool", /object/],
  ];
  for (const [name, raw, path, detail] of bad) {
    it(`rejects ${name}, naming ${path}`, () => {
      const e = schemaError(raw);
      expect(e.path).toBe(path);
      expect(e.message.startsWith(`${path}: `)).toBe(true);
      expect(e.message).toMatch(detail);
    });
  }

  it("loadConfig names the file on bad YAML, on a schema error, and when it cannot read it", async () => {
    const yamlFile = await file("bad.yaml", "pool:\n  minIdle: [1\n");
    await expect(loadConfig(yamlFile)).rejects.toThrow(ConfigError);
    await expect(loadConfig(yamlFile)).rejects.toThrow(new RegExp(`${yamlFile}.*not valid YAML`));

    const schemaFile = await file("schema.yaml", "pool:\n  minIdle: two\n");
    const err = await loadConfig(schemaFile).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toContain(schemaFile);
    expect(err?.message).toContain("pool.minIdle");

    const missing = join(tmpdir(), "eniway-no-such-config.yaml");
    await expect(loadConfig(missing)).rejects.toThrow(new RegExp(`${missing}.*ENOENT`));
  });

  it("--set overrides parse their value as YAML and reach nested keys", () => {
    const raw = applyOverrides({ pool: { minIdle: 1 } }, [
      "pool.minIdle=3",
      "eni.vSwitchIds=[vsw-a, vsw-b]",
      'http.listen=""',
    ]);
    const c = parseConfig(raw);
    expect(c.pool.minIdle).toBe(3);
    expect(c.eni.vSwitchIds).toEqual(["vsw-a", "vsw-b"]);
    expect(c.http.listen).toBe("");
    expect(() => applyOverrides({}, ["novalue"])).toThrow(/KEY=VALUE/);
    // A --set of an unknown key is still rejected by name.
    expect(schemaError(applyOverrides({}, ["pool.minIdel=2"])).path).toBe("pool.minIdel");
  });
});

describe("kubernetes.enabled", () => {
  const withKubeconfig = (): Promise<string> =>
    file(
      "kubeconfig",
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]",
        "users: [{name: u, user: {token: secret-token}}]",
        "contexts: [{name: x, context: {cluster: c, user: u}}]",
        "current-context: x",
      ].join("\n"),
    );

  it("auto is off outside a cluster without a kubeconfig, on with one", async () => {
    expect(kubeClientOf(parseConfig({}), {})).toBeNull();
    const file = await withKubeconfig();
    const on = kubeClientOf(parseConfig({ kubernetes: { kubeconfig: file, nodeName: "node-a" } }), {});
    expect(on?.nodeName).toBe("node-a");
    expect(on?.api.server).toBe("https://127.0.0.1:6443");
    expect(kubeClientOf(parseConfig({ kubernetes: { kubeconfig: file, enabled: false } }), {})).toBeNull();
  });

  it("takes the node name from NODE_NAME, and names the key when it is missing", async () => {
    const file = await withKubeconfig();
    const c = parseConfig({ kubernetes: { kubeconfig: file } });
    expect(kubeClientOf(c, { NODE_NAME: "from-env" })?.nodeName).toBe("from-env");
    expect(() => kubeClientOf(c, {})).toThrow(/kubernetes\.nodeName: is required/);
    expect(() => parseConfig({ kubernetes: { nodeName: "Not_A_Node" } })).toThrow(/kubernetes\.nodeName/);
  });

  it("true outside a cluster needs a kubeconfig; a broken one is a config error naming the key", async () => {
    expect(() => kubeClientOf(parseConfig({ kubernetes: { enabled: true, nodeName: "n" } }), {})).toThrow(
      /kubernetes\.kubeconfig: is required/,
    );
    const bad = await file("bad", "{not yaml: [\n  token: secret-token");
    expect(() => kubeClientOf(parseConfig({ kubernetes: { kubeconfig: bad, nodeName: "n" } }), {})).toThrow(
      /kubernetes\.kubeconfig: cannot load/,
    );
    try {
      kubeClientOf(parseConfig({ kubernetes: { kubeconfig: bad, nodeName: "n" } }), {});
    } catch (e) {
      expect((e as Error).message).not.toContain("secret-token");
    }
  });
});
