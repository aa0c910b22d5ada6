// lib/schema.ts: each schema's JSON Schema says what its check does, and
// lib/ids.ts: the identifier rules, written without lookaround for Go's RE2,
// accept and refuse exactly what the rules they replaced did.

import { describe, expect, it } from "vitest";
import * as ids from "../../lib/ids.js";
import { matches, type Rule } from "../../lib/ids.js";
import {
  arr,
  bool,
  keyPaths,
  num,
  obj,
  oneOf,
  opt,
  optNull,
  record,
  SchemaError,
  str,
} from "../../lib/schema.js";
import { prng } from "../helpers/prng.js";

describe("a schema's JSON Schema", () => {
  it("says a string's rules, and the check keeps them, naming the path", () => {
    const s = str({ pattern: /^[a-z]+$/, notPattern: /^x/, minLength: 2, maxLength: 4 });
    expect(s.json).toEqual({
      type: "string",
      minLength: 2,
      maxLength: 4,
      pattern: "^[a-z]+$",
      not: { pattern: "^x" },
    });
    expect(s("abc", "k")).toBe("abc");
    expect(() => s("a", "a.b")).toThrow(new SchemaError("a.b", "must be at least 2 characters long"));
    expect(() => s("", "a.b")).toThrow(new SchemaError("a.b", "must not be empty"));
    expect(() => s("abcde", "a.b")).toThrow(/^a\.b: must be at most 4 characters long/);
    expect(() => s("xab", "a.b")).toThrow(/^a\.b: has an invalid format/);
    expect(() => s("AB", "a.b")).toThrow(/^a\.b: has an invalid format/);
    expect(str({ oneOf: ["x", "y"] }).json).toEqual({ type: "string", enum: ["x", "y"] });
  });

  it("says numbers, booleans and arrays", () => {
    expect(num({ min: 1, max: 9, int: true }).json).toEqual({ type: "integer", minimum: 1, maximum: 9 });
    expect(num({ min: 0.5 }).json).toEqual({ type: "number", minimum: 0.5 });
    expect(bool.json).toEqual({ type: "boolean" });
    expect(arr(num(), { min: 1, max: 2 }).json).toEqual({
      type: "array",
      items: { type: "number" },
      minItems: 1,
      maxItems: 2,
    });
  });

  it("says an object's keys, which are required, and the defaults of the optional ones", () => {
    const inner = obj({ n: opt(num(), 3), list: opt(arr(str()), []) });
    const o = obj({ name: str(), inner: opt(inner), gone: optNull(str()) });
    expect(o.json).toEqual({
      type: "object",
      additionalProperties: false,
      required: ["name"],
      properties: {
        name: { type: "string" },
        inner: { ...inner.json, default: { n: 3, list: [] } },
        gone: { anyOf: [{ type: "string" }, { type: "null" }], default: null },
      },
    });
    expect(o({ name: "x" }, "")).toEqual({ name: "x", inner: { n: 3, list: [] }, gone: null });
    // An optional object without a fallback takes its fields' defaults, a fresh copy each time.
    const a = o({ name: "x" }, "");
    a.inner.list.push("changed");
    expect(o({ name: "x" }, "").inner.list).toEqual([]);
    expect(() => o({ name: "x", inner: { n: "3" } }, "")).toThrow(/^inner\.n: must be a number/);
  });

  it("says a record's key and value rules, and a choice as anyOf", () => {
    const r = record(num(), str({ oneOf: ["a", "b"] }));
    expect(r.json).toEqual({
      type: "object",
      additionalProperties: { type: "number" },
      propertyNames: { type: "string", enum: ["a", "b"] },
    });
    expect(() => r({ c: 1 }, "a.b")).toThrow(/^a\.b\.c: must be one of a, b/);
    const either = oneOf(bool, str({ oneOf: ["auto"] }), "true, false or auto");
    expect(either.json).toEqual({ anyOf: [{ type: "boolean" }, { type: "string", enum: ["auto"] }] });
  });

  it("writes a pattern so RE2 reads it: no flags, U+2028 as itself, / unescaped", () => {
    expect(() => str({ pattern: /^a$/i })).toThrow(/flags/);
    expect(str({ pattern: /^[^\u2028]$/ }).json.pattern).toBe("^[^\u2028]$");
    expect(str({ pattern: /^\\u2028$/ }).json.pattern).toBe("^\\\\u2028$");
    expect(str({ pattern: /^a\/b\\\/$/ }).json.pattern).toBe("^a/b\\\\/$");
  });

  it("lists its key paths, a free-form key as *", () => {
    const o = obj({
      a: opt(obj({ b: opt(num(), 1) })),
      m: opt(record(obj({ q: num() })), {}),
      t: opt(record(str()), {}),
    });
    expect(keyPaths(o.json)).toEqual(["a.b", "m.*.q", "t.*"]);
  });
});

