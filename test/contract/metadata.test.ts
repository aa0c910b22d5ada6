// The instance metadata service under /meta/<instanceId>/latest/: the
// hardened-mode token flow, instance items, and per-ENI items that follow
// Attach, Detach, Assign and Unassign.

import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { type AssignResponse, simHarness, ZONE } from "../helpers/sim.js";

const h = simHarness();
const TTL = "X-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN = "X-aliyun-ecs-metadata-token";

describe("token flow", () => {
  it("PUT /latest/api/token gives a token that GETs accept; bad ttl → 400, bad token → 401", async () => {
    const c = await h.start();
    const t = await c.meta("i-a", "api/token", { method: "PUT", headers: { [TTL]: "21600" } });
    expect(t.status).toBe(200);
    expect(t.body).toMatch(/^\S{16,}$/);
    expect(await c.metaOk("i-a", "meta-data/instance-id", { [TOKEN]: t.body })).toBe("i-a");

    for (const ttl of ["0", "21601", "-1", "abc"]) {
      const r = await c.meta("i-a", "api/token", { method: "PUT", headers: { [TTL]: ttl } });
      expect(r.status, `ttl ${ttl}`).toBe(400);
    }
    const noTtl = await c.meta("i-a", "api/token", { method: "PUT" });
    expect(noTtl.status).toBe(400);
    const bad = await c.meta("i-a", "meta-data/instance-id", { headers: { [TOKEN]: "not-a-token" } });
    expect(bad.status).toBe(401);
    // A token is bound to the instance it was issued for.
    const other = await c.meta("i-b", "meta-data/instance-id", { headers: { [TOKEN]: t.body } });
    expect(other.status).toBe(401);
    // Without a token, the default (optional) mode answers.
    expect(await c.metaOk("i-a", "meta-data/instance-id")).toBe("i-a");
  });

  it("a token expires after its ttl (by the simulator's clock)", async () => {
    let offset = 0;
    const c = await h.start({}, { clock: { now: () => Date.now() + offset } });
    const t = await c.meta("i-a", "api/token", { method: "PUT", headers: { [TTL]: "60" } });
    expect(await c.metaOk("i-a", "meta-data/region-id", { [TOKEN]: t.body })).toBe("cn-hangzhou");
    offset = 61_000;
    expect((await c.meta("i-a", "meta-data/region-id", { headers: { [TOKEN]: t.body } })).status).toBe(401);
  });

  it("X-Forwarded-For → 403", async () => {
    const c = await h.start();
    const r = await c.meta("i-a", "meta-data/instance-id", { headers: { "X-Forwarded-For": "10.0.0.1" } });
    expect(r.status).toBe(403);
    const t = await c.meta("i-a", "api/token", {
      method: "PUT",
      headers: { [TTL]: "60", "X-Forwarded-For": "10.0.0.1" },
    });
    expect(t.status).toBe(403);
  });

  it("metadata.requireToken: 403 without a token, 200 with one", async () => {
    const c = await h.start({ metadata: { requireToken: true } });
    expect((await c.meta("i-a", "meta-data/instance-id")).status).toBe(403);
    const t = await c.meta("i-a", "api/token", { method: "PUT", headers: { [TTL]: "300" } });
    expect(t.status).toBe(200);
    expect(await c.metaOk("i-a", "meta-data/instance-id", { [TOKEN]: t.body })).toBe("i-a");
  });

  it("an unknown instance or item → 404", async () => {
    const c = await h.start();
    expect((await c.meta("i-nope", "meta-data/instance-id")).status).toBe(404);
    expect((await c.meta("i-a", "meta-data/no-such-item")).status).toBe(404);
    expect((await c.meta("i-a", "meta-data/network/interfaces/macs/00:16:3e:00:00:00/gateway")).status).toBe(
      404,
    );
  });
});

describe("instance items", () => {
  it("instance-id, region-id, zone-id, vswitch-id, vpc-id and the primary ENI", async () => {
    const c = await h.start();
    const get = (p: string) => c.metaOk("i-b", `meta-data/${p}`);
    expect(await get("instance-id")).toBe("i-b");
    expect(await get("region-id")).toBe("cn-hangzhou");
    expect(await get("zone-id")).toBe(ZONE);
    expect(await get("vswitch-id")).toBe("vsw-a");
    expect(await get("vpc-id")).toBe("vpc-contract");
    expect(await get("vpc-cidr-block")).toBe("10.0.0.0/16");
    expect(await get("vswitch-cidr-block")).toBe("10.0.1.0/24");
    expect(await get("instance/instance-type")).toBe("ecs.t.big");
    const [primary] = await c.describeAll({ InstanceId: "i-b", Type: "Primary" });
    expect(await get("mac")).toBe(primary!.MacAddress);
    expect(await get("private-ipv4")).toBe(primary!.PrivateIpAddress);
    // network/interfaces/macs/ lists `mac/` lines, here just the primary's.
    expect(await get("network/interfaces/macs/")).toBe(`${primary!.MacAddress}/`);
  });
});

