// A small validator for config and world files. Each schema checks a value
// and returns it typed, or throws a SchemaError naming the exact key path
// (e.g. `pool.minIdle`), so a broken file is reported precisely. Each also
// carries the same rules as JSON Schema (draft-07, as Helm reads it), in `json`.

import { isObject } from "./json.js";

export class SchemaError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path || "(root)"}: ${problem}`);
    this.name = "SchemaError";
  }
}

/** The JSON Schema keywords these schemas use. */
export interface JsonSchema {
  description?: string;
  type?: "string" | "number" | "integer" | "boolean" | "array" | "object" | "null";
  enum?: string[];
  pattern?: string;
  not?: JsonSchema;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  default?: unknown;
}

export type Check<T> = (value: unknown, path: string) => T;
export type Schema<T> = Check<T> & { readonly json: JsonSchema };

function schema<T>(json: JsonSchema, check: Check<T>): Schema<T> {
  const keep = Object.entries(json).filter(([, v]) => v !== undefined);
  return Object.assign(check, { json: Object.fromEntries(keep) as JsonSchema });
}

const describe = (v: unknown): string =>
  v === null
    ? "null"
    : Array.isArray(v)
      ? "an array"
      : typeof v === "object"
        ? "an object"
        : JSON.stringify(v);

const join = (path: string, key: string | number): string =>
  typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;

/**
 * A pattern as JSON Schema says it: without flags, which it has no room for;
 * a `\uXXXX` (which `source` writes for U+2028 and U+2029) as the character
 * itself, since Go's RE2 has no such escape; `\/` as plain `/`.
 */
function source(pattern: RegExp | undefined): string | undefined {
  if (pattern?.flags) throw new Error(`schema pattern ${pattern} has flags: JSON Schema cannot say them`);
  return pattern?.source.replace(/\\(\\|\/|u([0-9a-fA-F]{4}))/g, (seq, _, hex?: string) =>
    hex ? String.fromCharCode(Number.parseInt(hex, 16)) : seq === "\\/" ? "/" : seq,
  );
}

export interface StrOptions {
  pattern?: RegExp;
  /** A pattern the value must not match. */
  notPattern?: RegExp;
  minLength?: number;
  maxLength?: number;
  oneOf?: readonly string[];
}

export function str(opts: StrOptions = {}): Schema<string> {
  const json: JsonSchema = {
    type: "string",
    enum: opts.oneOf && [...opts.oneOf],
    minLength: opts.minLength,
    maxLength: opts.maxLength,
    pattern: source(opts.pattern),
    not: opts.notPattern && { pattern: source(opts.notPattern) },
  };
  return schema(json, (v, path) => {
    if (typeof v !== "string") throw new SchemaError(path, `must be a string, got ${describe(v)}`);
    if (v.length < (opts.minLength ?? 0))
      throw new SchemaError(
        path,
        v ? `must be at least ${opts.minLength} characters long` : "must not be empty",
      );
    if (opts.maxLength !== undefined && v.length > opts.maxLength)
      throw new SchemaError(path, `must be at most ${opts.maxLength} characters long, got ${v.length}`);
    if (opts.oneOf && !opts.oneOf.includes(v))
      throw new SchemaError(path, `must be one of ${opts.oneOf.join(", ")}, got ${JSON.stringify(v)}`);
    if ((opts.pattern && !opts.pattern.test(v)) || opts.notPattern?.test(v))
      throw new SchemaError(path, `has an invalid format: ${JSON.stringify(v)}`);
    return v;
  });
}

export function num(opts: { min?: number; max?: number; int?: boolean } = {}): Schema<number> {
  const json: JsonSchema = { type: opts.int ? "integer" : "number", minimum: opts.min, maximum: opts.max };
  return schema(json, (v, path) => {
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new SchemaError(path, `must be a number, got ${describe(v)}`);
    if (opts.int && !Number.isInteger(v)) throw new SchemaError(path, `must be an integer, got ${v}`);
    if (opts.min !== undefined && v < opts.min)
      throw new SchemaError(path, `must be >= ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max)
      throw new SchemaError(path, `must be <= ${opts.max}, got ${v}`);
    return v;
  });
}

export const bool: Schema<boolean> = schema({ type: "boolean" }, (v, path) => {
  if (typeof v !== "boolean") throw new SchemaError(path, `must be true or false, got ${describe(v)}`);
  return v;
});

