import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createMetadataClient,
  type MetadataClientOptions,
  MetadataError,
  MetadataNotFoundError,
  parseList,
  parsePrivateIpv4s,
  parseValue,
} from "../../cloud/metadata.js";

const HOST = "http://127.0.0.1:9470";
const BASE = "/meta/i-node-a";
const META = `${BASE}/latest/meta-data`;
const TOKEN_PATH = `${BASE}/latest/api/token`;

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

function client(over: Partial<MetadataClientOptions> = {}) {
  return createMetadataClient({
    endpoint: `${HOST}${BASE}`,
    timeoutMs: 500,
    backoff: { baseMs: 1, capMs: 2 },
    ...over,
  });
}

function token(value: string, ttl = "21600"): nock.Scope {
  return nock(HOST)
    .matchHeader("x-aliyun-ecs-metadata-token-ttl-seconds", ttl)
    .put(TOKEN_PATH)
    .reply(200, value);
}

function meta(path: string, tok: string | undefined): nock.Interceptor {
  return nock(HOST)
    .matchHeader("x-aliyun-ecs-metadata-token", (v: string | undefined) => v === tok)
    .get(`${META}/${path}`);
}

describe("session token", () => {
  it("PUTs for a token once, then sends it on every GET", async () => {
    const t = token("TOKEN-1");
    const a = meta("instance-id", "TOKEN-1").reply(200, "i-node-a");
    const b = meta("region-id", "TOKEN-1").reply(200, "cn-hangzhou\n");
    const m = client();
    expect(await m.instanceId()).toBe("i-node-a");
    expect(await m.regionId()).toBe("cn-hangzhou");
    t.done();
    a.done();
    b.done();
  });

  it("concurrent first calls share one token request", async () => {
    const t = token("TOKEN-1");
    meta("region-id", "TOKEN-1").reply(200, "cn-hangzhou");
    meta("instance/instance-type", "TOKEN-1").reply(200, "ecs.g7.large");
    meta("vswitch-id", "TOKEN-1").reply(200, "vsw-a");
    const m = client();
    expect(await Promise.all([m.regionId(), m.instanceType(), m.vSwitchId()])).toEqual([
      "cn-hangzhou",
      "ecs.g7.large",
      "vsw-a",
    ]);
    t.done();
  });

  it("renews the token before its TTL runs out", async () => {
    let now = 1_000_000;
    const m = client({ tokenTtlSeconds: 100, now: () => now });
    token("T1", "100");
    meta("instance-id", "T1").times(2).reply(200, "i-node-a");
    await m.instanceId();
    now += 70_000; // 30 s left: still fine (renews with 25 s left)
    await m.instanceId();
    now += 10_000; // 20 s left: renew
    const t2 = token("T2", "100");
    meta("instance-id", "T2").reply(200, "i-node-a");
    await m.instanceId();
    t2.done();
  });

  it("on a 401 fetches a new token and retries once", async () => {
    token("OLD");
    meta("instance-id", "OLD").reply(401, "Unauthorized");
    const t2 = token("NEW");
    const ok = meta("instance-id", "NEW").reply(200, "i-node-a");
    expect(await client().instanceId()).toBe("i-node-a");
    t2.done();
    ok.done();
  });

  it("a second 401 is an error", async () => {
    token("A");
    meta("instance-id", "A").reply(401, "");
    token("B");
    meta("instance-id", "B").reply(401, "");
    const err = await client()
      .instanceId()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as MetadataError).status).toBe(401);
  });

  it("works without tokens when the service has none (404 on the token path)", async () => {
    nock(HOST).put(TOKEN_PATH).reply(404, "");
    const a = meta("instance-id", undefined).reply(200, "i-node-a");
    const b = meta("vswitch-id", undefined).reply(200, "vsw-a");
    const m = client();
    expect(await m.instanceId()).toBe("i-node-a");
    expect(await m.vSwitchId()).toBe("vsw-a");
    a.done();
    b.done();
  });

  it("rejects a TTL outside 1..21600", () => {
    expect(() => client({ tokenTtlSeconds: 21700 })).toThrow(/tokenTtlSeconds/);
    expect(() => client({ tokenTtlSeconds: 0 })).toThrow(/tokenTtlSeconds/);
  });
});

