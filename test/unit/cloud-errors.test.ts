import { describe, expect, it } from "vitest";
import { CLOUD_ERRORS, treatmentOf } from "../../cloud/codes.js";
import { CloudError, hasCode, isRetryableCode, isTreated, scrubMessage } from "../../cloud/errors.js";
import { toCloudError } from "../../cloud/rpc.js";

describe("isRetryableCode", () => {
  it.each([
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "Throttling.DeepPageSkip",
    "InternalError",
    "InternalError.Dispatch",
    "ServiceUnavailable",
    "ServiceUnavailable.RegionMaintaining",
    "Operation.Conflict",
    "OperationConflict",
    "InvalidOperation.Conflict",
    "RequestTimeout",
    "ConnectionError",
    "HttpError.500",
    "HttpError.503",
    "HttpError.429",
  ])("%s retries", (code) => {
    expect(isRetryableCode(code)).toBe(true);
  });

  it.each([
    "InvalidParameter",
    "InvalidVSwitchId.IpNotEnough",
    "IdempotentParameterMismatch",
    "InvalidEniId.NotFound",
    "SignatureDoesNotMatch",
    "ThrottlingX",
    "Forbidden.RAM",
    "InvalidResponse",
    "CredentialsUnavailable",
    "Unexpected",
    "HttpError.404",
    "HttpError.400",
  ])("%s does not retry", (code) => {
    expect(isRetryableCode(code)).toBe(false);
  });
});

describe("CloudError", () => {
  const e = new CloudError({
    action: "CreateNetworkInterface",
    code: "InvalidVSwitchId.IpNotEnough",
    message: "The specified VSwitch has not enough IpAddress.",
    requestId: "RID-42",
    httpStatus: 403,
    hostId: "ecs.aliyuncs.com",
  });

  it("carries code, requestId, httpStatus, action and retryable", () => {
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("CloudError");
    expect([e.code, e.requestId, e.httpStatus, e.action, e.retryable, e.hostId]).toEqual([
      "InvalidVSwitchId.IpNotEnough",
      "RID-42",
      403,
      "CreateNetworkInterface",
      false,
      "ecs.aliyuncs.com",
    ]);
    expect(e.message).toBe(
      "CreateNetworkInterface: InvalidVSwitchId.IpNotEnough: The specified VSwitch has not enough IpAddress. (RequestId RID-42)",
    );
    expect(hasCode(e, ["InvalidVSwitchId.IpNotEnough"])).toBe(true);
    expect(hasCode(new Error("x"), ["InvalidVSwitchId.IpNotEnough"])).toBe(false);
  });

  it("serialises to JSON for logs", () => {
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      name: "CloudError",
      action: "CreateNetworkInterface",
      code: "InvalidVSwitchId.IpNotEnough",
      message: e.message,
      requestId: "RID-42",
      httpStatus: 403,
      hostId: "ecs.aliyuncs.com",
      retryable: false,
    });
  });

  it("defaults httpStatus to 0 and computes retryable from the code", () => {
    const t = new CloudError({
      action: "DescribeVSwitches",
      code: "RequestTimeout",
      message: "request timed out",
    });
    expect([t.httpStatus, t.retryable, t.requestId]).toEqual([0, true, ""]);
    expect(t.message).toBe("DescribeVSwitches: RequestTimeout: request timed out");
  });
});

describe("scrubMessage", () => {
  it("removes URLs, credential parameters, known secrets and the string to sign", () => {
    const secret = "s3cr3t/value+x=";
    const text = `bad AccessKeyId=AKID123 SecurityToken: tok&x Signature=abc%3D see https://ecs.aliyuncs.com/?Signature=zz key ${secret} ${encodeURIComponent(secret)}`;
    const out = scrubMessage(text, [secret]);
    for (const leaked of [
      "AKID123",
      "tok&",
      "abc%3D",
      "ecs.aliyuncs.com",
      secret,
      encodeURIComponent(secret),
    ])
      expect(out).not.toContain(leaked);
    expect(scrubMessage("not matched. server string to sign is:POST&%2F&AccessKeyId%3DAK")).toBe(
      "not matched. server [string to sign omitted]",
    );
  });

  it("bounds the length", () => {
    expect(scrubMessage("x".repeat(5000)).length).toBeLessThan(600);
  });
});

