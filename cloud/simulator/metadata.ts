// The instance metadata service, per instance, under /meta/<instanceId>/latest/,
// and under /latest/ for the instance whose primary private IP the request
// comes from (how ECS tells instances apart at 100.100.100.200).
// A secondary ENI's MAC appears once its attachment has completed;
// private-ipv4s follows Assign and Unassign. Per MAC, as the documented
// metadata items: ipv4-prefixes and ipv6-prefixes (one prefix a line),
// ipv6s (`[a,b]`, unquoted, as the documentation's example and Terway's parser
// have it), ipv6-gateway, vswitch-ipv6-cidr-block and vpc-ipv6-cidr-blocks
// (`[cidr]`); an item with nothing to say is 404, as ipv6s is on ECS when an
// ENI has no IPv6 (Terway relies on that).

import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { formatCidr, parseCidr, prefixToNetmask } from "../../lib/net.js";
import { formatAddr } from "./addr.js";
import type { StsCredentials } from "./auth.js";
import { gateway6Of, gatewayOf, isoSeconds, type SimEni, type SimInstance, type SimState } from "./state.js";

export interface MetadataReply {
  status: number;
  body: string;
  contentType?: string;
}

export interface MetadataService {
  handle(req: IncomingMessage, instanceId: string, path: string): MetadataReply;
}

const TOKEN_TTL_HEADER = "x-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER = "x-aliyun-ecs-metadata-token";

