// The daemon's configuration file (YAML; JSON is YAML too). Every key has a
// default; an unknown or ill-typed key stops the daemon with its path. The
// schema's JSON Schema is the Helm chart's for `config` (chart-schema.ts).

import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { ALL_ACTIONS } from "../../cloud/types.js";
import { DEFAULT_SOCKET } from "../../cni/facts.js";
import {
  ABS_PATH,
  API_ENDPOINT,
  CLUSTER_ID,
  HOST_PORT,
  HTTP_URL,
  INSTANCE_ID,
  NODE_NAME,
  REGION_ID,
  ROLE_NAME,
  SECURITY_GROUP_ID,
  TAG_KEY,
  TAG_VALUE,
  VSWITCH_ID,
} from "../../lib/ids.js";
import { arr, bool, num, obj, oneOf, opt, optNull, record, SchemaError, str } from "../../lib/schema.js";

const seconds = (min: number, max: number): ReturnType<typeof num> => num({ min, max });
const absPath = str(ABS_PATH);

const rateLimit = obj({
  qps: num({ min: 0.01, max: 10_000 }),
  burst: num({ min: 1, max: 100_000, int: true }),
});

const cloudSchema = obj({
  regionId: opt(str(REGION_ID), ""),
  endpoint: opt(str(API_ENDPOINT), ""),
  vpcEndpoint: opt(str(API_ENDPOINT), ""),
  metadataEndpoint: opt(str(HTTP_URL), "http://100.100.100.200"),
  accessKeyId: opt(str({ minLength: 1 }), ""),
  accessKeySecret: opt(str({ minLength: 1 }), ""),
  credentialsFile: opt(absPath, ""),
  ramRole: opt(str(ROLE_NAME), ""),
  timeoutSeconds: opt(seconds(1, 120), 10),
  rateLimits: opt(record(rateLimit, str({ oneOf: ALL_ACTIONS })), {}),
});

const poolSchema = obj({
  minIdle: opt(num({ min: 0, max: 1000, int: true }), 2),
  maxIdle: opt(num({ min: 0, max: 1000, int: true }), 8),
  cooldownSeconds: opt(seconds(0, 3600), 30),
  maxIpsPerCall: opt(num({ min: 1, max: 10, int: true }), 10),
  idleReclaimSeconds: opt(seconds(0, 86_400), 300),
  allocateTimeoutSeconds: opt(seconds(0.1, 600), 30),
  leakGraceSeconds: opt(seconds(0, 86_400), 600),
  resyncSeconds: opt(seconds(1, 3600), 60),
  maxConcurrentAttaches: opt(num({ min: 1, max: 32, int: true }), 5),
  attachTimeoutSeconds: opt(seconds(1, 600), 60),
  vSwitchBlockSeconds: opt(seconds(0, 86_400), 600),
  eniLimitBackoffSeconds: opt(seconds(0, 3600), 60),
  statefulHoldSeconds: opt(seconds(0, 86_400), 300),
});

/** The whole file. A section left out reads as `{}`: each of its keys takes its default. */
export const configSchema = obj({
  cloud: opt(cloudSchema),
  eni: opt(
    obj({
      vSwitchIds: opt(arr(str(VSWITCH_ID)), []),
      securityGroupIds: opt(arr(str(SECURITY_GROUP_ID)), []),
      tags: opt(record(str(TAG_VALUE), str(TAG_KEY)), {}),
    }),
  ),
  pool: opt(poolSchema),
  node: opt(obj({ netns: opt(absPath, ""), instanceId: opt(str(INSTANCE_ID), "") })),
  datapath: opt(
    obj({
      enabled: opt(bool, true),
      mtu: opt(num({ min: 576, max: 9000, int: true }), 1500),
      repairSeconds: opt(seconds(1, 3600), 10),
    }),
  ),
  clusterId: opt(str(CLUSTER_ID), "default"),
  socket: opt(absPath, DEFAULT_SOCKET),
  stateDir: opt(absPath, "/var/lib/eniway"),
  http: opt(
    obj({ listen: opt(oneOf(str(HOST_PORT), str({ oneOf: [""] }), 'HOST:PORT or ""'), "127.0.0.1:9470") }),
  ),
  kubernetes: opt(
    obj({
      enabled: opt(oneOf(bool, str({ oneOf: ["auto"] }), "true, false or auto"), "auto"),
      kubeconfig: optNull(absPath),
      nodeName: opt(str(NODE_NAME), ""),
      releaseGraceSeconds: opt(seconds(0, 86_400), 60),
      checkSeconds: opt(seconds(1, 3600), 20),
    }),
  ),
  cni: opt(
    obj({
      confDir: opt(absPath, ""),
      gcMinAgeSeconds: opt(seconds(0, 3600), 10),
      netnsGoneGraceSeconds: opt(seconds(0, 3600), 30),
    }),
  ),
  networkPolicy: opt(obj({ enabled: opt(bool, true) })),
  log: opt(obj({ level: opt(str({ oneOf: ["debug", "info", "warn", "error"] }), "info") })),
});

export type Config = ReturnType<typeof configSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function parseConfig(raw: unknown): Config {
  const c = configSchema(raw ?? {}, "");
  if (c.pool.maxIdle < c.pool.minIdle)
    throw new SchemaError(
      "pool.maxIdle",
      `must be >= pool.minIdle (${c.pool.minIdle}), got ${c.pool.maxIdle}`,
    );
  if (Boolean(c.cloud.accessKeyId) !== Boolean(c.cloud.accessKeySecret))
    throw new SchemaError(
      c.cloud.accessKeyId ? "cloud.accessKeySecret" : "cloud.accessKeyId",
      "is required when the other one is set",
    );
  if (c.cloud.credentialsFile && c.cloud.accessKeyId)
    throw new SchemaError("cloud.credentialsFile", "cannot be combined with cloud.accessKeyId");
  return c;
}

/** Read, apply `--set` overrides, then validate: an override can fix what the file gets wrong. */
export async function loadConfig(file: string, sets: string[] = []): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config ${file} is not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (sets.length > 0) {
    if (raw === null || raw === undefined) raw = {};
    if (typeof raw !== "object" || Array.isArray(raw))
      throw new ConfigError(`config ${file}: (root): must be a mapping`);
    raw = applyOverrides(raw as Record<string, unknown>, sets);
  }
  try {
    return parseConfig(raw);
  } catch (e) {
    if (e instanceof SchemaError)
      throw new ConfigError(`config ${file}${sets.length ? " with --set" : ""}: ${e.message}`);
    throw e;
  }
}

/** Apply `--set a.b=VALUE` overrides (VALUE parsed as YAML) to a raw config object. */
export function applyOverrides(raw: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new ConfigError(`--set needs KEY=VALUE, got ${JSON.stringify(s)}`);
    const path = s.slice(0, eq).split(".");
    let node: Record<string, unknown> = raw;
    for (const k of path.slice(0, -1)) {
      const next = node[k];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = parseYaml(s.slice(eq + 1));
  }
  return raw;
}
