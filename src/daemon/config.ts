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
  regionId: opt(str(REGION_ID), "", "the region; none: from metadata"),
  endpoint: opt(
    str(API_ENDPOINT),
    "",
    "the ECS API, `http(s)://HOST[:PORT]`; none: `https://ecs.REGION.aliyuncs.com` (the simulator's URL in tests)",
  ),
  vpcEndpoint: opt(
    str(API_ENDPOINT),
    "",
    "the VPC API, the same form; none: `cloud.endpoint` if set, else `https://vpc.REGION.aliyuncs.com`",
  ),
  metadataEndpoint: opt(
    str(HTTP_URL),
    "http://100.100.100.200",
    "the instance metadata service; the simulator: `http://HOST:PORT/meta/INSTANCE`",
  ),
  accessKeyId: opt(
    str({ minLength: 1 }),
    "",
    "a static AccessKey, with `cloud.accessKeySecret` (both or neither)",
  ),
  accessKeySecret: opt(str({ minLength: 1 }), "", "the static AccessKey's secret"),
  credentialsFile: opt(
    absPath,
    "",
    "a JSON file `{accessKeyId, accessKeySecret, securityToken?}`, read again when it changes",
  ),
  ramRole: opt(
    str(ROLE_NAME),
    "",
    "the RAM role whose STS credentials are used when no key is configured (refreshed before they expire); none: the first role the metadata lists",
  ),
  timeoutSeconds: opt(seconds(1, 120), 10, "each API attempt's timeout"),
  rateLimits: opt(
    record(rateLimit, str({ oneOf: ALL_ACTIONS })),
    {},
    '`{ACTION: {qps, burst}}`: a rate limit per API action, over the defaults in "The cloud client"',
  ),
});

const poolSchema = obj({
  mode: opt(
    str({ oneOf: ["ip", "prefix"] }),
    "ip",
    "`ip`: the pool asks for single secondary IPs; `prefix`: for IPv4 prefixes (/28s from the vSwitches' reserved CIDR blocks), 16 pod IPs each, whole ones given back. Pods keep their IPs when it changes",
  ),
  minIdle: opt(
    num({ min: 0, max: 1000, int: true }),
    2,
    "idle IPs kept ready at least (addresses, in prefix mode too)",
  ),
  maxIdle: opt(num({ min: 0, max: 1000, int: true }), 8, "idle IPs kept at most (>= `pool.minIdle`)"),
  cooldownSeconds: opt(seconds(0, 3600), 30, "a released IP is not reused before this (persisted)"),
  maxIpsPerCall: opt(
    num({ min: 1, max: 10, int: true }),
    10,
    "IPs (in prefix mode, prefixes) per AssignPrivateIpAddresses",
  ),
  idleReclaimSeconds: opt(seconds(0, 86_400), 300, "idle IPs above `pool.maxIdle` are given back after this"),
  allocateTimeoutSeconds: opt(
    seconds(0.1, 600),
    30,
    "an allocation on an empty pool waits this long for the refill, then TryAgainLater",
  ),
  leakGraceSeconds: opt(
    seconds(0, 86_400),
    600,
    "a detached ENI with our tags, unknown to the pool, is deleted after this age",
  ),
  resyncSeconds: opt(seconds(1, 3600), 60, "how often the pool is reconciled with the cloud"),
  maxConcurrentAttaches: opt(num({ min: 1, max: 32, int: true }), 5, "ENI attaches in flight at once"),
  attachTimeoutSeconds: opt(seconds(1, 600), 60, "an ENI not attached by then is deleted"),
  vSwitchBlockSeconds: opt(
    seconds(0, 86_400),
    600,
    "a vSwitch that answered IpNotEnough is skipped this long, or (ip mode) until a resync sees free addresses in it",
  ),
  eniLimitBackoffSeconds: opt(
    seconds(0, 3600),
    60,
    "no new ENI this long after EniPerInstanceLimitExceeded (also the cap of the backoff after failed creates)",
  ),
  statefulHoldSeconds: opt(
    seconds(0, 86_400),
    300,
    "a StatefulSet pod's IP is kept this long for the pod that returns under the same name (persisted)",
  ),
});

