// Contract-test fixtures: start the cloud simulator on a small world built in
// the test, and talk to it the way eniway does in production — through the
// real @alicloud/pop-core RPCClient over real HTTP. The response shapes below
// are written from Alibaba Cloud's documentation, not imported from the
// simulator, so a drift on either side shows up here.

import RPCClient from "@alicloud/pop-core";
import { afterEach, expect } from "vitest";
import { type Simulator, startSimulator } from "../../cloud/simulator/server.js";
import type { Clock } from "../../cloud/simulator/state.js";
import { parseWorld } from "../../cloud/simulator/world.js";
import {
  VPC_ACTIONS,
  type WireAssignPrivateIpAddressesResponse,
  type WireCreateNetworkInterfaceResponse,
  type WireDescribeInstanceTypesResponse,
  type WireDescribeNetworkInterfacesResponse,
  type WireDescribeVSwitchesResponse,
  type WireInstanceType,
  type WireNetworkInterfaceSet,
  type WirePrivateIpSet,
  type WireVSwitch,
} from "../../cloud/types.js";

export const REGION = "cn-hangzhou";
export const AK = "LTAIcontractTestKey";
export const SK = "contract-test-secret";
export const ECS_VERSION = "2014-05-26";
export const VPC_VERSION = "2016-04-28";
export const ZONE = "cn-hangzhou-k";
export const OTHER_ZONE = "cn-hangzhou-j";

// ---- documented wire shapes (cloud/types.ts, shared with the client) ---------

export type PrivateIpSet = WirePrivateIpSet;
export type NetworkInterfaceSet = WireNetworkInterfaceSet;
export type CreateResponse = WireCreateNetworkInterfaceResponse;
export type DescribeResponse = WireDescribeNetworkInterfacesResponse;
export type AssignResponse = WireAssignPrivateIpAddressesResponse;
export type InstanceTypeItem = WireInstanceType;
export type DescribeInstanceTypesResponse = WireDescribeInstanceTypesResponse;
export type VSwitchItem = WireVSwitch;
export type DescribeVSwitchesResponse = WireDescribeVSwitchesResponse;

export interface ApiErr {
  code: string;
  status: number;
  message: string;
  data: Record<string, unknown>;
}

// ---- worlds ------------------------------------------------------------------

/**
 * A small world: vsw-a (/24) and vsw-tiny (/29: 4 usable addresses, .1-.4,
 * gateway .5) in ZONE, vsw-j in OTHER_ZONE; i-a is a 3-ENI × 4-IP instance,
 * i-b a 4-ENI × 10-IP instance, both on vsw-a.
 */
export function worldJson(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    regionId: REGION,
    credentials: [{ accessKeyId: AK, accessKeySecret: SK }],
    vpc: { vpcId: "vpc-contract", cidr: "10.0.0.0/16" },
    vSwitches: [
      { vSwitchId: "vsw-a", zoneId: ZONE, cidr: "10.0.1.0/24" },
      { vSwitchId: "vsw-tiny", zoneId: ZONE, cidr: "10.0.9.0/29" },
      { vSwitchId: "vsw-j", zoneId: OTHER_ZONE, cidr: "10.0.2.0/24" },
    ],
    securityGroups: ["sg-1", "sg-2"],
    instanceTypes: [
      {
        instanceTypeId: "ecs.t.small",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 4,
        eniIpv6AddressQuantity: 1,
      },
      { instanceTypeId: "ecs.t.big", eniQuantity: 4, eniPrivateIpAddressQuantity: 10 },
    ],
    instances: [
      {
        instanceId: "i-a",
        instanceType: "ecs.t.small",
        zoneId: ZONE,
        vSwitchId: "vsw-a",
        securityGroupIds: ["sg-1"],
      },
      { instanceId: "i-b", instanceType: "ecs.t.big", zoneId: ZONE, vSwitchId: "vsw-a" },
    ],
    ...over,
  };
}

// ---- the harness ---------------------------------------------------------------

type Params = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  method?: "GET" | "POST";
  /** Which pop-core client to use; by default the one whose API owns the action. */
  api?: "ecs" | "vpc";
  client?: RPCClient;
}

export class Cloud {
  readonly ecs: RPCClient;
  readonly vpc: RPCClient;