describe("retries", () => {
  it("retries 429 and 5xx, then succeeds", async () => {
    token("T");
    meta("instance-id", "T").reply(429, "slow down");
    meta("instance-id", "T").reply(500, "oops");
    meta("instance-id", "T").reply(503, "oops");
    const ok = meta("instance-id", "T").reply(200, "i-node-a");
    expect(await client().instanceId()).toBe("i-node-a");
    ok.done();
  });

  it("retries a failed token request and connection errors", async () => {
    nock(HOST).put(TOKEN_PATH).reply(500, "");
    token("T");
    meta("instance-id", "T").replyWithError(Object.assign(new Error("reset"), { code: "ECONNRESET" }));
    meta("instance-id", "T").reply(200, "i-node-a");
    expect(await client().instanceId()).toBe("i-node-a");
  });

  it("gives up after `retries` extra attempts", async () => {
    token("T");
    const s = meta("instance-id", "T").times(3).reply(502, "");
    const err = await client({ retries: 2 })
      .instanceId()
      .catch((e: unknown) => e);
    s.done();
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as MetadataError).status).toBe(502);
  });

  it("404 is a typed not-found error, not retried", async () => {
    token("T");
    const s = meta("instance-id", "T").reply(404, "");
    const err = await client()
      .instanceId()
      .catch((e: unknown) => e);
    s.done();
    expect(err).toBeInstanceOf(MetadataNotFoundError);
    expect((err as MetadataNotFoundError).path).toBe("instance-id");
    expect(nock.pendingMocks()).toEqual([]);
  });

  it("times out a request that does not answer", async () => {
    token("T");
    meta("instance-id", "T").delay(300).reply(200, "i-late");
    meta("instance-id", "T").reply(200, "i-node-a");
    expect(await client({ timeoutMs: 50 }).instanceId()).toBe("i-node-a");
  });
});

