// vSwitch CIDR reservations (type prefix), as the VPC documents them: at most
// 10 per vSwitch and IP version, a proper subset of the vSwitch's CIDR block
// that holds none of its system addresses (IPv4: the first and the last three;
// IPv6: the first and the last nine), a mask no longer than /28 (IPv4) or /80
// (IPv6). Creation and deletion are asynchronous: Assigning → Assigned, and
// Releasing → gone, after the action's transition latency. Single addresses
// are never allocated from inside a reservation; prefixes only from an
// Assigned one.

import { SchemaError } from "../../lib/schema.js";
import {
  blocksOf,
  type Family,
  formatNet,
  lastOf,
  type Net,
  netContains,
  netsOverlap,
  netWithin,
  parseNet,
} from "./addr.js";
import { reservationUsage } from "./addressing.js";
import { fail } from "./errors.js";
import {
  isoSeconds,
  PREFIX_LENGTH,
  randomId,
  type SimReservation,
  type SimState,
  type SimVSwitch,
  schedule,
  usableRange6,
} from "./state.js";
import type { World } from "./world.js";

/** Documented: at most 10 reserved IPv4 and 10 reserved IPv6 CIDR blocks per vSwitch. */
const MAX_RESERVATIONS_PER_VSWITCH = 10;

export interface NewReservation {
  vSwitchId: string;
  family: Family;
  /** Exactly one of cidr (already a Net of the family) and mask. */
  cidr?: Net;
  mask?: number;
  name: string;
  description: string;
  tags: [string, string][];
}

/** The vSwitch's CIDR block of a family, or the documented error for IPv6 on a vSwitch without it. */
function vSwitchNet(vsw: SimVSwitch, family: Family): Net {
  if (family === 4) return { family: 4, base: BigInt(vsw.cidr.base), prefix: vsw.cidr.prefix };
  if (!vsw.ipv6)
    fail("InvalidVSwitch.Ipv6NotTurnOn", `The specified VSwitch "${vsw.id}" ipv6 function not turn on.`);
  return vsw.ipv6.net;
}

/** Whether a block holds one of the vSwitch's system addresses. */
function holdsSystemAddress(outer: Net, net: Net): boolean {
  const first = outer.family === 4 ? outer.base + 1n : usableRange6(outer).first;
  const last = outer.family === 4 ? lastOf(outer) - 3n : usableRange6(outer).last;
  return net.base < first || lastOf(net) > last;
}

const overlapsReservation = (vsw: SimVSwitch, net: Net): boolean =>
  [...vsw.reservations.values()].some((r) => netsOverlap(r.net, net));

function singlesIn(vsw: SimVSwitch, net: Net): boolean {
  const values = net.family === 4 ? [...vsw.used].map(BigInt) : [...(vsw.ipv6?.used ?? [])];
  return values.some((v) => netContains(net, v));
}

function checkNamed(vsw: SimVSwitch, outer: Net, net: Net): Net {
  const max = PREFIX_LENGTH[net.family];
  if (!netWithin(net, outer) || net.prefix <= outer.prefix)
    fail(
      "InvalidParameter",
      `The reserved CIDR block ${formatNet(net)} is not a proper subset of the VSwitch.`,
    );
  if (net.prefix > max)
    fail("InvalidParameter", `The mask of a reserved IPv${net.family} CIDR block cannot exceed ${max}.`);
  if (holdsSystemAddress(outer, net))
    fail(
      "InvalidParameter",
      `The reserved CIDR block ${formatNet(net)} holds a system address of the VSwitch.`,
    );
  if (overlapsReservation(vsw, net)) fail("InvalidCidrBlock.Overlapped");
  return net;
}

