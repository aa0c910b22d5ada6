// The Helm chart's schema for `config`: the daemon's own schema (config.ts)
// as JSON Schema, minus the keys the chart sets itself. `npm run schema`
// writes it into charts/eniway/values.schema.json; a test keeps it current.

import { isObject } from "../../lib/json.js";
import type { JsonSchema } from "../../lib/schema.js";
import { configSchema } from "./config.js";

/** The chart's values schema, from the package root. */
export const VALUES_SCHEMA = "charts/eniway/values.schema.json";

/**
 * The config keys the chart sets itself (templates/_helpers.tpl) or that
 * differ per node, so `config.*` cannot hold them. A section covers its keys.
 */
export const CHART_OWNED: readonly string[] = [
  "socket", // from paths.socketDir
  "stateDir", // from paths.stateDir
  "http", // http.listen from metrics.listen
  "node", // per node: the daemon's own namespace, the instance from metadata
  "kubernetes.enabled", // always true
  "kubernetes.kubeconfig", // in-cluster: the ServiceAccount
  "kubernetes.nodeName", // env NODE_NAME, from spec.nodeName
  "cni.confDir", // the node's paths.cniConfDir, mounted at /host/cni/net.d
  "cloud.accessKeyId", // credentials.accessKeyId, into a Secret
  "cloud.accessKeySecret", // credentials.accessKeySecret, into a Secret
  "cloud.credentialsFile", // the Secret's credentials.json
  "cloud.ramRole", // credentials.ramRole
];

export function isChartOwned(path: string): boolean {
  return CHART_OWNED.some((key) => path === key || path.startsWith(`${key}.`));
}

/** `json` without the chart's keys (at `path` and below); null when nothing is left of it. */
function withoutOwned(json: JsonSchema, path: string): JsonSchema | null {
  if (!json.properties) return json;
  const properties: Record<string, JsonSchema> = {};
  for (const [key, field] of Object.entries(json.properties)) {
    const at = path ? `${path}.${key}` : key;
    const kept = isChartOwned(at) ? null : withoutOwned(field, at);
    if (kept) properties[key] = kept;
  }
  if (Object.keys(properties).length === 0) return null;
  const out: JsonSchema = { ...json, properties };
  if (json.required) out.required = json.required.filter((key) => key in properties);
  // A section's default is its fields' defaults: those that are left.
  if (isObject(json.default))
    out.default = Object.fromEntries(Object.entries(properties).map(([key, p]) => [key, p.default]));
  return out;
}

/** The schema of the chart's `config` value. */
export function chartConfigSchema(): JsonSchema {
  const json = withoutOwned(configSchema.json, "");
  if (!json) throw new Error("the chart owns every config key");
  return { description: "Generated from src/daemon/config.ts by `npm run schema`: do not edit.", ...json };
}

/** The chart's whole values schema: `current` with its `config` part generated. */
export function valuesSchema(current: JsonSchema): JsonSchema {
  return { ...current, properties: { ...current.properties, config: chartConfigSchema() } };
}