describe("values", () => {
  it("macs(): one per line, trailing slashes dropped, lower case", async () => {
    token("T");
    meta("network/interfaces/macs/", "T").reply(200, "00:16:3E:AA:BB:CC/\n00:16:3e:aa:bb:dd/\n\n");
    expect(await client().macs()).toEqual(["00:16:3e:aa:bb:cc", "00:16:3e:aa:bb:dd"]);
  });

  it("eni(mac) reads the per-ENI items", async () => {
    token("T");
    const dir = "network/interfaces/macs/00:16:3e:aa:bb:cc";
    meta(`${dir}/network-interface-id`, "T").reply(200, "eni-abc123");
    meta(`${dir}/gateway`, "T").reply(200, "10.0.1.253");
    meta(`${dir}/vswitch-cidr-block`, "T").reply(200, "10.0.1.0/24");
    meta(`${dir}/private-ipv4s`, "T").reply(200, '["10.0.1.5","10.0.1.6"]');
    meta(`${dir}/primary-ip-address`, "T").reply(200, "10.0.1.5");
    meta(`${dir}/ipv6-gateway`, "T").reply(404, "Not Found");
    expect(await client().eni("00:16:3E:AA:BB:CC")).toEqual({
      mac: "00:16:3e:aa:bb:cc",
      eniId: "eni-abc123",
      gateway: "10.0.1.253",
      vSwitchCidr: "10.0.1.0/24",
      privateIps: ["10.0.1.5", "10.0.1.6"],
      primaryIp: "10.0.1.5",
      ipv6Gateway: "",
    });
  });

  it("eni(mac) reads the IPv6 gateway in canonical text, and refuses one that is not an address", async () => {
    token("T");
    const dir = "network/interfaces/macs/00:16:3e:aa:bb:cc";
    const items = (gw6: string) => {
      meta(`${dir}/network-interface-id`, "T").reply(200, "eni-abc123");
      meta(`${dir}/gateway`, "T").reply(200, "10.0.1.253");
      meta(`${dir}/vswitch-cidr-block`, "T").reply(200, "10.0.1.0/24");
      meta(`${dir}/private-ipv4s`, "T").reply(200, '["10.0.1.5"]');
      meta(`${dir}/primary-ip-address`, "T").reply(200, "10.0.1.5");
      meta(`${dir}/ipv6-gateway`, "T").reply(200, gw6);
    };
    items("FD00:10:0:1:FFFF:FFFF:FFFF:FFF7");
    expect((await client().eni("00:16:3e:aa:bb:cc")).ipv6Gateway).toBe("fd00:10:0:1:ffff:ffff:ffff:fff7");
    token("T");
    items("not-an-address");
    await expect(client().eni("00:16:3e:aa:bb:cc")).rejects.toThrow(/ipv6-gateway.*not an IPv6 address/);
  });

  it("eni(mac) refuses a malformed MAC before sending", async () => {
    await expect(client().eni("../../ram/security-credentials")).rejects.toThrow(/invalid MAC/);
  });

  it("instanceId() rejects a value that is not an instance id", async () => {
    token("T");
    meta("instance-id", "T").reply(200, "<html>captive portal</html>");
    await expect(client().instanceId()).rejects.toThrow(/instance-id: unexpected value/);
  });

  it("ramRoles() and ramRoleCredentials(role)", async () => {
    token("T");
    meta("ram/security-credentials/", "T").reply(200, "EniwayRole\n");
    meta("ram/security-credentials/EniwayRole", "T").reply(200, {
      AccessKeyId: "STS.AK",
      AccessKeySecret: "sts-secret",
      Expiration: "2024-11-08T09:44:50Z",
      SecurityToken: "sts-token",
      LastUpdated: "2024-11-08T03:44:50Z",
      Code: "Success",
    });
    const m = client();
    expect(await m.ramRoles()).toEqual(["EniwayRole"]);
    const c = await m.ramRoleCredentials("EniwayRole");
    expect(c).toEqual({
      accessKeyId: "STS.AK",
      accessKeySecret: "sts-secret",
      securityToken: "sts-token",
      expiration: new Date("2024-11-08T09:44:50Z"),
    });
  });

  it("a malformed credentials document errors without echoing it", async () => {
    token("T");
    meta("ram/security-credentials/R", "T").reply(200, '{"AccessKeySecret":"leaky-secret", broken');
    const err = (await client()
      .ramRoleCredentials("R")
      .catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(MetadataError);
    expect(err.message).not.toContain("leaky-secret");
  });

  it("refuses a role name that would escape the path", async () => {
    await expect(client().ramRoleCredentials("../instance-id")).rejects.toThrow(/invalid RAM role name/);
  });
});

describe("parsers", () => {
  it("parsePrivateIpv4s accepts JSON and tolerant bracketed lists", () => {
    expect(parsePrivateIpv4s('["10.0.1.5","10.0.1.6"]')).toEqual(["10.0.1.5", "10.0.1.6"]);
    expect(parsePrivateIpv4s('["10.0.1.5"]\n')).toEqual(["10.0.1.5"]);
    expect(parsePrivateIpv4s("[10.0.1.5, 10.0.1.6]")).toEqual(["10.0.1.5", "10.0.1.6"]);
    expect(parsePrivateIpv4s("['10.0.1.5','10.0.1.6']")).toEqual(["10.0.1.5", "10.0.1.6"]);
    expect(parsePrivateIpv4s("10.0.1.5\n10.0.1.6")).toEqual(["10.0.1.5", "10.0.1.6"]);
    expect(parsePrivateIpv4s("[]")).toEqual([]);
    expect(() => parsePrivateIpv4s('["10.0.1.5","nope"]')).toThrow(/not an IPv4/);
    expect(() => parsePrivateIpv4s("[10.0.1.256]")).toThrow(/not an IPv4/);
  });

  it("parseValue and parseList", () => {
    expect(parseValue("cn-hangzhou\n")).toBe("cn-hangzhou");
    expect(parseValue("\n 10.0.1.0/24 \n")).toBe("10.0.1.0/24");
    expect(parseList("a/\nb\n\n c/ \n")).toEqual(["a", "b", "c"]);
  });
});

describe("get", () => {
  it("refuses paths that would leave latest/meta-data", async () => {
    await expect(client().get("../api/token")).rejects.toThrow(/invalid metadata path/);
    await expect(client().get("instance-id?x=1")).rejects.toThrow(/invalid metadata path/);
  });
});
