// Alibaba Cloud's own generated SDKs (@alicloud/ecs20140526 and
// @alicloud/vpc20160428 v7 on @alicloud/openapi-core), with their default
// configuration: V3 signatures (ACS3-HMAC-SHA256), the action only in
// x-acs-action. They run the ENI lifecycle against `eniway sim` unmodified,
// and every forged or replayed request is refused with the documented code.

import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import * as $Ecs from "@alicloud/ecs20140526";
import { $OpenApiUtil } from "@alicloud/openapi-core";
import * as $Vpc from "@alicloud/vpc20160428";
import { RetryCondition, RetryOptions } from "@darabonba/typescript";
import { describe, expect, it } from "vitest";
import { canonicalRequestV3, sha256Hex, signV3, stringToSignV3 } from "../../cloud/simulator/auth.js";
import { EcsClient, sdkConfig, VpcClient } from "../helpers/sdk.js";
import { AK, type Cloud, REGION, SK, simHarness } from "../helpers/sim.js";

const h = simHarness();

interface SdkError {
  code?: string;
  statusCode?: number;
  data?: { HostId?: string; Code?: string };
  retryAfter?: number;
}
async function failure(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    return e as SdkError;
  }
  throw new Error("the call succeeded");
}

describe("the documented V3 example (Alibaba Cloud, 'Request syntax and signature method V3')", () => {
  it("gives the documented canonical request hash and signature", () => {
    const canonical = canonicalRequestV3({
      method: "POST",
      path: "/",
      rawQuery: "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
      headers: {
        host: "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-content-sha256": sha256Hex(""),
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-version": "2014-05-26",
      },
      signedHeaders: [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
      ],
      payloadHash: sha256Hex(""),
    });
    const toSign = stringToSignV3(canonical);
    expect(toSign).toBe("ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259");
    expect(signV3("YourAccessKeySecret", toSign)).toBe(
      "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
    );
  });
});