/** The whole file. A section left out reads as `{}`: each of its keys takes its default. */
export const configSchema = obj({
  cloud: opt(cloudSchema),
  eni: opt(
    obj({
      vSwitchIds: opt(
        arr(str(VSWITCH_ID)),
        [],
        "`vsw-…` ids where new ENIs go, the one with most free IPs first; none: the node's own vSwitch",
      ),
      securityGroupIds: opt(
        arr(str(SECURITY_GROUP_ID)),
        [],
        "`sg-…` ids for new ENIs; none: those of the primary ENI",
      ),
      tags: opt(
        record(str(TAG_VALUE), str(TAG_KEY)),
        {},
        "added to every ENI eniway creates, besides its own (`creator=eniway`, `eniway.io/cluster`, `eniway.io/node`); ECS's rules: a key of 1–128 characters not starting with `aliyun` or `acs:`, a value of at most 128 not starting with `acs:`, neither with `http://` or `https://`",
      ),
    }),
  ),
  pool: opt(poolSchema),
  node: opt(
    obj({
      netns: opt(absPath, "", "the node namespace the datapath manages; none: the daemon's own"),
      instanceId: opt(str(INSTANCE_ID), "", "this node's instance (`i-…`); none: from metadata"),
    }),
  ),
  datapath: opt(
    obj({
      enabled: opt(
        bool,
        true,
        "false: the daemon wires no pod (the pool's API only); NetworkPolicy needs it",
      ),
      mtu: opt(num({ min: 576, max: 9000, int: true }), 1500, "the MTU of the ENIs and the pods' interfaces"),
      repairSeconds: opt(
        seconds(1, 3600),
        10,
        "how often the node namespace is made to match the allocations (drift repair)",
      ),
    }),
  ),
  clusterId: opt(
    str(CLUSTER_ID),
    "default",
    "the `eniway.io/cluster` tag; leaked-ENI cleanup touches only this cluster's ENIs",
  ),
  socket: opt(absPath, DEFAULT_SOCKET, "the API socket the CNI plugin and the CLI use (mode 0600)"),
  stateDir: opt(
    absPath,
    "/var/lib/eniway",
    "the pool's store (`pool.json`, and `pool.lock` so two daemons never share it)",
  ),
  http: opt(
    obj({
      listen: opt(
        oneOf(str(HOST_PORT), str({ oneOf: [""] }), 'HOST:PORT or ""'),
        "127.0.0.1:9470",
        '`/metrics`, `/dashboard`, `/healthz`, `/readyz`; `""` turns it off',
      ),
    }),
  ),
  kubernetes: opt(
    obj({
      enabled: opt(
        oneOf(bool, str({ oneOf: ["auto"] }), "true, false or auto"),
        "auto",
        "`auto`: on in a cluster (a ServiceAccount token) or with a kubeconfig; `true` fails without either",
      ),
      kubeconfig: optNull(
        absPath,
        "a kubeconfig file: its current context, with a token, a tokenFile or a client certificate (no exec or auth-provider plugins); none: in-cluster",
      ),
      nodeName: opt(
        str(NODE_NAME),
        "",
        "this node's Node object, required when Kubernetes is on; none: the environment variable `NODE_NAME`",
      ),
      releaseGraceSeconds: opt(
        seconds(0, 86_400),
        60,
        "an IP whose pod is gone (absent from the watch, then NotFound or another UID on a live GET) is released after this",
      ),
      checkSeconds: opt(
        seconds(1, 3600),
        20,
        "how often allocations are compared with the pods and the Node's condition is updated",
      ),
    }),
  ),
  cni: opt(
    obj({
      confDir: opt(
        absPath,
        "",
        "when set, `10-eniway.conflist` (eniway → portmap → bandwidth) is written there once the daemon is ready",
      ),
      gcMinAgeSeconds: opt(
        seconds(0, 3600),
        10,
        "a CNI GC never releases an attachment younger than this (the runtime lists its attachments before it runs GC)",
      ),
      netnsGoneGraceSeconds: opt(
        seconds(0, 3600),
        30,
        "an IP whose pod's network namespace has been gone this long is released",
      ),
    }),
  ),
  networkPolicy: opt(
    obj({
      enabled: opt(
        bool,
        true,
        "enforce Kubernetes NetworkPolicy (with Kubernetes on and the datapath); false removes eniway's nft table",
      ),
    }),
  ),
  ipStack: opt(
    str({ oneOf: ["ipv4", "dual"] }),
    "ipv4",
    "`dual`: every pod also gets an IPv6 address of the same ENI (AssignIpv6Addresses; the vSwitches need an IPv6 CIDR, `pool.mode` must be `ip`); pods keep what they have when it changes",
  ),
  log: opt(
    obj({ level: opt(str({ oneOf: ["debug", "info", "warn", "error"] }), "info", "the least level logged") }),
  ),
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
  if (c.ipStack === "dual" && c.pool.mode !== "ip")
    throw new SchemaError(
      "ipStack",
      `dual needs pool.mode ip (IPv6 /80 prefixes are not supported), got pool.mode ${c.pool.mode}`,
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