export function createMetadataService(opts: {
  state: SimState;
  requireToken: boolean;
  roleName: string;
  stsTtlSeconds: number;
  issueSts(ttlSeconds: number): StsCredentials;
}): MetadataService {
  const { state } = opts;
  const tokens = new Map<string, { instanceId: string; expires: number }>();
  const stsByInstance = new Map<string, StsCredentials>();

  const text = (body: string): MetadataReply => ({ status: 200, body, contentType: "text/plain" });
  const notFound: MetadataReply = { status: 404, body: "Not Found" };

  const visibleEnis = (inst: SimInstance): SimEni[] =>
    [...state.enis.values()]
      .filter((e) => e.instanceId === inst.id && e.status === "InUse")
      .sort((a, b) => (a.type === "Primary" ? -1 : b.type === "Primary" ? 1 : a.seq - b.seq));

  const ramCredentials = (inst: SimInstance): MetadataReply => {
    let cred = stsByInstance.get(inst.id);
    const now = state.clock.now();
    // Rotate well before expiry, as the real service does.
    if (!cred || cred.expiresAt - now < ((cred.expiresAt - cred.issuedAt) * 1) / 3) {
      cred = opts.issueSts(opts.stsTtlSeconds);
      stsByInstance.set(inst.id, cred);
    }
    const body = JSON.stringify({
      AccessKeyId: cred.accessKeyId,
      AccessKeySecret: cred.accessKeySecret,
      Expiration: isoSeconds(cred.expiresAt),
      SecurityToken: cred.securityToken,
      LastUpdated: isoSeconds(cred.issuedAt),
      Code: "Success",
    });
    return { status: 200, body, contentType: "application/json" };
  };

  /** A list item: 404 when empty, as on ECS. */
  const listOr404 = (values: string[], body: string): MetadataReply =>
    values.length ? text(body) : notFound;

  /** The per-MAC items about IPv4 prefixes and IPv6, or undefined for another item. */
  const eniItem6 = (eni: SimEni, item: string): MetadataReply | undefined => {
    const v6 = state.vSwitches.get(eni.vSwitchId)!.ipv6;
    switch (item) {
      case "ipv4-prefixes":
        return listOr404(eni.ipv4Prefixes, eni.ipv4Prefixes.join("\n"));
      case "ipv6s":
        return listOr404(eni.ipv6s, `[${eni.ipv6s.join(",")}]`);
      case "ipv6-prefixes":
        return listOr404(eni.ipv6Prefixes, eni.ipv6Prefixes.join("\n"));
      case "ipv6-gateway":
        return v6 ? text(formatAddr(gateway6Of(v6.net), 6)) : notFound;
      case "vswitch-ipv6-cidr-block":
        return v6 ? text(v6.cidrBlock) : notFound;
      case "vpc-ipv6-cidr-blocks":
        return state.vpcIpv6Cidr ? text(`[${state.vpcIpv6Cidr}]`) : notFound;
      default:
        return undefined;
    }
  };

  const eniItems = (eni: SimEni): string[] => {
    const v6 = state.vSwitches.get(eni.vSwitchId)!.ipv6 !== undefined;
    return [
      "gateway",
      ...(eni.ipv4Prefixes.length ? ["ipv4-prefixes"] : []),
      ...(v6 ? ["ipv6-gateway"] : []),
      ...(eni.ipv6Prefixes.length ? ["ipv6-prefixes"] : []),
      ...(eni.ipv6s.length ? ["ipv6s"] : []),
      "netmask",
      "network-interface-id",
      "primary-ip-address",
      "private-ipv4s",
      "vpc-cidr-block",
      "vpc-id",
      ...(state.vpcIpv6Cidr ? ["vpc-ipv6-cidr-blocks"] : []),
      "vswitch-cidr-block",
      "vswitch-id",
      ...(v6 ? ["vswitch-ipv6-cidr-block"] : []),
    ];
  };

  const eniItem = (eni: SimEni, item: string): MetadataReply => {
    const vsw = state.vSwitches.get(eni.vSwitchId)!;
    const vpc = parseCidr(state.vpcCidr);
    const v6 = eniItem6(eni, item);
    if (v6) return v6;
    switch (item) {
      case "":
        return text(eniItems(eni).join("\n"));
      case "network-interface-id":
        return text(eni.id);
      case "gateway":
        return text(gatewayOf(vsw.cidr));
      case "netmask":
        return text(prefixToNetmask(vsw.cidr.prefix));
      case "vswitch-cidr-block":
        return text(vsw.cidrBlock);
      case "vswitch-id":
        return text(vsw.id);
      case "vpc-id":
        return text(state.vpcId);
      case "vpc-cidr-block":
        return text(formatCidr(vpc));
      case "primary-ip-address":
        return text(eni.ips[0] ?? "");
      case "private-ipv4s":
        return text(JSON.stringify(eni.ips));
      default:
        return notFound;
    }
  };

  const item = (inst: SimInstance, path: string): MetadataReply => {
    const primary = state.enis.get(inst.primaryEniId)!;
    const vsw = state.vSwitches.get(inst.vSwitchId)!;
    switch (path) {
      case "":
        return text(
          [
            "instance-id",
            "instance/",
            "mac",
            "network/",
            "private-ipv4",
            "ram/",
            "region-id",
            "vpc-cidr-block",
            "vpc-id",
            "vswitch-cidr-block",
            "vswitch-id",
            "zone-id",
          ].join("\n"),
        );
      case "instance-id":
        return text(inst.id);
      case "instance/":
        return text("instance-type");
      case "instance/instance-type":
        return text(inst.type.instanceTypeId);
      case "region-id":
        return text(state.regionId);
      case "zone-id":
        return text(inst.zoneId);
      case "vswitch-id":
        return text(inst.vSwitchId);
      case "vswitch-cidr-block":
        return text(vsw.cidrBlock);
      case "vpc-id":
        return text(state.vpcId);
      case "vpc-cidr-block":
        return text(state.vpcCidr);
      case "mac":
        return text(primary.mac);
      case "private-ipv4":
        return text(primary.ips[0] ?? "");
      case "network/":
        return text("interfaces/");
      case "network/interfaces/":
        return text("macs/");
      case "network/interfaces/macs/":
        return text(
          visibleEnis(inst)
            .map((e) => `${e.mac}/`)
            .join("\n"),
        );
      case "ram/":
        return text("security-credentials/");
      case "ram/security-credentials/":
        return text(opts.roleName);
    }
    if (path === `ram/security-credentials/${opts.roleName}`) return ramCredentials(inst);
    const m = /^network\/interfaces\/macs\/([0-9a-f:]{17})\/?(.*)$/.exec(path);
    if (m) {
      const eni = visibleEnis(inst).find((e) => e.mac === m[1]);
      return eni ? eniItem(eni, m[2]!) : notFound;
    }
    return notFound;
  };

  return {
    handle(req, instanceId, path) {
      const inst = state.instances.get(instanceId);
      if (!inst) return notFound;
      if (req.headers["x-forwarded-for"] !== undefined) return { status: 403, body: "Forbidden" };
      const now = state.clock.now();
      if (path === "api/token") {
        if (req.method !== "PUT") return { status: 405, body: "Method Not Allowed" };
        const ttl = Number(req.headers[TOKEN_TTL_HEADER]);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600)
          return { status: 400, body: "Missing or Invalid Parameters" };
        const token = randomBytes(24).toString("base64url");
        tokens.set(token, { instanceId, expires: now + ttl * 1000 });
        if (tokens.size > 10_000) for (const [t, v] of tokens) if (v.expires < now) tokens.delete(t);
        return text(token);
      }
      if (req.method !== "GET") return { status: 405, body: "Method Not Allowed" };
      const token = req.headers[TOKEN_HEADER];
      if (token !== undefined) {
        const t = tokens.get(String(token));
        if (!t || t.instanceId !== instanceId || t.expires <= now)
          return { status: 401, body: "Unauthorized" };
      } else if (opts.requireToken) {
        return { status: 403, body: "Forbidden" };
      }
      if (!path.startsWith("meta-data/")) return notFound;
      return item(inst, path.slice("meta-data/".length));
    },
  };
}