describe("the official SDKs, default configuration (V3)", () => {
  it("run the ENI lifecycle and VPC DescribeVSwitches; typed models parse", async () => {
    const c = await h.start({
      latencyMs: { "*": [0, 0], AttachNetworkInterface: 50, DetachNetworkInterface: 50 },
    });
    const ecs = new EcsClient(sdkConfig(c));
    const vpc = new VpcClient(sdkConfig(c));

    const types = await ecs.describeInstanceTypes(
      new $Ecs.DescribeInstanceTypesRequest({ instanceTypes: ["ecs.t.small"] }),
    );
    expect(types.statusCode).toBe(200);
    expect(types.body?.instanceTypes?.instanceType?.[0]?.eniQuantity).toBe(3);

    const created = await ecs.createNetworkInterface(
      new $Ecs.CreateNetworkInterfaceRequest({
        regionId: REGION,
        vSwitchId: "vsw-a",
        securityGroupId: "sg-1",
        secondaryPrivateIpAddressCount: 1,
        tag: [new $Ecs.CreateNetworkInterfaceRequestTag({ key: "owner", value: "sdk-test" })],
      }),
    );
    const eniId = created.body?.networkInterfaceId ?? "";
    expect(eniId).toMatch(/^eni-/);

    const status = async (): Promise<string | undefined> =>
      (
        await ecs.describeNetworkInterfaces(
          new $Ecs.DescribeNetworkInterfacesRequest({ regionId: REGION, networkInterfaceId: [eniId] }),
        )
      ).body?.networkInterfaceSets?.networkInterfaceSet?.[0]?.status;
    const until = async (want: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while ((await status()) !== want) {
        if (Date.now() > deadline) throw new Error(`${eniId} never became ${want}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    await ecs.attachNetworkInterface(
      new $Ecs.AttachNetworkInterfaceRequest({
        regionId: REGION,
        networkInterfaceId: eniId,
        instanceId: "i-a",
      }),
    );
    await until("InUse");
    const assigned = await ecs.assignPrivateIpAddresses(
      new $Ecs.AssignPrivateIpAddressesRequest({
        regionId: REGION,
        networkInterfaceId: eniId,
        secondaryPrivateIpAddressCount: 2,
      }),
    );
    const ips = assigned.body?.assignedPrivateIpAddressesSet?.privateIpSet?.privateIpAddress ?? [];
    expect(ips).toHaveLength(2);
    await ecs.unassignPrivateIpAddresses(
      new $Ecs.UnassignPrivateIpAddressesRequest({
        regionId: REGION,
        networkInterfaceId: eniId,
        privateIpAddress: [ips[0]!],
      }),
    );
    const after = await ecs.describeNetworkInterfaces(
      new $Ecs.DescribeNetworkInterfacesRequest({ regionId: REGION, networkInterfaceId: [eniId] }),
    );
    const set = after.body?.networkInterfaceSets?.networkInterfaceSet?.[0]?.privateIpSets?.privateIpSet ?? [];
    expect(set.map((p) => p.privateIpAddress)).not.toContain(ips[0]);
    expect(set.map((p) => p.privateIpAddress)).toContain(ips[1]);

    await ecs.detachNetworkInterface(
      new $Ecs.DetachNetworkInterfaceRequest({
        regionId: REGION,
        networkInterfaceId: eniId,
        instanceId: "i-a",
      }),
    );
    await until("Available");
    await ecs.deleteNetworkInterface(
      new $Ecs.DeleteNetworkInterfaceRequest({ regionId: REGION, networkInterfaceId: eniId }),
    );
    expect(await status()).toBeUndefined();

    const vsw = await vpc.describeVSwitches(new $Vpc.DescribeVSwitchesRequest({ regionId: REGION }));
    expect((vsw.body?.vSwitches?.vSwitch ?? []).map((v) => v.vSwitchId)).toContain("vsw-a");
  });

  it("a wrong secret, an unknown AccessKey, STS without its token: the documented codes; VPC errors name the VPC host", async () => {
    const c = await h.start();
    const req = new $Ecs.DescribeInstanceTypesRequest({});
    const wrong = await failure(
      new EcsClient(sdkConfig(c, { accessKeySecret: "not-the-secret" })).describeInstanceTypes(req),
    );
    expect([wrong.code, wrong.statusCode]).toEqual(["SignatureDoesNotMatch", 400]);
    const unknown = await failure(
      new EcsClient(sdkConfig(c, { accessKeyId: "LTAInobody" })).describeInstanceTypes(req),
    );
    expect(unknown.code).toBe("InvalidAccessKeyId.NotFound");
    const vpcErr = await failure(
      new VpcClient(sdkConfig(c, { accessKeySecret: "nope" })).describeVSwitches(
        new $Vpc.DescribeVSwitchesRequest({ regionId: REGION }),
      ),
    );
    expect(vpcErr.data?.HostId).toMatch(/^vpc\./);

    // STS credentials from the instance's RAM role: with the token they work, without it they do not.
    const role = (await c.metaOk("i-a", "meta-data/ram/security-credentials/")).trim();
    const sts = JSON.parse(await c.metaOk("i-a", `meta-data/ram/security-credentials/${role}`)) as {
      AccessKeyId: string;
      AccessKeySecret: string;
      SecurityToken: string;
    };
    const withToken = new EcsClient(
      sdkConfig(c, {
        accessKeyId: sts.AccessKeyId,
        accessKeySecret: sts.AccessKeySecret,
        securityToken: sts.SecurityToken,
      }),
    );
    expect((await withToken.describeInstanceTypes(req)).statusCode).toBe(200);
    const noToken = new EcsClient(
      sdkConfig(c, { accessKeyId: sts.AccessKeyId, accessKeySecret: sts.AccessKeySecret }),
    );
    expect((await failure(noToken.describeInstanceTypes(req))).code).toBe("MissingSecurityToken");
  });

  it("a throttled call says when to retry (x-acs-retry-after, ms), and the SDK reads it", async () => {
    const c = await h.start({ throttle: { DescribeInstanceTypes: { qps: 2, burst: 1 } } });
    const ecs = new EcsClient(sdkConfig(c));
    const req = new $Ecs.DescribeInstanceTypesRequest({});
    await ecs.describeInstanceTypes(req);
    const t = await failure(ecs.describeInstanceTypes(req));
    expect(t.code).toBe("Throttling");
    expect(t.retryAfter).toBeGreaterThan(0);
    expect(t.retryAfter).toBeLessThanOrEqual(500);

    // With retries on, the SDK waits that long and the retry goes through.
    const retrying = new EcsClient(
      new $OpenApiUtil.Config({
        ...sdkConfig(c),
        retryOptions: new RetryOptions({
          retryable: true,
          retryCondition: [
            new RetryCondition({ maxAttempts: 3, errorCode: ["Throttling"], exception: [], maxDelay: 5000 }),
          ],
          noRetryCondition: [],
        }),
      }),
    );
    await new Promise((r) => setTimeout(r, 600)); // the bucket refills
    await retrying.describeInstanceTypes(req);
    const throttled = async (): Promise<number> =>
      (await c.admin<{ errors: Record<string, Record<string, number>> }>("stats")).body.errors
        .DescribeInstanceTypes?.Throttling ?? 0;
    const before = await throttled();
    const ok = await retrying.describeInstanceTypes(req);
    expect(ok.statusCode).toBe(200);
    expect(await throttled()).toBe(before + 1); // refused once, then retried after the wait
  });
});

/** One request of the SDK as sent on the wire, recorded by a local server standing in for the endpoint. */
interface Captured {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

async function captureSdkRequest(): Promise<Captured> {
  let got: Captured | null = null;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString();
    });
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      got = { method: req.method ?? "", url: req.url ?? "", headers, body };
      res.writeHead(200, { "content-type": "application/json" }).end('{"RequestId":"x"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const ecs = new EcsClient(
    new $OpenApiUtil.Config({
      accessKeyId: AK,
      accessKeySecret: SK,
      endpoint: `127.0.0.1:${port}`,
      protocol: "http",
      regionId: REGION,
    }),
  );
  await ecs.describeInstanceTypes(new $Ecs.DescribeInstanceTypesRequest({ instanceTypes: ["ecs.t.small"] }));
  await new Promise<void>((r) => server.close(() => r()));
  if (!got) throw new Error("the SDK sent nothing");
  return got;
}

/** Replays a captured request to the simulator, with headers changed or removed; the answer's code. */
function replay(
  c: Cloud,
  r: Captured,
  change: Record<string, string | null> = {},
): Promise<{ status: number; code: string }> {
  const target = new URL(c.url);
  const headers: Record<string, string> = {
    ...r.headers,
    "content-length": String(Buffer.byteLength(r.body)),
  };
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  // The signed host names the endpoint the request was signed for; the socket goes to the simulator.
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, method: r.method, path: r.url, headers, setHost: false },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
        });
        res.on("end", () => {
          resolve({
            status: res.statusCode ?? 0,
            code: (JSON.parse(text) as { Code?: string }).Code ?? "ok",
          });
        });
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

describe("forged and replayed V3 requests", () => {
  it("the SDK's own request is accepted once; a replay, an altered signed header, a missing one, an expired date are refused", async () => {
    const r = await captureSdkRequest();
    expect(r.headers.authorization).toMatch(/^ACS3-HMAC-SHA256 Credential=/);
    expect(r.url).not.toMatch(/Action=/);
    let offsetMs = 0;
    const c = await h.start({}, { clock: { now: () => Date.now() + offsetMs } });
    expect(await replay(c, r)).toEqual({ status: 200, code: "ok" });
    expect(await replay(c, r)).toEqual({ status: 400, code: "SignatureNonceUsed" });
    // A fresh nonce the signature did not cover.
    expect((await replay(c, r, { "x-acs-signature-nonce": "f".repeat(64) })).code).toBe(
      "SignatureDoesNotMatch",
    );
    // Another action under the same signature.
    expect((await replay(c, r, { "x-acs-action": "DescribeNetworkInterfaces" })).code).toBe(
      "SignatureDoesNotMatch",
    );
    // A body the payload hash does not cover.
    expect(
      (
        await replay(
          c,
          { ...r, body: "InstanceTypes.1=ecs.t.big" },
          { "x-acs-signature-nonce": "e".repeat(64) },
        )
      ).code,
    ).toBe("SignatureDoesNotMatch");
    // A parameter added to the query, even a malformed one, is not covered by the signature.
    const badQuery = { ...r, url: `${r.url}${r.url.includes("?") ? "&" : "?"}x=%ZZ` };
    expect((await replay(c, badQuery, { "x-acs-signature-nonce": "c".repeat(64) })).code).toBe(
      "SignatureDoesNotMatch",
    );
    // A header the Authorization claims as signed is not sent; an x-acs header is sent unsigned.
    expect((await replay(c, r, { "x-acs-credentials-provider": null })).code).toBe("IncompleteSignature");
    expect((await replay(c, r, { "x-acs-extra": "1" })).code).toBe("IncompleteSignature");
    expect((await replay(c, r, { authorization: "ACS3-HMAC-SHA256 Credential=x" })).code).toBe(
      "IncompleteSignature",
    );
    // Sixteen minutes later the date is out of the window.
    offsetMs = 16 * 60_000;
    expect((await replay(c, r, { "x-acs-signature-nonce": "d".repeat(64) })).code).toBe(
      "InvalidTimeStamp.Expired",
    );
  });
});
