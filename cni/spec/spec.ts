// The CNI protocol, as the daemon serves it for the node's forwarder
// (cni/forwarder/): environment and configuration validation, version
// handling and the error JSON. One implementation: the forwarder forwards.
//
// Sources, quoted in the comments below as [spec] and [skel]:
// - [spec] containernetworking/cni SPEC.md, versions 0.3.1, 0.4.0, 1.0.0 and
//   1.1.0 (sections 2 "Execution Protocol" and 5 "Result Types").
// - [skel] containernetworking/cni pkg/skel/skel.go, pkg/utils/utils.go and
//   pkg/types/args.go: libcni's reference validation, whose rules and
//   messages we reproduce.

import { statSync } from "node:fs";
import { isObject } from "../../lib/json.js";
import { isIfname } from "../../lib/net.js";
import { DEFAULT_SOCKET } from "../facts.js";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const LATEST_VERSION = "1.1.0";

// [spec] "Well-known Error Codes" (plus 50/51 from the 1.1.0 STATUS section),
// and eniway's own codes from 100 up, as the spec reserves them for plugins.
export const ERR = {
  incompatibleVersion: 1,
  unknownContainer: 3,
  invalidEnv: 4,
  ioFailure: 5,
  decoding: 6,
  invalidConfig: 7,
  invalidNetns: 8,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  /** CHECK found the pod's network differs from what eniway set up; the message names what. */
  checkFailed: 100,
  internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
  ) {
    super(msg);
  }
}

/** [spec] section 5 "Error": cniVersion is the value the configuration gave. */
export function errorJson(e: CniError, cniVersion: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion, code: e.code, msg: e.message };
  if (e.details) out.details = e.details;
  return out;
}

// ---------------------------------------------------------------- versions

function parseVersion(v: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** a >= b for two "X.Y.Z" versions. */
export function versionAtLeast(a: string, b: string): boolean {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return false;
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] as number) > (y[i] as number);
  return true;
}

// ------------------------------------------------------------- environment

export const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"] as const;
export type Command = (typeof COMMANDS)[number];

/** The CNI_ARGS keys we understand (containerd and CRI-O send all of these). */
export const KNOWN_ARGS = [
  "K8S_POD_NAMESPACE",
  "K8S_POD_NAME",
  "K8S_POD_UID",
  "K8S_POD_INFRA_CONTAINER_ID",
] as const;
export type K8sArgs = Partial<Record<(typeof KNOWN_ARGS)[number], string>>;

export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  args: K8sArgs;
}

// [skel] pkg/utils/utils.go: cniValidNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.\-]`,
// matched as ^...*$ for container IDs and network names.
const VALID_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// [skel] utils.go: maxInterfaceNameLength = 15 (IFNAMSIZ - 1), counted in bytes.
const MAX_IFNAME = 15;
// Go's unicode.IsSpace, which [skel] uses: JS \s plus NEL (U+0085), minus BOM.
const SPACE = /[\s\u0085]/u;

/** Which variables each command requires. [skel] getCmdArgsFromEnv reqForCmd. */
const REQUIRED: Record<Command, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  // [spec] DEL: CNI_NETNS is optional ("When CNI_NETNS and/or prevResult are
  // not provided, the plugin should clean up as many resources as possible").
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  VERSION: [],
  GC: [],
  STATUS: [],
};

/**
 * [skel] utils.ValidateInterfaceName, with the variable named in the message
 * ([spec] code 4). With `wireable`, also eniway's own rule (lib/net.ts IFNAME),
 * the one the daemon and the datapath apply: a name that passes here can be
 * wired, so nothing is ever allocated for a name that cannot.
 */
export function validateIfname(ifname: string, wireable: boolean): void {
  const bad = (msg: string, details = ""): never => {
    throw new CniError(ERR.invalidEnv, `invalid CNI_IFNAME: ${msg}`, details);
  };
  if (ifname.length === 0) bad("interface name is empty");
  if (Buffer.byteLength(ifname) > MAX_IFNAME)
    bad("interface name is too long", `interface name should be less than ${MAX_IFNAME + 1} characters`);
  if (ifname === "." || ifname === "..") bad("interface name is . or ..");
  if (/[/:]/.test(ifname) || SPACE.test(ifname))
    bad("interface name contains / or : or whitespace characters");
  if (wireable && !isIfname(ifname))
    bad(
      "eniway cannot wire this interface name",
      "an interface name for eniway has 1 to 15 letters, digits, '_', '.' or '-'",
    );
}

/**
 * CNI_ARGS, parsed as libcni's types.LoadArgs does ([skel] pkg/types/args.go):
 * "K1=V1;K2=V2", every pair exactly one "=", unknown keys an error unless
 * IgnoreUnknown is 1/true (case-insensitive; 0/false turn it off, anything
 * else is an error).
 */