describe("per-ENI items", () => {
  it("a secondary ENI's MAC appears only once the attach completes, and disappears after detach", async () => {
    const c = await h.start({ latencyMs: { AttachNetworkInterface: 150, DetachNetworkInterface: 150 } });
    const [primary] = await c.describeAll({ InstanceId: "i-a", Type: "Primary" });
    const eni = await c.create({ VSwitchId: "vsw-tiny", SecondaryPrivateIpAddressCount: 1 });
    await c.call("AttachNetworkInterface", { NetworkInterfaceId: eni.NetworkInterfaceId, InstanceId: "i-a" });
    expect((await c.mustEni(eni.NetworkInterfaceId)).Status).toBe("Attaching");
    expect(await c.macs("i-a")).toEqual([`${primary!.MacAddress}/`]);
    const base = `meta-data/network/interfaces/macs/${eni.MacAddress}`;
    expect((await c.meta("i-a", `${base}/network-interface-id`)).status).toBe(404);

    await c.waitStatus(eni.NetworkInterfaceId, "InUse");
    const body = await c.metaOk("i-a", "meta-data/network/interfaces/macs/");
    expect(body.split("\n")).toEqual([`${primary!.MacAddress}/`, `${eni.MacAddress}/`]);
    expect(body.endsWith("\n")).toBe(false);
    // Not on the other instance.
    expect(await c.macs("i-b")).not.toContain(`${eni.MacAddress}/`);

    expect(await c.metaOk("i-a", `${base}/network-interface-id`)).toBe(eni.NetworkInterfaceId);
    expect(await c.metaOk("i-a", `${base}/gateway`)).toBe("10.0.9.5"); // third from last of 10.0.9.0/29
    expect(await c.metaOk("i-a", `${base}/vswitch-cidr-block`)).toBe("10.0.9.0/29");
    expect(await c.metaOk("i-a", `${base}/vswitch-id`)).toBe("vsw-tiny");
    expect(await c.metaOk("i-a", `${base}/netmask`)).toBe("255.255.255.248");
    expect(await c.metaOk("i-a", `${base}/primary-ip-address`)).toBe(eni.PrivateIpAddress);
    const ips = eni.PrivateIpSets.PrivateIpSet.map((s) => s.PrivateIpAddress);
    expect(JSON.parse(await c.metaOk("i-a", `${base}/private-ipv4s`))).toEqual(ips);
    // The primary ENI's gateway is the third from last of its /24.
    expect(await c.metaOk("i-a", `meta-data/network/interfaces/macs/${primary!.MacAddress}/gateway`)).toBe(
      "10.0.1.253",
    );

    await c.call("DetachNetworkInterface", { NetworkInterfaceId: eni.NetworkInterfaceId, InstanceId: "i-a" });
    await c.waitStatus(eni.NetworkInterfaceId, "Available");
    expect(await c.macs("i-a")).toEqual([`${primary!.MacAddress}/`]);
    expect((await c.meta("i-a", `${base}/network-interface-id`)).status).toBe(404);
  });

  it("private-ipv4s is a one-line JSON array of quoted strings that follows Assign and Unassign", async () => {
    const c = await h.start();
    const eni = await c.create();
    await c.attach(eni.NetworkInterfaceId, "i-b");
    const path = `meta-data/network/interfaces/macs/${eni.MacAddress}/private-ipv4s`;
    const read = async (): Promise<string[]> => {
      const body = await c.metaOk("i-b", path);
      expect(body).not.toContain("\n");
      expect(body).toMatch(/^\["[0-9.]+"(,"[0-9.]+")*\]$/);
      return JSON.parse(body) as string[];
    };
    expect(await read()).toEqual([eni.PrivateIpAddress]);
    const a = await c.call<AssignResponse>("AssignPrivateIpAddresses", {
      NetworkInterfaceId: eni.NetworkInterfaceId,
      SecondaryPrivateIpAddressCount: 3,
    });
    const added = a.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress;
    expect(await read()).toEqual([eni.PrivateIpAddress, ...added]);
    await c.call("UnassignPrivateIpAddresses", {
      NetworkInterfaceId: eni.NetworkInterfaceId,
      "PrivateIpAddress.1": added[1]!,
    });
    expect(await read()).toEqual([eni.PrivateIpAddress, added[0], added[2]]);
    expect(
      await c.metaOk("i-b", `meta-data/network/interfaces/macs/${eni.MacAddress}/primary-ip-address`),
    ).toBe(eni.PrivateIpAddress);
  });
});

describe("/latest/ without an instance in the path, as at 100.100.100.200", () => {
  it("answers the instance whose primary IP the request comes from; any other source → 404", async () => {
    // Loopback addresses stand in for primary IPs: a client can bind any 127.x source.
    const c = await h.start({
      vpc: { vpcId: "vpc-contract", cidr: "127.0.0.0/16" },
      vSwitches: [{ vSwitchId: "vsw-a", zoneId: ZONE, cidr: "127.0.1.0/24" }],
      instances: [
        {
          instanceId: "i-a",
          instanceType: "ecs.t.small",
          zoneId: ZONE,
          vSwitchId: "vsw-a",
          primaryIp: "127.0.1.5",
        },
        {
          instanceId: "i-b",
          instanceType: "ecs.t.small",
          zoneId: ZONE,
          vSwitchId: "vsw-a",
          primaryIp: "127.0.1.6",
        },
      ],
    });
    const get = (from: string, path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request(`${c.url}/latest/${path}`, { localAddress: from }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => {
            body += d.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    expect(await get("127.0.1.5", "meta-data/instance-id")).toEqual({ status: 200, body: "i-a" });
    expect(await get("127.0.1.6", "meta-data/instance-id")).toEqual({ status: 200, body: "i-b" });
    expect(await get("127.0.1.6", "meta-data/private-ipv4")).toEqual({ status: 200, body: "127.0.1.6" });
    const stranger = await get("127.0.1.99", "meta-data/instance-id");
    expect(stranger.status).toBe(404);
    expect(stranger.body).toMatch(/no instance has the primary IP 127\.0\.1\.99/);
  });
});
