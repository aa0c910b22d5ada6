// Fixtures for the prefix, IPv6 and CIDR-reservation contract tests: the
// contract world with IPv6 (the VPC's /56, vsw-a's /64; vsw-j stays IPv4
// only), a dual-stack instance type, and small wrappers for the VPC's
// reservation actions. Response shapes are written from the documentation
// (and the official SDKs' models), shared with the simulator through
// cloud/types.ts like the rest of the contract tests.

import { expect } from "vitest";
import type {
  WireAssignIpv6AddressesResponse,
  WireListVSwitchCidrReservationsResponse,
  WireVSwitchCidrReservation,
} from "../../cloud/types.js";
import { type AssignResponse, type Cloud, OTHER_ZONE, ZONE } from "../helpers/sim.js";

export type Assign6Response = WireAssignIpv6AddressesResponse;
export type ListReservationsResponse = WireListVSwitchCidrReservationsResponse;
export type Reservation = WireVSwitchCidrReservation;

export const VPC6 = "2408:4005:300:ff00::/56";
export const VSW6 = "2408:4005:300:ff01::/64";
/** The IPv6 gateway of VSW6: the ninth-to-last address of the /64. */
export const GW6 = "2408:4005:300:ff01:ffff:ffff:ffff:fff7";

/**
 * The contract world plus IPv6: vsw-a has VSW6, vsw-j and vsw-tiny none;
 * i-a (ecs.t.small: 4 IPv4, 1 IPv6 per ENI), i-b (ecs.t.big: 10 IPv4, no
 * IPv6) and i-c (ecs.t.dual: 6 IPv4 and 6 IPv6 per ENI, the equal counts
 * dual-stack multi-IP needs), all on vsw-a.
 */
export function dualWorld(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    vpc: { vpcId: "vpc-contract", cidr: "10.0.0.0/16", ipv6Cidr: VPC6 },
    vSwitches: [
      { vSwitchId: "vsw-a", zoneId: ZONE, cidr: "10.0.1.0/24", ipv6Cidr: VSW6 },
      { vSwitchId: "vsw-tiny", zoneId: ZONE, cidr: "10.0.9.0/29" },
      { vSwitchId: "vsw-j", zoneId: OTHER_ZONE, cidr: "10.0.2.0/24" },
    ],
    instanceTypes: [
      {
        instanceTypeId: "ecs.t.small",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 4,
        eniIpv6AddressQuantity: 1,
      },
      { instanceTypeId: "ecs.t.big", eniQuantity: 4, eniPrivateIpAddressQuantity: 10 },
      {
        instanceTypeId: "ecs.t.dual",
        eniQuantity: 3,
        eniPrivateIpAddressQuantity: 6,
        eniIpv6AddressQuantity: 6,
      },
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
      { instanceId: "i-c", instanceType: "ecs.t.dual", zoneId: ZONE, vSwitchId: "vsw-a" },
    ],
    ...over,
  };
}

type Params = Record<string, string | number | boolean | undefined>;

/** CreateVSwitchCidrReservation (VPC API); returns the id. */
export async function createReservation(c: Cloud, params: Params): Promise<string> {
  const r = await c.call<{ RequestId: string; VSwitchCidrReservationId: string }>(
    "CreateVSwitchCidrReservation",
    { VSwitchId: "vsw-a", ...params },
    { api: "vpc" },
  );
  expect(Object.keys(r).sort()).toEqual(["RequestId", "VSwitchCidrReservationId"]);
  expect(r.VSwitchCidrReservationId).toMatch(/^vcr-[a-z0-9]+$/);
  return r.VSwitchCidrReservationId;
}

/** A reservation that is Assigned: created, then every pending transition settled. */
export async function reserve(c: Cloud, params: Params): Promise<string> {
  const id = await createReservation(c, params);
  expect((await c.admin("settle", "POST")).status).toBe(200);
  expect((await reservation(c, id))?.Status).toBe("Assigned");
  return id;
}

export async function listReservations(c: Cloud, params: Params = {}): Promise<ListReservationsResponse> {
  return c.call<ListReservationsResponse>(
    "ListVSwitchCidrReservations",
    { VSwitchId: "vsw-a", ...params },
    { api: "vpc" },
  );
}

export async function reservation(
  c: Cloud,
  id: string,
  vSwitchId = "vsw-a",
): Promise<Reservation | undefined> {
  const r = await listReservations(c, { VSwitchId: vSwitchId, "VSwitchCidrReservationIds.1": id });
  return r.VSwitchCidrReservations[0];
}

export async function assignPrefixes(c: Cloud, eni: string, params: Params): Promise<string[]> {
  const r = await c.call<AssignResponse>("AssignPrivateIpAddresses", { NetworkInterfaceId: eni, ...params });
  return r.AssignedPrivateIpAddressesSet.Ipv4PrefixSet?.Ipv4Prefixes ?? [];
}

export async function assign6(c: Cloud, eni: string, params: Params): Promise<Assign6Response> {
  return c.call<Assign6Response>("AssignIpv6Addresses", { NetworkInterfaceId: eni, ...params });
}

export const prefixesOf = (e: { Ipv4PrefixSets: { Ipv4PrefixSet: { Ipv4Prefix: string }[] } }): string[] =>
  e.Ipv4PrefixSets.Ipv4PrefixSet.map((s) => s.Ipv4Prefix);

export const ipv6sOf = (e: { Ipv6Sets: { Ipv6Set: { Ipv6Address: string }[] } }): string[] =>
  e.Ipv6Sets.Ipv6Set.map((s) => s.Ipv6Address);

export const ipv6PrefixesOf = (e: {
  Ipv6PrefixSets: { Ipv6PrefixSet: { Ipv6Prefix: string }[] };
}): string[] => e.Ipv6PrefixSets.Ipv6PrefixSet.map((s) => s.Ipv6Prefix);
