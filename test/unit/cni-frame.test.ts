// The frame the node's CNI forwarder sends on POST /v1/cni and records for a
// DEL while the daemon is away (src/daemon/cni-exec.ts): "NAME=VALUE\0" for
// each CNI_* variable, an empty entry "\0", then stdin. frame() makes it as
// the forwarder does, parseFrame() reads it back, and anything else is
// refused (the API answers 400, the DEL queue drops the record).

import { describe, expect, it } from "vitest";
import { frame, parseFrame } from "../../src/daemon/cni-exec.js";

describe("the CNI frame", () => {
  it("is NAME=VALUE\\0 per variable, in order, an empty entry, then stdin", () => {
    expect(frame({ CNI_COMMAND: "ADD", CNI_IFNAME: "eth0" }, '{"cniVersion":"1.1.0"}')).toBe(
      'CNI_COMMAND=ADD\0CNI_IFNAME=eth0\0\0{"cniVersion":"1.1.0"}',
    );
    expect(frame({}, "")).toBe("\0");
    expect(frame({ CNI_COMMAND: "VERSION" }, "")).toBe("CNI_COMMAND=VERSION\0\0");
  });

  const cases: [string, Record<string, string>, string][] = [
    ["nothing at all", {}, ""],
    ["a VERSION without stdin", { CNI_COMMAND: "VERSION" }, ""],
    [
      "a whole ADD",
      {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: "0123abcd",
        CNI_NETNS: "/var/run/netns/pod",
        CNI_IFNAME: "eth0",
        CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
        CNI_PATH: "/opt/cni/bin:/usr/libexec/cni",
      },
      JSON.stringify({ cniVersion: "1.1.0", name: "eniway", type: "eniway", dns: {} }),
    ],
    ["values with '=' and empty values", { CNI_ARGS: "A=B=C", CNI_NETNS: "" }, "{}"],
    ["unicode in names, values and stdin", { CNI_é: "名前", CNI_X: "\u202e" }, '{"note":"é\u2028"}'],
    // stdin is everything after the terminator: NULs, entries and terminators in it are its own.
    ["stdin holding NULs and what looks like entries", { CNI_COMMAND: "DEL" }, "A=1\0\0B=2\0\0\0"],
    ["stdin that is not JSON", { CNI_COMMAND: "ADD" }, "{cut short"],
  ];
  for (const [what, env, stdin] of cases) {
    it(`reads back what it made: ${what}`, () => {
      const f = frame(env, stdin);
      const parsed = parseFrame(f);
      expect(parsed).toEqual({ env, stdin });
      // Names keep their order: the frame made again from what was read is the same bytes.
      expect(frame(parsed?.env ?? {}, parsed?.stdin ?? "")).toBe(f);
    });
  }

  it("reads a value up to its entry's end, and the first '=' splits name from value", () => {
    expect(parseFrame("CNI_ARGS=K8S_POD_NAME=web;A=b\0\0")).toEqual({
      env: { CNI_ARGS: "K8S_POD_NAME=web;A=b" },
      stdin: "",
    });
  });

  it("keeps the first of a name given twice, as the forwarder's getenv does", () => {
    expect(parseFrame("CNI_COMMAND=DEL\0CNI_COMMAND=ADD\0\0{}")).toEqual({
      env: { CNI_COMMAND: "DEL" },
      stdin: "{}",
    });
  });

  it("takes names that are an object's own properties elsewhere as plain names", () => {
    const parsed = parseFrame("constructor=x\0toString=y\0\0");
    expect(parsed?.env).toEqual({ constructor: "x", toString: "y" });
    expect(Object.getPrototypeOf(parsed?.env)).toBe(Object.prototype);
  });

  const refused: [string, string][] = [
    ["an empty body", ""],
    ["an entry without its NUL", "CNI_COMMAND=ADD"],
    ["entries without the empty terminator", "CNI_COMMAND=ADD\0CNI_IFNAME=eth0\0"],
    ["an entry without '='", "CNI_COMMAND\0\0{}"],
    ["an entry without '=' after a good one", "CNI_COMMAND=ADD\0CNI_IFNAME\0\0{}"],
    ["an entry with an empty name", "=ADD\0\0{}"],
    ["JSON alone (the old plugin's request)", '{"containerId":"c1","ifname":"eth0"}'],
  ];
  for (const [what, body] of refused) {
    it(`refuses ${what}`, () => {
      expect(parseFrame(body)).toBeNull();
    });
  }
});
