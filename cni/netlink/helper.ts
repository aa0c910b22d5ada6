// The netlink helper: a long-lived process the daemon starts once. For each
// request (one JSON line on stdin) it enters the pod's network namespace just
// long enough to open an rtnetlink socket there, then wires the pod's side
// through it, and answers one JSON line on stdout. No process start per pod:
// this is what `ip -n POD -batch` costs on every ADD otherwise.
//
// Runs under bun (bun:ffi for setns(2) and the socket calls); compiled from
// main.ts into dist/bin/eniway-netlink, which ships with the daemon.

import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { type HelperReply, type PodSideRequest, validRequest } from "./protocol.js";
import {
  getLink,
  linkUp,
  newDefaultRoute,
  newHostAddr,
  newLinkRoute,
  newVeth,
  parseReplies,
  permanentNeigh,
} from "./rtnl.js";

const sym = dlopen("libc.so.6", {
  open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  setns: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
}).symbols;

/** The C calls, typed. */
const libc = {
  open: (path: string, flags: number): number => Number(sym.open!(Buffer.from(`${path}\0`), flags)),
  close: (fd: number): number => Number(sym.close!(fd)),
  setns: (fd: number, type: number): number => Number(sym.setns!(fd, type)),
  socket: (domain: number, type: number, proto: number): number => Number(sym.socket!(domain, type, proto)),
  send: (fd: number, msg: Uint8Array): number => Number(sym.send!(fd, ptr(msg), msg.length, 0)),
  recv: (fd: number, into: Uint8Array): number => Number(sym.recv!(fd, ptr(into), into.length, 0)),
  errno: (): number => {
    const p = Number(sym.__errno_location!());
    return p ? read.i32(p, 0) : 0;
  },
  strerror: (errno: number): string => String(sym.strerror!(errno)),
};

const O_RDONLY_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const AF_NETLINK = 16;
const SOCK_RAW_CLOEXEC = 3 | 0o2000000;
const NETLINK_ROUTE = 0;

class SysError extends Error {
  constructor(
    readonly step: string,
    readonly errno: number,
  ) {
    super(`${step}: ${libc.strerror(errno)}`);
  }
}

function openPath(path: string, step: string): number {
  const fd = libc.open(path, O_RDONLY_CLOEXEC);
  if (fd < 0) throw new SysError(step, libc.errno());
  return fd;
}

const own = openPath("/proc/thread-self/ns/net", "open own namespace");

/** An rtnetlink socket that lives in the namespace `fd`; this thread stays where it was. */
function socketIn(fd: number): number {
  if (libc.setns(fd, CLONE_NEWNET) < 0) throw new SysError("enter pod namespace", libc.errno());
  const sock = libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, NETLINK_ROUTE);
  const e = libc.errno();
  if (libc.setns(own, CLONE_NEWNET) < 0) {
    // Stuck in the pod's namespace: a helper must never run there. The daemon starts a new one.
    writeSync(
      2,
      `${JSON.stringify({ level: "error", msg: "netlink helper: cannot return to its namespace" })}\n`,
    );
    process.exit(1);
  }
  if (sock < 0) throw new SysError("netlink socket", e);
  return sock;
}

const buf = new Uint8Array(65536);

/** Sends one request and waits for its answer: the ack, or the link it asked for. */
function call(sock: number, msg: Uint8Array, step: string): number {
  if (libc.send(sock, msg) < 0) throw new SysError(step, libc.errno());
  const seq = new DataView(msg.buffer, msg.byteOffset).getUint32(8, true);
  for (;;) {
    const n = libc.recv(sock, buf);
    if (n < 0) throw new SysError(step, libc.errno());
    for (const r of parseReplies(buf.subarray(0, n))) {
      if (r.seq !== seq) continue;
      if (r.kind === "error") throw new SysError(step, r.errno);
      if (r.kind === "ack") return 0;
      if (r.kind === "link") return r.index;
    }
  }
}

function wirePod(req: PodSideRequest): void {
  const podNs = openPath(req.netns, "open pod namespace");
  let nodeNs = -1;
  let sock = -1;
  try {
    nodeNs = req.nodeNetns === "" ? own : openPath(req.nodeNetns, "open node namespace");
    sock = socketIn(podNs);
    let seq = 0;
    call(
      sock,
      newVeth(++seq, {
        ifname: req.ifname,
        mac: req.podMac,
        peerIfname: req.hostIfname,
        peerMac: req.hostMac,
        mtu: req.mtu,
        peerNetnsFd: nodeNs,
      }),
      "create veth",
    );
    call(sock, linkUp(++seq, "lo"), "set lo up");
    const index = call(sock, getLink(++seq, req.ifname), `find ${req.ifname}`);
    call(sock, newHostAddr(++seq, index, req.ip), "add address");
    call(sock, linkUp(++seq, req.ifname), `set ${req.ifname} up`);
    call(sock, newLinkRoute(++seq, index, req.gateway), "add gateway route");
    call(sock, newDefaultRoute(++seq, index, req.gateway), "add default route");
    call(sock, permanentNeigh(++seq, index, req.gateway, req.hostMac), "add gateway neighbour");
    if (req.ip6 && req.gateway6) {
      call(sock, newHostAddr(++seq, index, req.ip6), "add IPv6 address");
      call(sock, newDefaultRoute(++seq, index, req.gateway6), "add IPv6 default route");
      call(sock, permanentNeigh(++seq, index, req.gateway6, req.hostMac), "add IPv6 gateway neighbour");
    }
  } finally {
    if (sock >= 0) libc.close(sock);
    if (nodeNs >= 0 && nodeNs !== own) libc.close(nodeNs);
    libc.close(podNs);
  }
}

function answer(reply: HelperReply): void {
  writeSync(1, `${JSON.stringify(reply)}\n`);
}

export async function netlinkHelper(): Promise<number> {
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    let id = 0;
    try {
      const req = JSON.parse(line) as unknown;
      id = (req as { id?: number }).id ?? 0;
      wirePod(validRequest(req));
      answer({ id, ok: true });
    } catch (e) {
      answer({ id, ok: false, errno: e instanceof SysError ? e.errno : 0, error: (e as Error).message });
    }
  }
  return 0;
}
