// IPv6 on ENIs (ECS 2014-05-26): AssignIpv6Addresses and
// UnassignIpv6Addresses, with addresses (Ipv6Address.N / Ipv6AddressCount)
// or /80 prefixes (Ipv6Prefix.N / Ipv6PrefixCount), never both in one call;
// and the same parameters on CreateNetworkInterface.

import type { WireAssignIpv6AddressesResponse } from "../types.js";
import { assignIpv6s, assignPrefixes, unassignIpv6s, unassignPrefixes } from "./addressing.js";
import {
  type AddressRequest,
  addressRequest,
  eniParam,
  type Handler,
  IPV6_ADDRESSES,
  IPV6_PREFIXES,
  idempotent,
  region,
} from "./handler.js";
import { exclusive, ipv6List, type Params, prefixList, required } from "./params.js";
import { PREFIX_LENGTH, type SimEni, type SimState } from "./state.js";

export interface Ipv6Request {
  addresses?: AddressRequest;
  prefixes?: AddressRequest;
  /** Assigns what was asked for; returns the addresses and the prefixes. */
  apply(state: SimState, eni: SimEni): Promise<{ addresses: string[]; prefixes: string[] }>;
}

/** The IPv6 parameters of a call: addresses or prefixes, never both. */
export function withIpv6(p: Params): Ipv6Request {
  const addresses = addressRequest(p, IPV6_ADDRESSES);
  const prefixes = addressRequest(p, IPV6_PREFIXES);
  exclusive([
    { label: "Ipv6Address.N or Ipv6AddressCount", present: addresses !== undefined },
    { label: "Ipv6Prefix.N or Ipv6PrefixCount", present: prefixes !== undefined },
  ]);
  return {
    ...(addresses ? { addresses } : {}),
    ...(prefixes ? { prefixes } : {}),
    async apply(state, eni) {
      const a = addresses ? await assignIpv6s(state, eni, addresses.count, addresses.named) : [];
      const b = prefixes ? await assignPrefixes(state, eni, 6, prefixes.count, prefixes.named) : [];
      return { addresses: a, prefixes: b };
    },
  };
}

export const assignIpv6Addresses: Handler = (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const req = withIpv6(p);
  if (!req.addresses && !req.prefixes) required(p, "Ipv6AddressCount");
  return idempotent(ctx, "AssignIpv6Addresses", p, async () => {
    ctx.lock(eni.id);
    const { addresses, prefixes } = await req.apply(ctx.state, eni);
    const body: Omit<WireAssignIpv6AddressesResponse, "RequestId"> = {
      NetworkInterfaceId: eni.id,
      Ipv6Sets: { Ipv6Address: addresses },
      Ipv6PrefixSets: { Ipv6Prefix: prefixes },
    };
    return body;
  });
};

export const unassignIpv6Addresses: Handler = async (ctx, p) => {
  region(ctx, p);
  const eni = eniParam(ctx, p);
  const ips = ipv6List(p, "Ipv6Address", 10);
  const prefixes = prefixList(p, "Ipv6Prefix", 6, PREFIX_LENGTH[6], 10);
  exclusive([
    { label: "Ipv6Address.N", present: ips.length > 0 },
    { label: "Ipv6Prefix.N", present: prefixes.length > 0 },
  ]);
  if (ips.length === 0 && prefixes.length === 0) required(p, "Ipv6Address.1");
  ctx.lock(eni.id);
  if (prefixes.length) await unassignPrefixes(ctx.state, eni, 6, prefixes);
  else await unassignIpv6s(ctx.state, eni, ips);
  return {};
};
