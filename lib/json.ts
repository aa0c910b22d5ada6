// The shape of a decoded JSON object. Imports nothing, so the standalone CNI
// plugin may use it too.

export type Json = Record<string, unknown>;

/** A JSON object: not null, not an array. */
export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
