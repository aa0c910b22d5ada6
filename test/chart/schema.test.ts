// The chart's values.schema.json and the README's configuration table: both
// made from the daemon's own schema. The chart's `config` part is the daemon's own
// schema (src/daemon/config.ts) less the keys the chart sets, exactly as
// `npm run schema` writes it. (chart.test.ts runs helm on values both refuse.)

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../lib/process.js";
import { type JsonSchema, keyPaths } from "../../lib/schema.js";
import { CHART_OWNED, isChartOwned, VALUES_SCHEMA, valuesSchema } from "../../src/daemon/chart-schema.js";
import { configSchema } from "../../src/daemon/config.js";
import { configRows, tableIn } from "../../src/daemon/config-table.js";

const readValuesSchema = async (): Promise<JsonSchema> =>
  JSON.parse(await readFile(join(packageRoot(), VALUES_SCHEMA), "utf8")) as JsonSchema;

describe("values.schema.json", () => {
  it("is what `npm run schema` writes: run it after changing the daemon's config schema", async () => {
    const checkedIn = await readValuesSchema();
    expect(checkedIn).toEqual(valuesSchema(checkedIn));
  });

  it("has every key of the daemon's config, but those the chart sets itself", async () => {
    const chart = keyPaths((await readValuesSchema()).properties?.config ?? {});
    const daemon = keyPaths(configSchema.json);
    expect(daemon.filter((k) => !isChartOwned(k) && !chart.includes(k))).toEqual([]);
    expect(chart.filter((k) => isChartOwned(k) || !daemon.includes(k))).toEqual([]);
    // The list names keys that exist, so it cannot outlive one.
    for (const owned of CHART_OWNED)
      expect(
        daemon.some((k) => k === owned || k.startsWith(`${owned}.`)),
        owned,
      ).toBe(true);
  });
});

describe("the README's configuration table", () => {
  it("is what `npm run schema` writes: every key, its default and its meaning, from the schema", async () => {
    const readme = await readFile(join(packageRoot(), "README.md"), "utf8");
    const rows = configRows();
    expect(tableIn(readme).slice(1)).toEqual(rows.map((r) => r.map((c) => c.replaceAll("|", "\\|"))));
    expect(rows.map((r) => r[0])).toContain("`pool.minIdle`");
  });

  it("says what every key means", () => {
    expect(
      configRows()
        .filter(([, , meaning]) => meaning === "")
        .map(([key]) => key),
    ).toEqual([]);
  });
});