export function arr<T>(item: Schema<T>, opts: { min?: number; max?: number } = {}): Schema<T[]> {
  const json: JsonSchema = { type: "array", items: item.json, minItems: opts.min, maxItems: opts.max };
  return schema(json, (v, path) => {
    if (!Array.isArray(v)) throw new SchemaError(path, `must be an array, got ${describe(v)}`);
    if (opts.min !== undefined && v.length < opts.min)
      throw new SchemaError(path, `must have at least ${opts.min} item(s)`);
    if (opts.max !== undefined && v.length > opts.max)
      throw new SchemaError(path, `must have at most ${opts.max} item(s)`);
    return v.map((x, i) => item(x, join(path, i)));
  });
}

/** A value that may be absent; `fallback` is used when it is. */
export interface Optional<T> {
  optional: true;
  schema: Schema<T>;
  fallback: () => T;
  /** The schema's JSON Schema with the fallback as its default. */
  json: JsonSchema;
}

/**
 * An optional value. Without a fallback, an absent value reads as `{}` would:
 * an object made of its fields' defaults. `description`: what it means (the
 * JSON Schema's description, the README's configuration table).
 */
export function opt<T>(
  schema: Schema<T>,
  fallback: T | (() => T) = schema({}, ""),
  description?: string,
): Optional<T> {
  const make = typeof fallback === "function" ? (fallback as () => T) : () => structuredClone(fallback);
  const json = { ...schema.json, ...(description ? { description } : {}), default: make() };
  return { optional: true, schema, fallback: make, json };
}

/** A value that may be absent or null; absent reads as null. */
export function optNull<T>(inner: Schema<T>, description?: string): Optional<T | null> {
  const json: JsonSchema = { anyOf: [inner.json, { type: "null" }] };
  const nullable = schema(json, (v, path) => (v === null ? null : inner(v, path)));
  return opt<T | null>(nullable, null, description);
}

type Field = Schema<unknown> | Optional<unknown>;
type FieldType<F> = F extends Optional<infer T> ? T : F extends Schema<infer T> ? T : never;
export type Shape = Record<string, Field>;
export type ObjOf<S extends Shape> = { [K in keyof S]: FieldType<S[K]> };

/** An object with exactly these keys; unknown keys are rejected by name. */
export function obj<S extends Shape>(shape: S): Schema<ObjOf<S>> {
  const fields = Object.entries(shape);
  const required = fields.filter(([, f]) => !("optional" in f)).map(([k]) => k);
  const json: JsonSchema = {
    type: "object",
    additionalProperties: false,
    properties: Object.fromEntries(fields.map(([k, f]) => [k, f.json])),
    required: required.length ? required : undefined,
  };
  return schema(json, (v, path) => {
    if (!isObject(v)) throw new SchemaError(path, `must be an object, got ${describe(v)}`);
    for (const key of Object.keys(v)) {
      if (!(key in shape)) throw new SchemaError(join(path, key), "is not a known key");
    }
    const out: Record<string, unknown> = {};
    for (const [key, field] of fields) {
      const p = join(path, key);
      const present = v[key] !== undefined;
      if ("optional" in field) out[key] = present ? field.schema(v[key], p) : field.fallback();
      else if (!present) throw new SchemaError(p, "is required");
      else out[key] = field(v[key], p);
    }
    return out as ObjOf<S>;
  });
}

/** A map from free-form keys to values of one schema. */
export function record<T>(value: Schema<T>, key?: Schema<string>): Schema<Record<string, T>> {
  const json: JsonSchema = { type: "object", additionalProperties: value.json, propertyNames: key?.json };
  return schema(json, (v, path) => {
    if (!isObject(v)) throw new SchemaError(path, `must be an object, got ${describe(v)}`);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) {
      if (key) key(k, join(path, k));
      out[k] = value(x, join(path, k));
    }
    return out;
  });
}

export function oneOf<A, B>(a: Schema<A>, b: Schema<B>, what: string): Schema<A | B> {
  return schema({ anyOf: [a.json, b.json] }, (v, path) => {
    try {
      return a(v, path);
    } catch {
      try {
        return b(v, path);
      } catch {
        throw new SchemaError(path, `must be ${what}, got ${describe(v)}`);
      }
    }
  });
}

/** The dotted key paths a JSON Schema describes, down to its leaves; `*` is a free-form key. */
export function keyPaths(json: JsonSchema, prefix = ""): string[] {
  const at = (key: string): string => join(prefix, key);
  if (json.properties) return Object.entries(json.properties).flatMap(([k, p]) => keyPaths(p, at(k)));
  if (typeof json.additionalProperties === "object") return keyPaths(json.additionalProperties, at("*"));
  return prefix ? [prefix] : [];
}
