// A small validator for config and world files. Each schema checks a value
// and returns it typed, or throws a SchemaError naming the exact key path
// (e.g. `pool.minIdle`), so a broken file is reported precisely.

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

export type Schema<T> = (value: unknown, path: string) => T;

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

export function str(
  opts: { pattern?: RegExp; minLength?: number; oneOf?: readonly string[] } = {},
): Schema<string> {
  return (v, path) => {
    if (typeof v !== "string") throw new SchemaError(path, `must be a string, got ${describe(v)}`);
    if (v.length < (opts.minLength ?? 0)) throw new SchemaError(path, "must not be empty");
    if (opts.oneOf && !opts.oneOf.includes(v))
      throw new SchemaError(path, `must be one of ${opts.oneOf.join(", ")}, got ${JSON.stringify(v)}`);
    if (opts.pattern && !opts.pattern.test(v))
      throw new SchemaError(path, `has an invalid format: ${JSON.stringify(v)}`);
    return v;
  };
}

export function num(opts: { min?: number; max?: number; int?: boolean } = {}): Schema<number> {
  return (v, path) => {
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new SchemaError(path, `must be a number, got ${describe(v)}`);
    if (opts.int && !Number.isInteger(v)) throw new SchemaError(path, `must be an integer, got ${v}`);
    if (opts.min !== undefined && v < opts.min)
      throw new SchemaError(path, `must be >= ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max)
      throw new SchemaError(path, `must be <= ${opts.max}, got ${v}`);
    return v;
  };
}

export const bool: Schema<boolean> = (v, path) => {
  if (typeof v !== "boolean") throw new SchemaError(path, `must be true or false, got ${describe(v)}`);
  return v;
};

export function arr<T>(item: Schema<T>, opts: { min?: number; max?: number } = {}): Schema<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) throw new SchemaError(path, `must be an array, got ${describe(v)}`);
    if (opts.min !== undefined && v.length < opts.min)
      throw new SchemaError(path, `must have at least ${opts.min} item(s)`);
    if (opts.max !== undefined && v.length > opts.max)
      throw new SchemaError(path, `must have at most ${opts.max} item(s)`);
    return v.map((x, i) => item(x, join(path, i)));
  };
}

/** A value that may be absent; `fallback` is used when it is. */
export interface Optional<T> {
  optional: true;
  schema: Schema<T>;
  fallback: () => T;
}

export function opt<T>(schema: Schema<T>, fallback: T | (() => T)): Optional<T> {
  return {
    optional: true,
    schema,
    fallback: typeof fallback === "function" ? (fallback as () => T) : () => structuredClone(fallback),
  };
}

/** A value that may be absent or null; absent reads as null. */
export function optNull<T>(schema: Schema<T>): Optional<T | null> {
  return { optional: true, schema: (v, path) => (v === null ? null : schema(v, path)), fallback: () => null };
}

type Field = Schema<unknown> | Optional<unknown>;
type FieldType<F> = F extends Optional<infer T> ? T : F extends Schema<infer T> ? T : never;
export type Shape = Record<string, Field>;
export type ObjOf<S extends Shape> = { [K in keyof S]: FieldType<S[K]> };

/** An object with exactly these keys; unknown keys are rejected by name. */
export function obj<S extends Shape>(shape: S): Schema<ObjOf<S>> {
  return (v, path) => {
    if (!isObject(v)) throw new SchemaError(path, `must be an object, got ${describe(v)}`);
    for (const key of Object.keys(v)) {
      if (!(key in shape)) throw new SchemaError(join(path, key), "is not a known key");
    }
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(shape)) {
      const p = join(path, key);
      const present = v[key] !== undefined;
      if ("optional" in field) out[key] = present ? field.schema(v[key], p) : field.fallback();
      else if (!present) throw new SchemaError(p, "is required");
      else out[key] = field(v[key], p);
    }
    return out as ObjOf<S>;
  };
}

/** A map from free-form keys to values of one schema. */
export function record<T>(value: Schema<T>, key?: Schema<string>): Schema<Record<string, T>> {
  return (v, path) => {
    if (!isObject(v)) throw new SchemaError(path, `must be an object, got ${describe(v)}`);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) {
      if (key) key(k, join(path, k));
      out[k] = value(x, join(path, k));
    }
    return out;
  };
}

export function oneOf<A, B>(a: Schema<A>, b: Schema<B>, what: string): Schema<A | B> {
  return (v, path) => {
    try {
      return a(v, path);
    } catch {
      try {
        return b(v, path);
      } catch {
        throw new SchemaError(path, `must be ${what}, got ${describe(v)}`);
      }
    }
  };
}
