// Shared fixtures for the cloud client's unit tests: a nock-backed fake of the
// ECS/VPC RPC endpoints that records every request's form parameters.

import nock from "nock";
import { type CloudApi, type CloudApiOptions, createCloudApi } from "../../cloud/api.js";
import { staticCredentialsProvider } from "../../cloud/credentials.js";
import type { RateLimitOverrides } from "../../cloud/limiter.js";
import { ALL_ACTIONS } from "../../cloud/types.js";
import type { Logger } from "../../lib/log.js";

export const ECS = "http://ecs.test";
export const VPC = "http://vpc.test";
export const AK = "AKIDunitTEST0001";
export const SK = "unit-secret-SK-0001";
export const STS = "STS.token+with/slash=0001";

export type Reply = [number, unknown];
export type Handler = (p: URLSearchParams) => Reply;

/** Every request's parameters, in order. */
export interface Recorder {
  requests: URLSearchParams[];
  actions(): string[];
}

export function recorder(): Recorder {
  const requests: URLSearchParams[] = [];
  return { requests, actions: () => requests.map((p) => p.get("Action") ?? "") };
}

/** Queues one reply per handler on host; each records the request. */
export function expectCalls(host: string, rec: Recorder, handlers: Handler[]): nock.Scope {
  let scope = nock(host);
  for (const h of handlers) {
    scope = scope.post("/").reply((_uri, body) => {
      const p = new URLSearchParams(typeof body === "string" ? body : "");
      rec.requests.push(p);
      const [status, json] = h(p);
      return [
        status,
        typeof json === "string" ? json : JSON.stringify(json),
        { "content-type": "application/json" },
      ];
    });
  }
  return scope;
}

export function ok(body: Record<string, unknown> = {}): Handler {
  return () => [200, { RequestId: "req-ok", ...body }];
}

export function apiError(
  status: number,
  code: string,
  requestId = `req-${code}`,
  message = `${code} message`,
): Handler {
  return () => [
    status,
    { RequestId: requestId, HostId: "ecs.test", Code: code, Message: message, Recommend: "" },
  ];
}

const FAST: RateLimitOverrides = Object.fromEntries(ALL_ACTIONS.map((a) => [a, { qps: 1000, burst: 1000 }]));

export function testApi(over: Partial<CloudApiOptions> = {}): CloudApi {
  return createCloudApi({
    regionId: "cn-hangzhou",
    ecsEndpoint: ECS,
    vpcEndpoint: VPC,
    credentials: staticCredentialsProvider({ accessKeyId: AK, accessKeySecret: SK, securityToken: STS }),
    rateLimits: FAST,
    retry: { baseMs: 1, capMs: 2, maxElapsedMs: 2000 },
    timeoutMs: 2000,
    ...over,
  });
}

/** A Logger that keeps every line it writes. */
export function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const make = (base: Record<string, unknown>): Logger => {
    const emit = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
      lines.push(JSON.stringify({ level, msg, ...base, ...fields }));
    };
    return {
      debug: emit("debug"),
      info: emit("info"),
      warn: emit("warn"),
      error: emit("error"),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return { logger: make({}), lines };
}

export function wireEni(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    NetworkInterfaceId: id,
    Status: "Available",
    Type: "Secondary",
    InstanceId: "",
    VpcId: "vpc-sim",
    VSwitchId: "vsw-a",
    ZoneId: "cn-hangzhou-k",
    MacAddress: "00:16:3E:00:00:01",
    PrivateIpAddress: "10.0.1.10",
    PrivateIpSets: {
      PrivateIpSet: [
        { PrivateIpAddress: "10.0.1.11", Primary: false },
        { PrivateIpAddress: "10.0.1.10", Primary: true },
      ],
    },
    SecurityGroupIds: { SecurityGroupId: ["sg-sim"] },
    Tags: { Tag: [{ TagKey: "creator", TagValue: "eniway" }] },
    CreationTime: "2024-01-01T00:00:00Z",
    ...extra,
  };
}