  constructor(readonly sim: Simulator) {
    this.ecs = client(sim.url, ECS_VERSION);
    this.vpc = client(sim.url, VPC_VERSION);
  }

  get url(): string {
    return this.sim.url;
  }

  /** Calls an action; RegionId defaults to REGION (pass `RegionId: undefined` to omit it). */
  async call<T = Record<string, unknown>>(
    action: string,
    params: Params = {},
    opts: CallOptions = {},
  ): Promise<T> {
    const api = opts.api ?? ((VPC_ACTIONS as readonly string[]).includes(action) ? "vpc" : "ecs");
    const c = opts.client ?? (api === "vpc" ? this.vpc : this.ecs);
    const p: Record<string, string> = {};
    for (const [k, v] of Object.entries({ RegionId: REGION, ...params }))
      if (v !== undefined) p[k] = String(v);
    const r = await c.request<T>(action, p, { method: opts.method ?? "POST", formatParams: false });
    // json-bigint builds prototype-less objects; make them plain.
    return JSON.parse(JSON.stringify(r)) as T;
  }

  /** Calls an action that must fail with an API error; returns it. */
  async callError(action: string, params: Params = {}, opts: CallOptions = {}): Promise<ApiErr> {
    try {
      await this.call(action, params, opts);
    } catch (e) {
      return toApiErr(e);
    }
    throw new Error(`${action} ${JSON.stringify(params)} succeeded, but an error was expected`);
  }

  async create(params: Params = {}): Promise<CreateResponse> {
    return this.call<CreateResponse>("CreateNetworkInterface", {
      VSwitchId: "vsw-a",
      "SecurityGroupIds.1": "sg-1",
      ...params,
    });
  }

  async describe(params: Params = {}): Promise<DescribeResponse> {
    return this.call<DescribeResponse>("DescribeNetworkInterfaces", params);
  }

  /** Every ENI matching the filters, following NextToken. */
  async describeAll(params: Params = {}, maxResults = 100): Promise<NetworkInterfaceSet[]> {
    const out: NetworkInterfaceSet[] = [];
    let token = "";
    for (let i = 0; i < 1000; i++) {
      const r = await this.describe({ ...params, MaxResults: maxResults, NextToken: token || undefined });
      out.push(...r.NetworkInterfaceSets.NetworkInterfaceSet);
      if (!r.NextToken) return out;
      token = r.NextToken;
    }
    throw new Error("DescribeNetworkInterfaces never ended");
  }

  async eni(id: string): Promise<NetworkInterfaceSet | undefined> {
    const r = await this.describe({ "NetworkInterfaceId.1": id });
    expect(r.NetworkInterfaceSets.NetworkInterfaceSet.length).toBeLessThanOrEqual(1);
    return r.NetworkInterfaceSets.NetworkInterfaceSet[0];
  }

  async mustEni(id: string): Promise<NetworkInterfaceSet> {
    const e = await this.eni(id);
    if (!e) throw new Error(`${id} is not in DescribeNetworkInterfaces`);
    return e;
  }

