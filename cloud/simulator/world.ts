// The simulator's world file: the VPC, vSwitches, instance types, instances,
// credentials and the knobs (latency, throttling, faults, datapath).
// A malformed file fails with a SchemaError that names the key.

import { readFile } from "node:fs/promises";
import { cidrContains, cidrsOverlap, NETNS_NAME, parseCidr } from "../../lib/net.js";
import { arr, bool, num, obj, oneOf, opt, optNull, record, SchemaError, str } from "../../lib/schema.js";
import type { CloudCode } from "../codes.js";
import { isSimAction, SIM_ACTIONS } from "../types.js";
import { formatNet, type Net, netsOverlap, netWithin, parseNet } from "./addr.js";

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const id = str({ pattern: ID });

const cidr = str({ pattern: /^\d+\.\d+\.\d+\.\d+\/\d+$/ });
/** An IPv6 CIDR, or "" for none. */
const ipv6Cidr = opt(str({ pattern: /^([0-9a-fA-F:]{2,39}\/\d{1,3})?$/ }), "");
const actionOrStar = str({ oneOf: ["*", ...SIM_ACTIONS] });
const latency = oneOf(
  num({ min: 0, max: 600_000 }),
  arr(num({ min: 0, max: 600_000 }), { min: 2, max: 2 }),
  "a number of ms or [min, max]",
);

const actionFault = obj({
  code: opt(str({ minLength: 1 }), "InternalError" satisfies CloudCode),
  rate: opt(num({ min: 0, max: 1 }), 1),
  count: opt(num({ min: 0, int: true }), 0), // 0: unlimited
  latencyMs: opt(num({ min: 0, max: 600_000 }), 0),
  afterEffect: opt(bool, false), // apply the action, then fail: a lost response
});
export type ActionFault = ReturnType<typeof actionFault>;

export const faultsSchema = obj({
  errorRate: opt(num({ min: 0, max: 1 }), 0),
  errorCodes: opt(arr(str({ minLength: 1 }), { min: 1 }), [
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
  ] satisfies CloudCode[]),
  latencyMs: opt(num({ min: 0, max: 600_000 }), 0),
  actions: opt(record(actionFault, actionOrStar), {}),
});
export type Faults = ReturnType<typeof faultsSchema>;

export const throttleSchema = record(
  obj({ qps: num({ min: 0.001, max: 100_000 }), burst: num({ min: 1, max: 1_000_000, int: true }) }),
  actionOrStar,
);
export type Throttle = ReturnType<typeof throttleSchema>;

export const latencySchema = record(latency, actionOrStar);
export type LatencyMs = ReturnType<typeof latencySchema>;

const worldSchema = obj({
  regionId: str({ pattern: /^[a-z]{2}(-[a-z0-9]+)+$/ }),
  credentials: arr(obj({ accessKeyId: id, accessKeySecret: str({ minLength: 1 }) }), { min: 1 }),
  vpc: obj({ vpcId: id, cidr, ipv6Cidr }),
  vSwitches: arr(
    obj({
      vSwitchId: id,
      zoneId: id,
      cidr,
      ipv6Cidr,
      /** CIDR blocks reserved for prefixes at the start (Assigned), IPv4 or IPv6. */
      reservations: opt(arr(str({ pattern: /^[0-9a-fA-F.:]{2,39}\/\d{1,3}$/ }), { max: 20 }), []),
    }),
    { min: 1 },
  ),
  securityGroups: arr(id, { min: 1 }),
  instanceTypes: arr(
    obj({
      instanceTypeId: id,
      eniQuantity: num({ min: 1, max: 64, int: true }),
      eniPrivateIpAddressQuantity: num({ min: 1, max: 256, int: true }),
      eniIpv6AddressQuantity: opt(num({ min: 0, max: 256, int: true }), 0),
      instanceTypeFamily: opt(str({}), ""), // "" derives it from the id
      cpuCoreCount: opt(num({ min: 1, int: true }), 2),
      memorySize: opt(num({ min: 0 }), 8),
    }),
    { min: 1 },
  ),
  instances: arr(
    obj({
      instanceId: id,
      instanceType: id,
      zoneId: id,
      vSwitchId: id,
      netns: opt(oneOf(str({ pattern: NETNS_NAME }), str({ oneOf: [""] }), 'a namespace name or ""'), ""), // "" derives a name
      securityGroupIds: opt(arr(id), []), // [] means the first security group
      primaryIp: opt(str({ pattern: /^(\d+\.\d+\.\d+\.\d+)?$/ }), ""), // "" picks one
      // What the sandbox makes of it: a node (a daemon, and with --cluster a kubelet), or a plain VPC host.
      role: opt(str({ oneOf: ["node", "host"] }), "node"),
    }),
  ),
  latencyMs: opt(latencySchema, {}),
  throttle: opt(throttleSchema, {}),
  faults: opt(faultsSchema, () => faultsSchema({}, "faults")),
  datapath: optNull(obj({ vpcNetns: str({ pattern: NETNS_NAME }) })),
  ramRole: opt(obj({ roleName: id, ttlSeconds: opt(num({ min: 60, max: 43_200, int: true }), 3600) }), {
    roleName: "EniwayNodeRole",
    ttlSeconds: 3600,
  }),
  metadata: opt(obj({ requireToken: opt(bool, false) }), { requireToken: false }),
  /** How long a request's Timestamp may differ from the simulator's clock. */
  timestampWindowSeconds: opt(num({ min: 1, max: 86_400, int: true }), 900),
  /** How long a ClientToken is remembered. */
  clientTokenTtlSeconds: opt(num({ min: 1, int: true }), 3600),
});

