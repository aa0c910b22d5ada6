// Spelling out RPC list parameters the way the OpenAPI gateway reads them:
// `Name.1`, `Name.2`, … and `Tag.1.Key` / `Tag.1.Value`, …

import type { RpcParams } from "./rpc.js";

export function repeatList(name: string, values: readonly string[]): RpcParams {
  const out: RpcParams = {};
  values.forEach((v, i) => {
    out[`${name}.${i + 1}`] = v;
  });
  return out;
}

/** Tags in key order, so the same tags always produce the same parameters. */
export function tagParams(tags: Record<string, string>): RpcParams {
  const out: RpcParams = {};
  Object.keys(tags)
    .sort()
    .forEach((key, i) => {
      out[`Tag.${i + 1}.Key`] = key;
      out[`Tag.${i + 1}.Value`] = tags[key] ?? "";
    });
  return out;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
