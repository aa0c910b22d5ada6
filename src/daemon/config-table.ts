// The README's configuration table, made from the daemon's schema: a row per
// key (a free-form map is one row), its default and what it means, so a
// default or a key is stated once, in config.ts. `npm run schema` writes it
// between the README's two markers; a test keeps it current.

import type { JsonSchema } from "../../lib/schema.js";
import { configSchema } from "./config.js";

export const TABLE_BEGIN =
  "<!-- configuration table: written by npm run schema from src/daemon/config.ts -->";
export const TABLE_END = "<!-- end of the configuration table -->";

/** A key's default as the table shows it: a value, or "none" for an empty one. */
function shown(v: unknown): string {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === null || v === "" || (Array.isArray(v) && v.length === 0)) return "none";
  if (typeof v === "object" && Object.keys(v).length === 0) return "none";
  return `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;
}

/** Key, default and meaning of each leaf under `json`. */
export function configRows(json: JsonSchema = configSchema.json, path = ""): [string, string, string][] {
  if (json.properties)
    return Object.entries(json.properties).flatMap(([k, p]) => configRows(p, path ? `${path}.${k}` : k));
  return [[`\`${path}\``, shown(json.default), json.description ?? ""]];
}

const cell = (s: string): string => s.replaceAll("|", "\\|");

/** The table in Markdown (unaligned; the formatter aligns it). */
export function configTable(): string {
  const lines = configRows().map((r) => `| ${r.map(cell).join(" | ")} |`);
  return ["| key | default | meaning |", "| --- | --- | --- |", ...lines].join("\n");
}

/** The table's rows as a Markdown document holds them, between the markers: cells trimmed. */
export function tableIn(markdown: string): string[][] {
  const from = markdown.indexOf(TABLE_BEGIN);
  const to = markdown.indexOf(TABLE_END);
  if (from < 0 || to < from) throw new Error("the configuration table's markers are missing");
  return markdown
    .slice(from + TABLE_BEGIN.length, to)
    .split("\n")
    .filter((l) => l.startsWith("|") && !/^\|[\s|:-]+\|$/.test(l))
    .map((l) =>
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

/** The document with the table between its markers replaced by the schema's. */
export function withConfigTable(markdown: string): string {
  const from = markdown.indexOf(TABLE_BEGIN);
  const to = markdown.indexOf(TABLE_END);
  if (from < 0 || to < from) throw new Error("the configuration table's markers are missing");
  return `${markdown.slice(0, from + TABLE_BEGIN.length)}\n\n${configTable()}\n\n${markdown.slice(to)}`;
}
