// Drift repair's decisions, without root: planRepair over hand-made
// snapshots of a node namespace.

import { describe, expect, it } from "vitest";
import type { Link, NodeState, Route, Rule } from "../../cni/datapath/kernel.js";
import { hostVethName } from "../../cni/datapath/names.js";
import { type Attachment, type EniRef, planRepair, type RepairInput } from "../../cni/datapath/repair.js";
import { ENI_TABLE_BASE, RULE_FROM_POD, RULE_TO_POD } from "../../cni/facts.js";

const ENI: EniRef = { eniId: "eni-a", mac: "00:16:3e:00:00:0a", gateway: "10.0.1.253" };
const ENI_IFINDEX = 3;
const TABLE = ENI_TABLE_BASE + ENI_IFINDEX;
const POD: Attachment = { containerId: "ctr1", ifname: "eth0", ip: "10.0.1.5", eni: ENI };
const HOST = hostVethName(POD.containerId, POD.ifname);

const veth = (ifname: string, ifindex: number, up = true): Link => ({
  ifindex,
  ifname,
  flags: up ? ["BROADCAST", "UP", "LOWER_UP"] : ["BROADCAST"],
  linkinfo: { info_kind: "veth" },
});

/** A node with one ENI (eth1) set up and POD wired through it; `change` edits the snapshot. */
function node(change: (s: NodeState) => void = () => {}): NodeState {
  const s: NodeState = {
    links: [
      { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP"] },
      {
        ifindex: 2,
        ifname: "eth0",
        address: "00:16:3e:00:00:01",
        flags: ["UP"],
        linkinfo: { info_kind: "veth" },
      },
      {
        ifindex: ENI_IFINDEX,
        ifname: "eth1",
        address: ENI.mac,
        flags: ["UP"],
        linkinfo: { info_kind: "veth" },
      },
      veth(HOST, 10),
    ],
    rules: [
      { priority: 0, src: "all", table: "local" },
      { priority: RULE_TO_POD, src: "all", dst: POD.ip, table: "main" },
      { priority: RULE_FROM_POD, src: POD.ip, table: String(TABLE) },
      { priority: 32766, src: "all", table: "main" },
    ],
    routes: [
      { dst: "default", gateway: "10.0.1.253", dev: "eth0" },
      { dst: POD.ip, dev: HOST },
      { dst: "default", gateway: ENI.gateway, dev: "eth1", table: String(TABLE) },
      { dst: ENI.gateway, dev: "eth1", table: String(TABLE) },
    ],
    rules6: [],
    routes6: [],
    neigh6: [],
  };
  change(s);
  return s;
}

const plan = (over: Partial<RepairInput> = {}) =>
  planRepair({
    state: node(),
    enis: [ENI],
    known: new Set([ENI.eniId]),
    attachments: [POD],
    busy: new Set(),
    ...over,
  });

const EMPTY = { bringUp: [], forget: [], remove: [], restore: [] };

describe("planRepair", () => {
  it("does nothing on a healthy node", () => {
    expect(plan()).toMatchObject({ ...EMPTY, report: { enisBroughtUp: [], restored: [], removed: [] } });
  });

  it("sets up an ENI it has not set up since it started (a restart), without calling it broken", () => {
    const p = plan({ known: new Set() });
    expect(p.bringUp).toEqual([ENI]);
    expect(p.report.enisBroughtUp).toEqual([]);
    expect(p.restore).toEqual([]);
  });

  it("brings up an ENI whose device is down or whose table lost its default route", () => {
    const down = plan({ state: node((s) => (s.links[2]!.flags = [])) });
    expect(down.bringUp).toEqual([ENI]);
    expect(down.report.enisBroughtUp).toEqual([ENI.eniId]);
    const noRoute = plan({
      state: node((s) => (s.routes = s.routes.filter((r) => r.dst !== "default" || !r.table))),
    });
    expect(noRoute.report.enisBroughtUp).toEqual([ENI.eniId]);
  });

  it("forgets an ENI whose device is gone and restores nothing through it", () => {
    const p = plan({
      state: node((s) => {
        s.links = s.links.filter((l) => l.ifname !== "eth1");
        s.rules = s.rules.filter((r) => r.priority !== RULE_FROM_POD);
      }),
    });
    expect(p.forget).toEqual([ENI.eniId]);
    expect(p.bringUp).toEqual([]);
    expect(p.restore).toEqual([]);
    expect(p.remove).toEqual([]);
  });

  it("restores a live pod's missing from rule, replacing its other rule", () => {
    const p = plan({ state: node((s) => (s.rules = s.rules.filter((r) => r.priority !== RULE_FROM_POD))) });
    expect(p.restore).toEqual([
      `rule del to ${POD.ip}/32 priority ${RULE_TO_POD}`,
      `link set dev ${HOST} up`,
      `route replace ${POD.ip}/32 dev ${HOST} scope link`,
      `rule add to ${POD.ip}/32 lookup main priority ${RULE_TO_POD}`,
      `rule add from ${POD.ip}/32 lookup ${TABLE} priority ${RULE_FROM_POD}`,
    ]);
    expect(p.report.restored).toEqual([`ctr1/eth0 ${POD.ip}`]);
    expect(p.remove).toEqual([]);
  });

  it("re-points a from rule at the table of the ENI's device now (its ifindex changed)", () => {
    const p = plan({
      state: node((s) => {
        const r = s.rules.find((x) => x.priority === RULE_FROM_POD)!;
        r.table = String(ENI_TABLE_BASE + 99);
      }),
    });
    expect(p.restore).toContain(`rule del from ${POD.ip}/32 priority ${RULE_FROM_POD}`);
    expect(p.restore).toContain(`rule add from ${POD.ip}/32 lookup ${TABLE} priority ${RULE_FROM_POD}`);
  });

  it("brings a downed host veth up and puts its /32 route back", () => {
    const p = plan({
      state: node((s) => {
        s.links[3] = veth(HOST, 10, false);
        s.routes = s.routes.filter((r) => r.dst !== POD.ip);
      }),
    });
    expect(p.restore).toContain(`link set dev ${HOST} up`);
    expect(p.restore).toContain(`route replace ${POD.ip}/32 dev ${HOST} scope link`);
  });

  it("removes rules, routes and veths of ours that no allocation owns", () => {
    const stray = hostVethName("gone", "eth0");
    const p = plan({
      state: node((s) => {
        s.links.push(veth(stray, 11));
        s.rules.push(
          { priority: RULE_TO_POD, src: "all", dst: "10.0.1.9", table: "main" },
          { priority: RULE_FROM_POD, src: "10.0.1.9", table: String(TABLE) },
        );
        s.routes.push({ dst: "10.0.1.9", dev: stray });
      }),
    });
    expect(p.remove).toEqual([
      `rule del to 10.0.1.9/32 priority ${RULE_TO_POD}`,
      `rule del from 10.0.1.9/32 priority ${RULE_FROM_POD}`,
      `route del 10.0.1.9 dev ${stray}`,
      `link del dev ${stray}`,
    ]);
    expect(p.restore).toEqual([]);
  });

  it("removes a live pod's IP routed to another veth of ours (a stale route), keeping its own", () => {
    const other = hostVethName("old", "eth0");
    const routes: Route[] = [{ dst: POD.ip, dev: other }];
    const p = plan({ state: node((s) => s.routes.push(...routes)), attachments: [POD] });
    expect(p.remove).toEqual([`route del ${POD.ip} dev ${other}`]);
  });

  it("never touches what is not ours: other rules, routes, ENI devices, non-veth links named like ours", () => {
    const lookalike = hostVethName("dummy", "eth0");
    const p = plan({
      state: node((s) => {
        s.links.push({ ifindex: 12, ifname: lookalike, flags: ["UP"], linkinfo: { info_kind: "dummy" } });
        s.rules.push({ priority: 1024, src: "all", table: "main" } as Rule);
        s.routes.push({ dst: "192.168.0.0/24", dev: "eth0" });
      }),
    });
    expect(p.remove).toEqual([]);
  });

  it("keeps away from an ADD or DEL in progress: its veth and IP are neither restored nor removed", () => {
    const busy = new Set([HOST, POD.ip, "10.0.1.9"]);
    const p = plan({
      busy,
      state: node((s) => {
        s.rules = s.rules.filter((r) => r.priority !== RULE_FROM_POD);
        s.rules.push({ priority: RULE_FROM_POD, src: "10.0.1.9", table: String(TABLE) });
      }),
    });
    expect(p.restore).toEqual([]);
    expect(p.remove).toEqual([]);
  });

  it("restores nothing for a pod whose host veth is gone (DEL or GC will release it), and keeps its rules", () => {
    const p = plan({
      state: node((s) => {
        s.links = s.links.filter((l) => l.ifname !== HOST);
        s.routes = s.routes.filter((r) => r.dst !== POD.ip);
      }),
    });
    expect(p.restore).toEqual([]);
    expect(p.remove).toEqual([]);
  });

  it("includes the ENIs of allocations even when the pool does not list them", () => {
    const p = plan({ enis: [], known: new Set() });
    expect(p.bringUp).toEqual([ENI]);
  });

  it("dual stack: an ENI whose table lacks the IPv6 default route is brought up, whatever the order of its IPv4-only and dual-stack pods", () => {
    const ENI6: EniRef = { ...ENI, gateway6: "fd00:10:0:1:ffff:ffff:ffff:fff7" };
    const dual: Attachment = {
      containerId: "ctr2",
      ifname: "eth0",
      ip: "10.0.1.6",
      ip6: "fd00:10:0:1::6",
      eni: ENI6,
    };
    for (const attachments of [
      [dual, POD],
      [POD, dual],
    ]) {
      const p = plan({ enis: [], attachments });
      expect(p.bringUp).toEqual([ENI6]);
      expect(p.report.enisBroughtUp).toEqual([ENI.eniId]);
    }
  });
});