export function parseCniArgs(raw: string): K8sArgs {
  const out: K8sArgs = {};
  if (raw === "") return out;
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const pair of raw.split(";")) {
    const kv = pair.split("=");
    if (kv.length !== 2)
      throw new CniError(ERR.invalidEnv, `invalid CNI_ARGS: invalid pair ${JSON.stringify(pair)}`);
    const [key, value] = kv as [string, string];
    if (key === "IgnoreUnknown") {
      const v = value.toLowerCase();
      if (v === "1" || v === "true") ignoreUnknown = true;
      else if (v === "0" || v === "false") ignoreUnknown = false;
      else
        throw new CniError(
          ERR.invalidEnv,
          `invalid CNI_ARGS: error parsing value of pair ${JSON.stringify(pair)}`,
          "IgnoreUnknown must be 1, true, 0 or false",
        );
    } else if ((KNOWN_ARGS as readonly string[]).includes(key)) {
      out[key as (typeof KNOWN_ARGS)[number]] = value;
    } else {
      unknown.push(pair);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown)
    throw new CniError(
      ERR.invalidEnv,
      `invalid CNI_ARGS: unknown args ${JSON.stringify(unknown)}`,
      "add IgnoreUnknown=1 to CNI_ARGS to ignore them",
    );
  return out;
}

/**
 * Reads and validates the environment. Errors are code 4 ("Invalid necessary
 * environment variables ... The error message must contain the names of
 * invalid variables" [spec]) except as noted.
 */
export function readEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const get = (k: string): string => env[k] ?? "";
  const command = get("CNI_COMMAND");
  // [skel] a missing CNI_COMMAND is reported with the other missing variables.
  if (command === "") throw new CniError(ERR.invalidEnv, "required env variables [CNI_COMMAND] missing");
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new CniError(ERR.invalidEnv, `unknown CNI_COMMAND: ${command}`);
  const cmd = command as Command;
  const missing = REQUIRED[cmd].filter((k) => get(k) === "");
  if (missing.length > 0)
    throw new CniError(ERR.invalidEnv, `required env variables [${missing.join(",")}] missing`);

  const out: CniEnv = { command: cmd, containerId: "", netns: "", ifname: "", args: {} };
  if (cmd === "ADD" || cmd === "DEL" || cmd === "CHECK") {
    out.containerId = get("CNI_CONTAINERID");
    // [skel] utils.ValidateContainerID.
    if (!VALID_NAME.test(out.containerId))
      throw new CniError(ERR.invalidEnv, "invalid characters in CNI_CONTAINERID", out.containerId);
    out.ifname = get("CNI_IFNAME");
    // A DEL of a name eniway cannot wire succeeds in cmdDel: there is nothing to remove.
    validateIfname(out.ifname, cmd !== "DEL");
    out.netns = get("CNI_NETNS");
    // [spec] CNI_NETNS is "a path to the network namespace (e.g. /run/netns/[nsname])";
    // we only accept absolute paths.
    if (out.netns !== "" && !out.netns.startsWith("/"))
      throw new CniError(ERR.invalidEnv, "invalid CNI_NETNS: not an absolute path", out.netns);
    out.args = parseCniArgs(get("CNI_ARGS"));
  }
  return out;
}

/**
 * [skel] ns.CheckNetNS: CNI_NETNS must not be the node's own namespace, where
 * the plugin runs (code 8): `nodeNetns` is its path ("" for the daemon's
 * own). A path that cannot be opened is not an error here (a DEL for a
 * namespace that is gone must still work); ADD decides later.
 */
export function checkNotNodeNetns(netns: string, nodeNetns: string): void {
  if (netns === "") return;
  let target: { dev: number; ino: number };
  let own: { dev: number; ino: number };
  try {
    target = statSync(netns);
    own = statSync(nodeNetns || "/proc/self/ns/net");
  } catch {
    return;
  }
  if (target.dev === own.dev && target.ino === own.ino)
    throw new CniError(
      ERR.invalidNetns,
      "plugin's netns and netns from CNI_NETNS should not be the same",
      netns,
    );
}

// ----------------------------------------------------------- configuration

export interface PluginConfig {
  cniVersion: string;
  name: string;
  type: string;
  socket: string;
  timeoutMs: number;
  nodeNetns: string;
  debug: boolean;
  prevResult: Record<string, unknown> | undefined;
  dns: Record<string, unknown>;
  raw: Record<string, unknown>;
}

export const DEFAULT_TIMEOUT_SECONDS = 60;
const MAX_SOCKET_PATH = 107;

/** The cniVersion to put in an error when the configuration could not be used. */
export function versionForErrors(raw: unknown): string {
  if (isObject(raw) && typeof raw.cniVersion === "string" && raw.cniVersion !== "") return raw.cniVersion;
  return LATEST_VERSION;
}