export type World = ReturnType<typeof worldSchema>;

/** Validate a world object; cross-references are checked and named too. */
export function parseWorld(raw: unknown): World {
  const w = worldSchema(raw, "");
  const vpcCidr = checkCidr(w.vpc.cidr, "vpc.cidr");
  const seen = new Map<string, string>();
  const unique = (value: string, path: string): void => {
    const prev = seen.get(value);
    if (prev) throw new SchemaError(path, `duplicates ${prev} (${JSON.stringify(value)})`);
    seen.set(value, path);
  };
  const vsw = new Map<string, { zoneId: string; cidr: ReturnType<typeof parseCidr> }>();
  w.vSwitches.forEach((s, i) => {
    const path = `vSwitches[${i}]`;
    unique(s.vSwitchId, `${path}.vSwitchId`);
    const c = checkCidr(s.cidr, `${path}.cidr`);
    if (!cidrContains(vpcCidr, c.base) || !cidrContains(vpcCidr, c.base + c.size - 1))
      throw new SchemaError(`${path}.cidr`, `${s.cidr} is not inside the VPC's ${w.vpc.cidr}`);
    if (c.prefix < 16 || c.prefix > 29)
      throw new SchemaError(`${path}.cidr`, "prefix must be between /16 and /29");
    for (const [other, o] of vsw)
      if (cidrsOverlap(o.cidr, c)) throw new SchemaError(`${path}.cidr`, `overlaps vSwitch ${other}`);
    vsw.set(s.vSwitchId, { zoneId: s.zoneId, cidr: c });
  });
  checkIpv6(w);
  const types = new Set<string>();
  w.instanceTypes.forEach((t, i) => {
    unique(t.instanceTypeId, `instanceTypes[${i}].instanceTypeId`);
    types.add(t.instanceTypeId);
  });
  w.securityGroups.forEach((g, i) => {
    unique(g, `securityGroups[${i}]`);
  });
  w.credentials.forEach((c, i) => {
    unique(c.accessKeyId, `credentials[${i}].accessKeyId`);
  });
  const netns = new Set<string>();
  w.instances.forEach((inst, i) => {
    const path = `instances[${i}]`;
    unique(inst.instanceId, `${path}.instanceId`);
    if (!types.has(inst.instanceType))
      throw new SchemaError(
        `${path}.instanceType`,
        `unknown instance type ${JSON.stringify(inst.instanceType)}`,
      );
    const s = vsw.get(inst.vSwitchId);
    if (!s) throw new SchemaError(`${path}.vSwitchId`, `unknown vSwitch ${JSON.stringify(inst.vSwitchId)}`);
    if (s.zoneId !== inst.zoneId)
      throw new SchemaError(
        `${path}.zoneId`,
        `${inst.zoneId} differs from the zone of ${inst.vSwitchId} (${s.zoneId})`,
      );
    inst.securityGroupIds.forEach((g, j) => {
      if (!w.securityGroups.includes(g))
        throw new SchemaError(
          `${path}.securityGroupIds[${j}]`,
          `unknown security group ${JSON.stringify(g)}`,
        );
    });
    if (inst.netns) {
      if (netns.has(inst.netns))
        throw new SchemaError(`${path}.netns`, `namespace ${inst.netns} is used twice`);
      netns.add(inst.netns);
    }
  });
  for (const key of [
    ...Object.keys(w.latencyMs),
    ...Object.keys(w.throttle),
    ...Object.keys(w.faults.actions),
  ]) {
    if (key !== "*" && !isSimAction(key)) throw new SchemaError(key, "is not an action");
  }
  return w;
}