/** Random strings made of pieces the rules care about. */
function samples(n: number, pieces: string[], seed = 7): string[] {
  const rand = prng(seed);
  return Array.from({ length: n }, () => {
    const len = Math.floor(rand() * 8);
    return Array.from({ length: len }, () => pieces[Math.floor(rand() * pieces.length)]).join("");
  });
}

const PIECES = ["a", "Z", "0", "9", "-", ".", "_", ":", "/", "?", "#", " ", "\u00a0", "\u2028", "\t", "\v"];

describe("lib/ids.ts", () => {
  it("SPACE is JavaScript's \\s, character for character", () => {
    const spelled = new RegExp(`^[${ids.SPACE}]$`);
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c);
      if (spelled.test(ch) !== /^\s$/.test(ch)) throw new Error(`U+${c.toString(16)} differs`);
    }
  });

  it("no pattern uses what RE2 lacks (lookaround, backreferences, \\u) or reads otherwise (\\s, \\p)", () => {
    const rules = Object.values(ids).filter((v): v is Rule => typeof v === "object" && v !== null);
    expect(rules.length).toBeGreaterThan(15);
    for (const rule of rules) {
      const json = str(rule).json;
      for (const pattern of [json.pattern, json.not?.pattern])
        expect(pattern ?? "").not.toMatch(/\(\?[=!<]|\\[sSpPuk]|\\[1-9]/);
    }
  });

  it("a node name: the old lookahead's length limit is maxLength now", () => {
    const old = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
    const cases = [
      ...samples(3000, ["a", "0", "-", ".", "Z", "\n"]),
      "a".repeat(253),
      "a".repeat(254),
      `${"a.".repeat(126)}a`,
      `${"a.".repeat(126)}ab`,
    ];
    for (const s of cases) expect(matches(ids.NODE_NAME, s), JSON.stringify(s)).toBe(old.test(s));
  });

  it("a tag key and value: ECS's rules, as cloud/validate.ts had them", () => {
    const oldKey = (k: string): boolean =>
      k.length >= 1 && k.length <= 128 && !/^(aliyun|acs:)/i.test(k) && !/https?:\/\//i.test(k);
    const oldValue = (v: string): boolean => v.length <= 128 && !/^acs:/i.test(v) && !/https?:\/\//i.test(v);
    const pieces = ["aliyun", "AliYun", "acs", "ACS", ":", "http", "HTTPs", "://", "x", " ", "ı", "ſ"];
    for (const s of [...samples(5000, pieces), "k".repeat(128), "k".repeat(129)]) {
      expect(matches(ids.TAG_KEY, s), JSON.stringify(s)).toBe(oldKey(s));
      expect(matches(ids.TAG_VALUE, s), JSON.stringify(s)).toBe(oldValue(s));
    }
  });

  it("URLs: the daemon's metadata URL and the API client's endpoint rule", () => {
    const oldUrl = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/;
    const oldEndpoint = /^https?:\/\/[^/?#\s]+\/?$/; // cloud/rpc.ts
    const pieces = [...PIECES, "http://", "https://", "host", "x=1"];
    for (const s of samples(5000, pieces)) {
      expect(matches(ids.HTTP_URL, s), JSON.stringify(s)).toBe(oldUrl.test(s));
      expect(matches(ids.API_ENDPOINT, s), JSON.stringify(s)).toBe(oldEndpoint.test(s));
    }
    expect(matches(ids.HTTP_URL, "http://100.100.100.200/meta/i-a")).toBe(true);
    expect(matches(ids.API_ENDPOINT, "https://host?x=1")).toBe(false);
  });

  it("resource ids carry Alibaba Cloud's prefixes", () => {
    expect(matches(ids.VSWITCH_ID, "vsw-bp1s5fnvk4gn2tws03624")).toBe(true);
    expect(matches(ids.SECURITY_GROUP_ID, "sg-1")).toBe(true);
    for (const bad of ["sg bad", "subnet-1", "sg-", "sg-_x", `sg-${"a".repeat(65)}`])
      expect(matches(ids.SECURITY_GROUP_ID, bad), bad).toBe(false);
    expect(matches(ids.REGION_ID, "cn-shanghai-finance-1")).toBe(true);
    expect(matches(ids.INSTANCE_ID, "i--x")).toBe(false);
  });
});
