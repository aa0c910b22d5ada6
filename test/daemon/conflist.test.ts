// The conflist the daemon writes once it is ready, and the plugin the chart's
// init container installs: both replace their file atomically and durably
// (lib/durable.ts), with the mode a runtime needs, and leave no temp file.

import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { copyDurably } from "../../lib/durable.js";
import { CONFLIST_NAME, conflist, writeConflist } from "../../src/daemon/conflist.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), "eniway-conflist-"));
  dirs.push(d);
  return d;
};

describe("the conflist", () => {
  it("is written whole, 0644, over an older one, with no temp file left", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, CONFLIST_NAME), "old and broken {", { mode: 0o600 });
    const content = conflist({ socket: "/run/eniway/eniway.sock" });
    const file = await writeConflist(dir, content);
    expect(file).toBe(join(dir, CONFLIST_NAME));
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual(content);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual([CONFLIST_NAME]);
    expect(content).toMatchObject({
      name: "eniway",
      plugins: [{ type: "eniway" }, { type: "portmap" }, { type: "bandwidth" }],
    });
  });

  it("a failed write leaves the old file as it was", async () => {
    const dir = await tempDir();
    await expect(writeConflist(join(dir, "no-such-folder"), { name: "x" })).rejects.toThrow(/ENOENT/);
    await writeFile(join(dir, CONFLIST_NAME), "{}");
    await expect(copyDurably(join(dir, "absent"), join(dir, CONFLIST_NAME), 0o644)).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(dir, CONFLIST_NAME), "utf8")).toBe("{}");
    expect(await readdir(dir)).toEqual([CONFLIST_NAME]);
  });

  it("the plugin is copied executable (0755), whatever the umask", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "built"), "#!/bin/true\n", { mode: 0o600 });
    const old = process.umask(0o077);
    try {
      await copyDurably(join(dir, "built"), join(dir, "eniway"), 0o755);
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, "eniway"))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(dir, "eniway"), "utf8")).toBe("#!/bin/true\n");
    expect((await readdir(dir)).sort()).toEqual(["built", "eniway"]);
  });
});