/** The VPC's IPv6 /56 and each vSwitch's /64 inside it, not shared; both written back in canonical form. */
function checkIpv6(w: World): void {
  const vpc = w.vpc.ipv6Cidr ? checkIpv6Cidr(w.vpc.ipv6Cidr, "vpc.ipv6Cidr", 56) : undefined;
  if (vpc) w.vpc.ipv6Cidr = formatNet(vpc);
  const seen: [string, Net][] = [];
  w.vSwitches.forEach((s, i) => {
    if (!s.ipv6Cidr) return;
    const path = `vSwitches[${i}].ipv6Cidr`;
    const n = checkIpv6Cidr(s.ipv6Cidr, path, 64);
    if (!vpc) throw new SchemaError(path, "needs the VPC's vpc.ipv6Cidr");
    if (!netWithin(n, vpc))
      throw new SchemaError(path, `${s.ipv6Cidr} is not inside the VPC's ${w.vpc.ipv6Cidr}`);
    for (const [other, o] of seen)
      if (netsOverlap(o, n)) throw new SchemaError(path, `overlaps vSwitch ${other}`);
    seen.push([s.vSwitchId, n]);
    s.ipv6Cidr = formatNet(n);
  });
}

function checkIpv6Cidr(s: string, path: string, prefix: number): Net {
  const n = parseNet(s, 6);
  if (!n) throw new SchemaError(path, `invalid IPv6 CIDR ${JSON.stringify(s)} (or host bits set)`);
  if (n.prefix !== prefix) throw new SchemaError(path, `must be a /${prefix}`);
  return n;
}

function checkCidr(s: string, path: string): ReturnType<typeof parseCidr> {
  try {
    return parseCidr(s);
  } catch (e) {
    throw new SchemaError(path, (e as Error).message);
  }
}

export async function loadWorld(file: string): Promise<World> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new Error(
      `cannot read world file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`world file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseWorld(raw);
  } catch (e) {
    if (e instanceof SchemaError) throw new Error(`world file ${file}: ${e.message}`);
    throw e;
  }
}

/** A small world for tests and the demo: one vSwitch, one instance type, N instances. */
export function defaultWorld(nodes = 2): World {
  return parseWorld({
    regionId: "cn-hangzhou",
    credentials: [{ accessKeyId: "LTAI-sim-access-key", accessKeySecret: "sim-secret-do-not-log" }],
    vpc: { vpcId: "vpc-sim", cidr: "10.0.0.0/16" },
    vSwitches: [
      { vSwitchId: "vsw-sim-a", zoneId: "cn-hangzhou-k", cidr: "10.0.1.0/24" },
      { vSwitchId: "vsw-sim-b", zoneId: "cn-hangzhou-k", cidr: "10.0.2.0/24" },
    ],
    securityGroups: ["sg-sim"],
    instanceTypes: [
      {
        instanceTypeId: "ecs.g7.large",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 6,
        eniIpv6AddressQuantity: 6,
      },
    ],
    instances: Array.from({ length: nodes }, (_, i) => ({
      instanceId: `i-sim-node-${String.fromCharCode(97 + i)}`,
      instanceType: "ecs.g7.large",
      zoneId: "cn-hangzhou-k",
      vSwitchId: "vsw-sim-a",
      securityGroupIds: ["sg-sim"],
    })),
  });
}
