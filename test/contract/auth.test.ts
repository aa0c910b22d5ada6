// The OpenAPI gateway in front of the actions: HMAC-SHA1 signatures, the
// timestamp window, nonces, AccessKeys and STS tokens, HTTP methods, Action
// and Version routing. Requests pop-core cannot make are built with our own
// signer (test/helpers/sign.ts), which is first checked against the
// documentation's test vector.

import { describe, expect, it } from "vitest";
import {
  buildParams,
  canonicalStringToSign,
  isoTimestamp,
  type RawRequest,
  rawCall,
  sendRaw,
  signParams,
} from "../helpers/sign.js";
import {
  AK,
  client,
  ECS_VERSION,
  expectErrorShape,
  REGION,
  SK,
  simHarness,
  toApiErr,
  VPC_VERSION,
} from "../helpers/sim.js";

const h = simHarness();

const FIVE_KEYS = ["Code", "HostId", "Message", "Recommend", "RequestId"];

describe("our signer", () => {
  it("reproduces the documented test vector", () => {
    const params = {
      Timestamp: "2016-02-23T12:46:24Z",
      Format: "XML",
      AccessKeyId: "testid",
      Action: "DescribeRegions",
      SignatureMethod: "HMAC-SHA1",
      SignatureNonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
      Version: "2014-05-26",
      SignatureVersion: "1.0",
    };
    expect(canonicalStringToSign("GET", params)).toBe(
      "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1" +
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0" +
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26",
    );
    expect(signParams("GET", params, "testsecret")).toBe("OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
  });
});

function req(url: string, over: Partial<RawRequest> = {}): RawRequest {
  return {
    endpoint: url,
    action: "DescribeInstanceTypes",
    version: ECS_VERSION,
    accessKeyId: AK,
    accessKeySecret: SK,
    ...over,
    params: { RegionId: REGION, ...over.params },
  };
}

describe("signatures", () => {
  it("accepts valid signatures from pop-core over GET and POST, and from our signer", async () => {
    const c = await h.start();
    for (const method of ["GET", "POST"] as const) {
      const r = await c.call<{ InstanceTypes: { InstanceType: unknown[] } }>(
        "DescribeInstanceTypes",
        {},
        { method },
      );
      expect(r.InstanceTypes.InstanceType, method).toHaveLength(2);
      const vsw = await c.call<{ TotalCount: number }>("DescribeVSwitches", {}, { method });
      expect(vsw.TotalCount, method).toBe(3);
    }
    for (const method of ["GET", "POST"]) {
      const r = await rawCall(req(c.url, { method }));
      expect(r.status, r.text).toBe(200);
      expect(r.body.RequestId).toBeTypeOf("string");
    }
    // Characters that need percent-encoding are signed the RFC 3986 way.
    const tagged = await rawCall(
      req(c.url, {
        method: "POST",
        action: "CreateNetworkInterface",
        params: {
          VSwitchId: "vsw-a",
          "SecurityGroupIds.1": "sg-1",
          "Tag.1.Key": "a key*with(odd)~chars!",
          "Tag.1.Value": "ünïcødé / + = &",
        },
      }),
    );
    expect(tagged.status, tagged.text).toBe(200);
    expect(tagged.body.Tags).toEqual({
      Tag: [{ TagKey: "a key*with(odd)~chars!", TagValue: "ünïcødé / + = &" }],
    });
  });

  it("SignatureDoesNotMatch (400) when a parameter is changed after signing or the secret is wrong", async () => {
    const c = await h.start();
    const tampered = await rawCall(
      req(c.url, {
        action: "CreateNetworkInterface",
        params: { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1", SecondaryPrivateIpAddressCount: "1" },
        after: { SecondaryPrivateIpAddressCount: "5" },
      }),
    );
    expect([tampered.body.Code, tampered.status]).toEqual(["SignatureDoesNotMatch", 400]);
    expect(Object.keys(tampered.body).sort()).toEqual(FIVE_KEYS);
    expect(String(tampered.body.Message)).toMatch(
      /^Specified signature is not matched with our calculation\. server string to sign is:/,
    );
    expect(String(tampered.body.Message)).toContain("SecondaryPrivateIpAddressCount%3D5");
    expect(await c.describeAll({ Type: "Secondary" })).toEqual([]);

    const wrongSecret = await rawCall(req(c.url, { accessKeySecret: "not-the-secret" }));
    expect([wrongSecret.body.Code, wrongSecret.status]).toEqual(["SignatureDoesNotMatch", 400]);
    // Signed for GET, sent as POST.
    const params = buildParams(req(c.url, { method: "GET" }));
    const crossed = await sendRaw(c.url, "POST", params);
    expect(crossed.body.Code).toBe("SignatureDoesNotMatch");
    // pop-core with a wrong secret.
    try {
      await c.call(
        "DescribeInstanceTypes",
        {},
        { client: client(c.url, ECS_VERSION, { accessKeySecret: "nope" }) },
      );
      expect.unreachable("a wrong secret was accepted");
    } catch (e) {
      const err = toApiErr(e);
      expect([err.code, err.status]).toEqual(["SignatureDoesNotMatch", 400]);
    }
  });

  it("InvalidAccessKeyId.NotFound (404) for an unknown AccessKeyId", async () => {
    const c = await h.start();
    const e = await c.callError(
      "DescribeNetworkInterfaces",
      {},
      { client: client(c.url, ECS_VERSION, { accessKeyId: "LTAI-unknown" }) },
    );
    expect([e.code, e.status]).toEqual(["InvalidAccessKeyId.NotFound", 404]);
    expectErrorShape(e);
  });

  it("SignatureNonceUsed (400) on a replayed request", async () => {
    const c = await h.start();
    const params = buildParams(
      req(c.url, {
        method: "POST",
        action: "CreateNetworkInterface",
        params: { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" },
      }),
    );
    const first = await sendRaw(c.url, "POST", params);
    expect(first.status, first.text).toBe(200);
    const replay = await sendRaw(c.url, "POST", params);
    expect([replay.body.Code, replay.status]).toEqual(["SignatureNonceUsed", 400]);
    expect(Object.keys(replay.body).sort()).toEqual(FIVE_KEYS);
    expect(await c.describeAll({ Type: "Secondary" })).toHaveLength(1);
    // A fresh nonce on otherwise identical parameters goes through.
    const fresh = await rawCall(
      req(c.url, {
        method: "POST",
        action: "CreateNetworkInterface",
        params: { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1", Timestamp: params.Timestamp },
      }),
    );
    expect(fresh.status, fresh.text).toBe(200);
  });

  it("InvalidTimeStamp.Expired outside 15 minutes, InvalidTimeStamp.Format for a malformed one", async () => {
    const c = await h.start();
    const now = Date.now();
    const at = (ms: number) => rawCall(req(c.url, { params: { Timestamp: isoTimestamp(ms) } }));
    const old = await at(now - 16 * 60_000);
    expect([old.body.Code, old.status]).toEqual(["InvalidTimeStamp.Expired", 400]);
    expect(Object.keys(old.body).sort()).toEqual(FIVE_KEYS);
    const future = await at(now + 16 * 60_000);
    expect(future.body.Code).toBe("InvalidTimeStamp.Expired");
    const recent = await at(now - 14 * 60_000);
    expect(recent.status, recent.text).toBe(200);
    for (const ts of ["2016/02/23 12:46:24", "yesterday", "2024-13-45T99:99:99Z", "1700000000"]) {
      const r = await rawCall(req(c.url, { params: { Timestamp: ts } }));
      expect([r.body.Code, r.status], ts).toEqual(["InvalidTimeStamp.Format", 400]);
    }
  });

  it("MissingParameter for a missing AccessKeyId, Signature, SignatureNonce or Timestamp", async () => {
    const c = await h.start();
    const cases: [string, Partial<RawRequest>][] = [
      ["AccessKeyId", { params: { AccessKeyId: undefined } }],
      ["Signature", { unsigned: true }],
      ["SignatureNonce", { params: { SignatureNonce: undefined } }],
      ["Timestamp", { params: { Timestamp: undefined } }],
      ["Action", { params: { Action: undefined } }],
      ["Version", { params: { Version: undefined } }],
    ];
    for (const [name, over] of cases) {
      const r = await rawCall(req(c.url, over));
      expect([r.body.Code, r.status], name).toEqual(["MissingParameter", 400]);
      expect(String(r.body.Message), name).toContain(name);
      expect(Object.keys(r.body).sort()).toEqual(FIVE_KEYS);
    }
  });

  it("UnsupportedHTTPMethod for PUT and DELETE", async () => {
    const c = await h.start();
    for (const method of ["PUT", "DELETE"]) {
      const r = await rawCall(req(c.url, { method }));
      expect([r.body.Code, r.status], method).toEqual(["UnsupportedHTTPMethod", 403]);
      expect(Object.keys(r.body).sort()).toEqual(FIVE_KEYS);
    }
  });

  it("InvalidAction.NotFound for an unknown action or an action under the other API's version; InvalidVersion", async () => {
    const c = await h.start();
    const unknown = await c.callError("DescribeRegions", {});
    expect(unknown.code).toBe("InvalidAction.NotFound");
    expect(unknown.status).toBeGreaterThanOrEqual(400);
    expect(unknown.status).toBeLessThan(500);
    expectErrorShape(unknown);
    const ecsOnVpc = await c.callError(
      "CreateNetworkInterface",
      { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" },
      {
        api: "vpc",
      },
    );
    expect(ecsOnVpc.code).toBe("InvalidAction.NotFound");
    expect(String(ecsOnVpc.data.HostId)).toMatch(/^vpc\./);
    const vpcOnEcs = await c.callError("DescribeVSwitches", {}, { api: "ecs" });
    expect(vpcOnEcs.code).toBe("InvalidAction.NotFound");
    expect(String(vpcOnEcs.data.HostId)).toMatch(/^ecs\./);
    const version = await rawCall(req(c.url, { version: "2099-01-01" }));
    expect(version.body.Code).toBe("InvalidVersion");
    expect(version.status).toBe(400);
    expect(await c.describeAll({ Type: "Secondary" })).toEqual([]);
    expect(VPC_VERSION).toBe("2016-04-28");
  });
});

describe("STS credentials from the instance's RAM role", () => {
  interface RamCreds {
    AccessKeyId: string;
    AccessKeySecret: string;
    SecurityToken: string;
    Expiration: string;
    LastUpdated: string;
    Code: string;
  }

  it("credentials from metadata work with AccessKeyId + SecurityToken; a wrong or missing token does not", async () => {
    const c = await h.start({ ramRole: { roleName: "NodeRole", ttlSeconds: 3600 } });
    expect(await c.metaOk("i-a", "meta-data/ram/security-credentials/")).toBe("NodeRole");
    const creds = JSON.parse(
      await c.metaOk("i-a", "meta-data/ram/security-credentials/NodeRole"),
    ) as RamCreds;
    expect(creds.Code).toBe("Success");
    expect(creds.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(creds.Expiration) - Date.parse(creds.LastUpdated)).toBe(3600_000);
    const sts = client(c.url, ECS_VERSION, {
      accessKeyId: creds.AccessKeyId,
      accessKeySecret: creds.AccessKeySecret,
      securityToken: creds.SecurityToken,
    });
    const r = await c.call<{ NetworkInterfaceId: string }>(
      "CreateNetworkInterface",
      { VSwitchId: "vsw-a", "SecurityGroupIds.1": "sg-1" },
      { client: sts },
    );
    expect(r.NetworkInterfaceId).toMatch(/^eni-/);
    const vpc = client(c.url, VPC_VERSION, {
      accessKeyId: creds.AccessKeyId,
      accessKeySecret: creds.AccessKeySecret,
      securityToken: creds.SecurityToken,
    });
    expect((await c.call<{ TotalCount: number }>("DescribeVSwitches", {}, { client: vpc })).TotalCount).toBe(
      3,
    );

    const wrong = client(c.url, ECS_VERSION, {
      accessKeyId: creds.AccessKeyId,
      accessKeySecret: creds.AccessKeySecret,
      securityToken: `${creds.SecurityToken.slice(0, -4)}AAAA`,
    });
    const w = await c.callError("DescribeNetworkInterfaces", {}, { client: wrong });
    expect(w.code).toMatch(/^InvalidSecurityToken\./);
    expect(w.status).toBe(400);
    expectErrorShape(w);
    const junk = client(c.url, ECS_VERSION, {
      accessKeyId: creds.AccessKeyId,
      accessKeySecret: creds.AccessKeySecret,
      securityToken: "junk",
    });
    expect((await c.callError("DescribeNetworkInterfaces", {}, { client: junk })).code).toMatch(
      /^InvalidSecurityToken\./,
    );
    const none = client(c.url, ECS_VERSION, {
      accessKeyId: creds.AccessKeyId,
      accessKeySecret: creds.AccessKeySecret,
    });
    const n = await c.callError("DescribeNetworkInterfaces", {}, { client: none });
    expect(n.code).toMatch(/^(MissingSecurityToken|InvalidSecurityToken\..*)$/);
    // The static key's secret does not sign for the STS key.
    const mixed = client(c.url, ECS_VERSION, {
      accessKeyId: creds.AccessKeyId,
      accessKeySecret: SK,
      securityToken: creds.SecurityToken,
    });
    expect((await c.callError("DescribeNetworkInterfaces", {}, { client: mixed })).code).toBe(
      "SignatureDoesNotMatch",
    );
  });

  it("InvalidSecurityToken.Expired once the token's ttl has passed; metadata then hands out a fresh one", async () => {
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    const c = await h.start({ ramRole: { roleName: "NodeRole", ttlSeconds: 60 } }, { clock });
    const path = "meta-data/ram/security-credentials/NodeRole";
    const creds = JSON.parse(await c.metaOk("i-a", path)) as RamCreds;
    const sts = (k: RamCreds) =>
      client(c.url, ECS_VERSION, {
        accessKeyId: k.AccessKeyId,
        accessKeySecret: k.AccessKeySecret,
        securityToken: k.SecurityToken,
      });
    const before = await c.call("DescribeNetworkInterfaces", {}, { client: sts(creds) });
    expect(before.RequestId).toBeTypeOf("string");
    offset = 61_000; // past the 60 s ttl, well inside the 15 min timestamp window
    const e = await c.callError("DescribeNetworkInterfaces", {}, { client: sts(creds) });
    expect([e.code, e.status]).toEqual(["InvalidSecurityToken.Expired", 400]);
    expectErrorShape(e);
    const fresh = JSON.parse(await c.metaOk("i-a", path)) as RamCreds;
    expect(fresh.SecurityToken).not.toBe(creds.SecurityToken);
    expect(Date.parse(fresh.Expiration)).toBeGreaterThan(Date.parse(creds.Expiration));
    const ok = await c.call("DescribeNetworkInterfaces", {}, { client: sts(fresh) });
    expect(ok.RequestId).toBeTypeOf("string");
  });

  it("the timestamp window follows the simulator's clock", async () => {
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    const c = await h.start({}, { clock });
    offset = 20 * 60_000;
    const e = await c.callError("DescribeNetworkInterfaces", {});
    expect(e.code).toBe("InvalidTimeStamp.Expired");
    const r = await rawCall(req(c.url, { params: { Timestamp: isoTimestamp(clock.now()) } }));
    expect(r.status, r.text).toBe(200);
  });
});