  /** Polls Describe until the ENI has the status; returns the statuses seen, in order, without repeats. */
  async waitStatus(id: string, status: string, timeoutMs = 5000): Promise<string[]> {
    const seen: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = await this.mustEni(id);
      if (seen[seen.length - 1] !== e.Status) seen.push(e.Status);
      if (e.Status === status) return seen;
      if (Date.now() > deadline) throw new Error(`${id} stayed ${e.Status}, never became ${status}: ${seen}`);
      await sleep(10);
    }
  }

  async attach(id: string, instanceId = "i-a", settle = true): Promise<void> {
    await this.call("AttachNetworkInterface", { NetworkInterfaceId: id, InstanceId: instanceId });
    if (settle) await this.waitStatus(id, "InUse");
  }

  async vswitch(id: string): Promise<VSwitchItem> {
    const r = await this.call<DescribeVSwitchesResponse>("DescribeVSwitches", { VSwitchId: id });
    expect(r.VSwitches.VSwitch).toHaveLength(1);
    return r.VSwitches.VSwitch[0]!;
  }

  async admin<T = Record<string, unknown>>(
    path: string,
    method = "GET",
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.url}/admin/${path}`, {
      method,
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  }

  async knob(name: "faults" | "latency" | "throttle", body: unknown): Promise<void> {
    const r = await this.admin(name, "PUT", body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }

  async violations(): Promise<string[]> {
    const r = await this.admin<{ invariantViolations: string[] }>("state");
    expect(r.status).toBe(200);
    return r.body.invariantViolations;
  }

  /** GET (or another method) on the metadata service of an instance. */
  async meta(
    instanceId: string,
    path: string,
    opts: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: string }> {
    const res = await fetch(`${this.url}/meta/${instanceId}/latest/${path}`, {
      method: opts.method ?? "GET",
      headers: opts.headers ?? {},
    });
    return { status: res.status, body: await res.text() };
  }

  /** A metadata value that must exist. */
  async metaOk(instanceId: string, path: string, headers: Record<string, string> = {}): Promise<string> {
    const r = await this.meta(instanceId, path, { headers });
    expect(r.status, `${path}: ${r.body}`).toBe(200);
    return r.body;
  }

  async macs(instanceId: string): Promise<string[]> {
    const body = await this.metaOk(instanceId, "meta-data/network/interfaces/macs/");
    return body === "" ? [] : body.split("\n");
  }
}

export function client(
  endpoint: string,
  apiVersion: string,
  creds: Partial<RPCClient.Config> = {},
): RPCClient {
  return new RPCClient({ endpoint, apiVersion, accessKeyId: AK, accessKeySecret: SK, ...creds });
}

export function toApiErr(e: unknown): ApiErr {
  const err = e as {
    code?: unknown;
    data?: Record<string, unknown>;
    entry?: { response?: { statusCode?: number } };
    message?: string;
  };
  if (typeof err.code !== "string" || !err.data || err.entry?.response?.statusCode === undefined) throw e;
  const data = JSON.parse(JSON.stringify(err.data)) as Record<string, unknown>;
  return { code: err.code, status: err.entry.response.statusCode, message: String(data.Message ?? ""), data };
}

export interface StartOptions {
  clock?: Clock;
  random?: () => number;
}

/**
 * Registers an afterEach that checks /admin/state for invariant violations
 * (after letting pending transitions settle) and stops every simulator the
 * test started. Call once per file (or describe block).
 */
export function simHarness(): { start(over?: Record<string, unknown>, opts?: StartOptions): Promise<Cloud> } {
  const running: Cloud[] = [];
  afterEach(async () => {
    const clouds = running.splice(0);
    try {
      for (const c of clouds) {
        const settled = await c.admin("settle", "POST");
        expect(settled.status).toBe(200);
        expect(await c.violations(), "the VPC's invariants after the test").toEqual([]);
      }
    } finally {
      await Promise.all(clouds.map((c) => c.sim.stop()));
    }
  });
  return {
    async start(over = {}, opts = {}) {
      const sim = await startSimulator(parseWorld(worldJson(over)), opts);
      const c = new Cloud(sim);
      running.push(c);
      return c;
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The error body the documentation gives: exactly these five keys. */
export function expectErrorShape(e: ApiErr): void {
  expect(Object.keys(e.data).sort()).toEqual(["Code", "HostId", "Message", "Recommend", "RequestId"]);
  expect(e.data.Code).toBe(e.code);
  expect(e.data.RequestId).toMatch(/^[0-9A-F-]{16,}$/i);
  expect(e.data.HostId).toMatch(/aliyuncs\.com$/);
  expect(typeof e.data.Message).toBe("string");
  expect(String(e.data.Message).length).toBeGreaterThan(0);
  expect(typeof e.data.Recommend).toBe("string");
}

export function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Every address of a CIDR as a dotted string. */
export function cidrAddresses(cidr: string): string[] {
  const [base, prefix] = cidr.split("/");
  const size = 2 ** (32 - Number(prefix));
  const b = ipToInt(base!);
  return Array.from({ length: size }, (_, i) => intToIp(b + i));
}

export function ipsOf(e: { PrivateIpSets: { PrivateIpSet: PrivateIpSet[] } }): string[] {
  return e.PrivateIpSets.PrivateIpSet.map((s) => s.PrivateIpAddress);
}
