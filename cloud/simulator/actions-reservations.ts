// vSwitch CIDR reservations (VPC 2016-04-28): CreateVSwitchCidrReservation
// (asynchronous: Assigning, then Assigned after the action's latency),
// ListVSwitchCidrReservations and DeleteVSwitchCidrReservation (Releasing,
// then gone). Type "prefix" is the only type; IpVersion IPv4 or IPv6.

import type {
  SimAction,
  WireListVSwitchCidrReservationsResponse,
  WireVSwitchCidrReservation,
} from "../types.js";
import { bitsOf, type Family, parseNet } from "./addr.js";
import { reservationUsage } from "./addressing.js";
import { fail, invalid } from "./errors.js";
import { decodeToken, encodeToken, type Handler, idempotent, queryKey, region } from "./handler.js";
import {
  boolean,
  cidrParam,
  exclusive,
  integer,
  list,
  optional,
  type Params,
  required,
  tags,
} from "./params.js";
import {
  createReservation,
  deleteReservation,
  findReservation,
  type NewReservation,
  planReservation,
} from "./reservations.js";
import type { SimReservation, SimState } from "./state.js";

const RESERVATION_ID = /^vcr-[a-z0-9]{1,64}$/;
const NAME = /^[A-Za-z\u4e00-\u9fa5][\w\u4e00-\u9fa5-]*$/;

/** IpVersion: IPv4 (the default) or IPv6; undefined when absent and `orDefault` is false. */
function ipVersion(p: Params, orDefault: boolean): Family | undefined {
  const v = optional(p, "IpVersion");
  if (v === undefined) return orDefault ? 4 : undefined;
  if (v !== "IPv4" && v !== "IPv6")
    fail("InvalidParameter", invalid("IpVersion", "must be IPv4 or IPv6").message);
  return v === "IPv4" ? 4 : 6;
}

/** VSwitchCidrReservationType: only "prefix" exists (accepted in any case, as ROS and Terraform spell it). */
function reservationType(p: Params): void {
  const t = optional(p, "VSwitchCidrReservationType");
  if (t !== undefined && t.toLowerCase() !== "prefix")
    fail("InvalidParameter", invalid("VSwitchCidrReservationType", "must be prefix").message);
}

/** Name (1–128) or description (1–256): starts with a letter or Chinese character, no http(s)://. */
function text(p: Params, key: string, max: number, pattern?: RegExp): string {
  const v = optional(p, key) ?? "";
  if (v === "") return v;
  if (
    v.length > max ||
    /^https?:\/\//.test(v) ||
    !/^[A-Za-z\u4e00-\u9fa5]/.test(v) ||
    (pattern && !pattern.test(v))
  )
    fail("InvalidParameter", invalid(key).message);
  return v;
}

function dryRun(p: Params): void {
  if (boolean(p, "DryRun")) fail("DryRunOperation");
}

function newReservation(p: Params): NewReservation {
  const family = ipVersion(p, true) ?? 4;
  reservationType(p);
  const cidr = cidrParam(p, "VSwitchCidrReservationCidr", family);
  const mask = integer(p, "VSwitchCidrReservationMask", 1, bitsOf(family));
  exclusive([
    { label: "VSwitchCidrReservationCidr", present: cidr !== undefined },
    { label: "VSwitchCidrReservationMask", present: mask !== undefined },
  ]);
  if (cidr === undefined && mask === undefined) required(p, "VSwitchCidrReservationCidr");
  const net = cidr === undefined ? undefined : parseNet(cidr, family);
  return {
    vSwitchId: required(p, "VSwitchId"),
    family,
    ...(net ? { cidr: net } : {}),
    ...(mask !== undefined ? { mask } : {}),
    name: text(p, "VSwitchCidrReservationName", 128, NAME),
    description: text(p, "VSwitchCidrReservationDescription", 256),
    tags: tags(p),
  };
}

const createVSwitchCidrReservation: Handler = (ctx, p) => {
  region(ctx, p);
  const req = newReservation(p);
  if (boolean(p, "DryRun")) {
    planReservation(ctx.state, req);
    dryRun(p);
  }
  return idempotent(ctx, "CreateVSwitchCidrReservation", p, async () => {
    const r = createReservation(ctx.state, req, ctx.transitionMs("CreateVSwitchCidrReservation"));
    return { VSwitchCidrReservationId: r.id };
  });
};

const deleteVSwitchCidrReservation: Handler = (ctx, p) => {
  region(ctx, p);
  const id = required(p, "VSwitchCidrReservationId");
  if (!RESERVATION_ID.test(id)) fail("ResourceNotFound.VSwitchCidrReservation");
  const r = findReservation(ctx.state, id);
  dryRun(p);
  return idempotent(ctx, "DeleteVSwitchCidrReservation", p, async () => {
    deleteReservation(ctx.state, r, ctx.transitionMs("DeleteVSwitchCidrReservation"));
    return {};
  });
};

export function renderReservation(state: SimState, r: SimReservation): WireVSwitchCidrReservation {
  const usage = reservationUsage(state, r);
  return {
    VSwitchCidrReservationId: r.id,
    VSwitchCidrReservationCidr: r.cidrBlock,
    VSwitchCidrReservationName: r.name,
    VSwitchCidrReservationDescription: r.description,
    VSwitchId: r.vSwitchId,
    VpcId: state.vpcId,
    IpVersion: r.family === 4 ? "IPv4" : "IPv6",
    Type: "prefix",
    Status: r.status,
    AssignedCidrCount: usage.assigned,
    AvailableCidrCount: usage.available,
    CreationTime: r.creationTime,
    Tags: r.tags.map(([Key, Value]) => ({ Key, Value })),
  };
}

const listVSwitchCidrReservations: Handler = (ctx, p) => {
  region(ctx, p);
  const vsw = ctx.state.vSwitches.get(required(p, "VSwitchId"));
  const ids = new Set(list(p, "VSwitchCidrReservationIds", 10));
  const family = ipVersion(p, false);
  reservationType(p);
  const max = integer(p, "MaxResults", 1, 100) ?? 10;
  const query = queryKey(p);
  const after = decodeToken(optional(p, "NextToken"), query);
  const all = [...(vsw?.reservations.values() ?? [])]
    .filter((r) => (ids.size === 0 || ids.has(r.id)) && (family === undefined || r.family === family))
    .sort((a, b) => a.seq - b.seq);
  const page = all.filter((r) => r.seq > after).slice(0, max);
  const last = page[page.length - 1];
  const more = last !== undefined && all.some((r) => r.seq > last.seq);
  const body: Omit<WireListVSwitchCidrReservationsResponse, "RequestId"> = {
    NextToken: more && last ? encodeToken(last.seq, query) : "",
    MaxResults: max,
    TotalCount: all.length,
    VSwitchCidrReservations: page.map((r) => renderReservation(ctx.state, r)),
  };
  return body;
};

/** The three actions, for the simulator's action table. */
export function reservationsActions(
  version: string,
): Record<
  Extract<SimAction, `${string}VSwitchCidrReservation${string}`>,
  { version: string; handler: Handler }
> {
  return {
    CreateVSwitchCidrReservation: { version, handler: createVSwitchCidrReservation },
    ListVSwitchCidrReservations: { version, handler: listVSwitchCidrReservations },
    DeleteVSwitchCidrReservation: { version, handler: deleteVSwitchCidrReservation },
  };
}