/** Stdin as JSON. [skel] validateConfig: a decoding failure is code 6. */
export function decodeConfig(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(ERR.decoding, `error unmarshall network config: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new CniError(ERR.decoding, "error unmarshall network config: not a JSON object");
  return v;
}

/**
 * Validates the decoded configuration in [skel]'s order: network name (7),
 * then the version (1), then our own keys (7). Keys we do not know are
 * ignored: runtimes add runtimeConfig, prevResult, args, cni.dev/*.
 * `execName` is the file name of this executable, accepted as `type` besides
 * "eniway" ([spec] `type` "matches the name of the CNI plugin binary on disk").
 */
export function parseConfig(raw: Record<string, unknown>, command: Command, execName: string): PluginConfig {
  const bad = (msg: string, details = ""): never => {
    throw new CniError(ERR.invalidConfig, msg, details);
  };
  // [skel] validateConfig + utils.ValidateNetworkName.
  if (raw.name === undefined || raw.name === "") bad("missing network name");
  if (typeof raw.name !== "string" || !VALID_NAME.test(raw.name))
    bad("invalid characters found in network name", JSON.stringify(raw.name));

  // [skel] ConfigDecoder: an absent cniVersion means "0.1.0"; the reconciler
  // then rejects what is not in our list.
  const cniVersion = raw.cniVersion === undefined || raw.cniVersion === "" ? "0.1.0" : raw.cniVersion;
  if (typeof cniVersion !== "string" || !(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion))
    throw new CniError(
      ERR.incompatibleVersion,
      "incompatible CNI versions",
      `config is ${JSON.stringify(cniVersion)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  // [skel] CHECK needs 0.4.0 or later; GC and STATUS need 1.1.0 or later.
  const floor = command === "CHECK" ? "0.4.0" : command === "GC" || command === "STATUS" ? "1.1.0" : null;
  if (floor && !versionAtLeast(cniVersion, floor))
    throw new CniError(
      ERR.incompatibleVersion,
      `config version does not allow ${command}`,
      `config is ${cniVersion}`,
    );

  // [spec] section 1: `type` is required and names the executable.
  if (raw.type === undefined || raw.type === "") bad("missing type");
  if (typeof raw.type !== "string") bad("type must be a string", JSON.stringify(raw.type));
  if (raw.type !== "eniway" && raw.type !== execName)
    bad(
      `wrong type ${JSON.stringify(raw.type)}`,
      `this plugin is "eniway" (installed as ${JSON.stringify(execName)})`,
    );

  const socket = raw.socket ?? DEFAULT_SOCKET;
  if (typeof socket !== "string" || !socket.startsWith("/") || socket.includes("\0"))
    bad("socket must be an absolute path", JSON.stringify(raw.socket));
  // A unix socket's address holds 107 bytes (sun_path, with its NUL).
  if (Buffer.byteLength(socket as string) > MAX_SOCKET_PATH)
    bad(`socket must be at most ${MAX_SOCKET_PATH} bytes`, JSON.stringify(raw.socket));

  const timeout = raw.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0 || timeout > 3600)
    bad("timeoutSeconds must be a number of seconds in (0, 3600]", JSON.stringify(raw.timeoutSeconds));

  const nodeNetns = raw.nodeNetns ?? "";
  if (
    typeof nodeNetns !== "string" ||
    (nodeNetns !== "" && (!nodeNetns.startsWith("/") || nodeNetns.includes("\0")))
  )
    bad("nodeNetns must be an absolute path", JSON.stringify(raw.nodeNetns));

  const debug = raw.debug ?? false;
  if (typeof debug !== "boolean") bad("debug must be true or false", JSON.stringify(raw.debug));

  if (raw.prevResult !== undefined && !isObject(raw.prevResult))
    bad("prevResult must be an object", JSON.stringify(raw.prevResult));

  return {
    cniVersion: cniVersion as string,
    name: raw.name as string,
    type: raw.type as string,
    socket: socket as string,
    timeoutMs: Math.round((timeout as number) * 1000),
    nodeNetns: nodeNetns as string,
    debug: debug as boolean,
    prevResult: raw.prevResult as Record<string, unknown> | undefined,
    dns: dnsOf(raw.dns),
    raw,
  };
}

/** [spec] the well-known `dns` configuration key, passed on to the result when well-formed. */
function dnsOf(v: unknown): Record<string, unknown> {
  if (!isObject(v)) return {};
  const out: Record<string, unknown> = {};
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === "string");
  if (strings(v.nameservers) && v.nameservers.length > 0) out.nameservers = v.nameservers;
  if (typeof v.domain === "string" && v.domain !== "") out.domain = v.domain;
  if (strings(v.search) && v.search.length > 0) out.search = v.search;
  if (strings(v.options) && v.options.length > 0) out.options = v.options;
  return out;
}

// --------------------------------------------------------------- VERSION

/**
 * [spec] section 5 "Version": cniVersion is "the value of cniVersion specified
 * on input" (libcni sends {"cniVersion": ...} on stdin); without one, ours.
 */
export function versionResult(stdin: string): Record<string, unknown> {
  let requested = LATEST_VERSION;
  try {
    const v = JSON.parse(stdin) as unknown;
    if (isObject(v) && typeof v.cniVersion === "string" && parseVersion(v.cniVersion))
      requested = v.cniVersion;
  } catch {
    // no or bad input: answer with ours
  }
  return { cniVersion: requested, supportedVersions: [...SUPPORTED_VERSIONS] };
}