describe("toCloudError", () => {
  const ctx = (status = 0) => ({ status, secrets: ["THE-SECRET"] });

  it("maps pop-core's API error, taking the status from the response entry", () => {
    const popErr = Object.assign(new Error("Throttled, URL: http://ecs/?AccessKeyId=AK"), {
      name: "ThrottlingError",
      code: "Throttling",
      data: {
        RequestId: "R1",
        HostId: "h",
        Code: "Throttling",
        Message: "slow down THE-SECRET",
        Recommend: "",
      },
      entry: { response: { statusCode: 400 } },
    });
    const e = toCloudError("DescribeNetworkInterfaces", popErr, ctx());
    expect([e.code, e.requestId, e.httpStatus, e.retryable]).toEqual(["Throttling", "R1", 400, true]);
    expect(e.message).not.toContain("URL");
    expect(e.message).not.toContain("THE-SECRET");
  });

  it("maps httpx timeouts and connection errors", () => {
    const connect = Object.assign(new Error("ConnectTimeout: Connect http://x failed."), {
      name: "RequestTimeoutError",
    });
    const read = Object.assign(new Error("ReadTimeout(1000). POST http://x/ failed."), {
      name: "RequestTimeoutError",
    });
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1POST http://x/ failed."), {
      code: "ECONNREFUSED",
    });
    expect(toCloudError("A", connect, ctx()).code).toBe("RequestTimeout");
    expect(toCloudError("A", read, ctx()).code).toBe("RequestTimeout");
    const c = toCloudError("A", refused, ctx());
    expect([c.code, c.httpStatus, c.retryable, c.message]).toEqual([
      "ConnectionError",
      0,
      true,
      "A: ConnectionError: connection failed (ECONNREFUSED)",
    ]);
  });

  it("maps an unparseable body by the HTTP status it came with", () => {
    const syntax = { name: "SyntaxError", message: "Unexpected '<'", at: 1, text: "<html>" };
    expect(toCloudError("A", syntax, ctx(502))).toMatchObject({
      code: "HttpError.502",
      httpStatus: 502,
      retryable: true,
    });
    expect(toCloudError("A", syntax, ctx(403))).toMatchObject({ code: "HttpError.403", retryable: false });
    expect(toCloudError("A", syntax, ctx(200))).toMatchObject({ code: "InvalidResponse", retryable: false });
  });

  it("anything else is Unexpected, scrubbed", () => {
    const e = toCloudError("A", new TypeError("boom at http://host/?x=THE-SECRET"), ctx());
    expect(e.code).toBe("Unexpected");
    expect(e.message).not.toContain("THE-SECRET");
    expect(e.message).not.toContain("http://");
    expect(e.retryable).toBe(false);
  });
});

describe("the code table (cloud/codes.ts)", () => {
  it.each([
    ["InvalidVSwitchId.IpNotEnough", "vSwitchExhausted"],
    ["QuotaExceeded.PrivateIpAddress", "vSwitchExhausted"],
    ["EniPerInstanceLimitExceeded", "eniLimit"],
    ["InvalidEniId.NotFound", "gone"],
    ["InvalidIp.IpUnassigned", "gone"],
    ["Throttling.DeepPageSkip", "retry"],
    ["Operation.Conflict.Eni", "retry"],
    ["InvalidParameter", undefined],
    ["InvalidVSwitchId.IpNotEnough.More", undefined],
  ])("%s is treated as %s", (code, treatment) => {
    expect(treatmentOf(code)).toBe(treatment);
  });

  it("isTreated asks the table about a CloudError only", () => {
    const e = new CloudError({
      action: "CreateNetworkInterface",
      code: "QuotaExceeded.PrivateIpAddress",
      message: "x",
    });
    expect(isTreated(e, "vSwitchExhausted")).toBe(true);
    expect(isTreated(e, "eniLimit")).toBe(false);
    expect(isTreated(new Error("QuotaExceeded.PrivateIpAddress"), "vSwitchExhausted")).toBe(false);
  });

  it("gives every code a documented HTTP status and message", () => {
    for (const [code, info] of Object.entries(CLOUD_ERRORS)) {
      expect([400, 403, 404, 409, 500, 503], code).toContain(info.status);
      expect(info.message.length, code).toBeGreaterThan(10);
    }
  });
});