/** The first block of the mask that is free of system addresses, reservations and assigned addresses. */
function pickBlock(vsw: SimVSwitch, outer: Net, mask: number): Net {
  const min = outer.family === 4 ? outer.prefix + 2 : outer.prefix + 1;
  if (mask < min || mask > PREFIX_LENGTH[outer.family])
    fail(
      "InvalidParameter",
      `VSwitchCidrReservationMask must be between ${min} and ${PREFIX_LENGTH[outer.family]}.`,
    );
  for (const net of blocksOf(outer, mask))
    if (!holdsSystemAddress(outer, net) && !overlapsReservation(vsw, net) && !singlesIn(vsw, net)) return net;
  return fail(
    "InvalidVSwitchId.IpNotEnough",
    `The specified VSwitch "${vsw.id}" has no free /${mask} block.`,
  );
}

/** Validates a new reservation and the vSwitch's quota; returns its CIDR. Nothing changes. */
export function planReservation(state: SimState, req: NewReservation): Net {
  const vsw = state.vSwitches.get(req.vSwitchId);
  if (!vsw) return fail("InvalidVSwitchId.NotFound");
  const outer = vSwitchNet(vsw, req.family);
  const same = [...vsw.reservations.values()].filter((r) => r.family === req.family).length;
  if (same >= MAX_RESERVATIONS_PER_VSWITCH) fail("QuotaExceeded.VSwitchCidrReservation");
  return req.cidr ? checkNamed(vsw, outer, req.cidr) : pickBlock(vsw, outer, req.mask ?? 0);
}

/** Creates a reservation (Assigning); it becomes Assigned after `delayMs`. */
export function createReservation(state: SimState, req: NewReservation, delayMs: number): SimReservation {
  const net = planReservation(state, req);
  const vsw = state.vSwitches.get(req.vSwitchId)!;
  const r: SimReservation = {
    id: randomId("vcr-"),
    vSwitchId: vsw.id,
    family: req.family,
    net,
    cidrBlock: formatNet(net),
    name: req.name,
    description: req.description,
    status: "Assigning",
    creationTime: isoSeconds(state.clock.now()),
    seq: state.seq++,
    tags: req.tags.map(([k, v]) => [k, v]),
  };
  vsw.reservations.set(r.id, r);
  schedule(state, r.id, delayMs, async () => {
    if (vsw.reservations.get(r.id) === r && r.status === "Assigning") r.status = "Assigned";
  });
  return r;
}

export function findReservation(state: SimState, id: string): SimReservation {
  for (const vsw of state.vSwitches.values()) {
    const r = vsw.reservations.get(id);
    if (r) return r;
  }
  return fail("ResourceNotFound.VSwitchCidrReservation");
}

/** Starts releasing a reservation whose prefixes are all unassigned; it is gone after `delayMs`. */
export function deleteReservation(state: SimState, r: SimReservation, delayMs: number): void {
  if (r.status !== "Assigned") fail("IncorrectStatus.VSwitchCidrReservation");
  if (reservationUsage(state, r).assigned > 0) fail("DependencyViolation.VSwitchCidrReservation");
  r.status = "Releasing";
  const vsw = state.vSwitches.get(r.vSwitchId)!;
  schedule(state, r.id, delayMs, async () => {
    if (vsw.reservations.get(r.id) === r && r.status === "Releasing") vsw.reservations.delete(r.id);
  });
}

/**
 * The world file's reserved blocks, Assigned from the start, as if created
 * before the simulator began. A block the API would refuse fails with the
 * world key and the cloud's reason.
 */
export function reserveWorldBlocks(state: SimState, world: World): void {
  world.vSwitches.forEach((s, i) => {
    s.reservations.forEach((block, j) => {
      const path = `vSwitches[${i}].reservations[${j}]`;
      const family: Family = block.includes(":") ? 6 : 4;
      const cidr = parseNet(block, family);
      if (!cidr) throw new SchemaError(path, `${block} is not an IPv${family} CIDR block`);
      try {
        const r = createReservation(
          state,
          { vSwitchId: s.vSwitchId, family, cidr, name: "", description: "", tags: [] },
          0,
        );
        r.status = "Assigned";
      } catch (e) {
        throw new SchemaError(path, `${block}: ${(e as Error).message}`);
      }
    });
  });
}
