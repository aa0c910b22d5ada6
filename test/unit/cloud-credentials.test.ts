import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CredentialsError,
  fileCredentialsProvider,
  jsonFileCredentialsProvider,
  ramRoleCredentialsProvider,
  staticCredentialsProvider,
} from "../../cloud/credentials.js";
import type { RamRoleCredentials } from "../../cloud/metadata.js";
import { memoryLogger } from "./cloud-helpers.js";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "eniway-creds-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a file and gives it a distinct mtime, so a rewrite is always visible. */
let tick = 1_700_000_000;
async function put(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  tick += 10;
  await utimes(path, tick, tick);
}

describe("staticCredentialsProvider", () => {
  it("returns the values, trimmed", async () => {
    const p = staticCredentialsProvider({ accessKeyId: " AK ", accessKeySecret: "SK\n" });
    expect(await p.getCredentials()).toEqual({ accessKeyId: "AK", accessKeySecret: "SK" });
  });

  it("refuses empty values without echoing the others", () => {
    expect(() => staticCredentialsProvider({ accessKeyId: "AK-VISIBLE", accessKeySecret: "" })).toThrow(
      /accessKeySecret is empty/,
    );
  });
});

describe("fileCredentialsProvider", () => {
  it("reads one trimmed value per file and re-reads when a file changes", async () => {
    const id = join(dir, "id");
    const secret = join(dir, "secret");
    await put(id, "AK1\n");
    await put(secret, "  SK1  \n");
    const p = fileCredentialsProvider({ accessKeyIdFile: id, accessKeySecretFile: secret });
    expect(await p.getCredentials()).toEqual({ accessKeyId: "AK1", accessKeySecret: "SK1" });
    await put(secret, "SK2\n");
    expect(await p.getCredentials()).toEqual({ accessKeyId: "AK1", accessKeySecret: "SK2" });
  });

  it("serves the cached value while the file is unchanged", async () => {
    const id = join(dir, "id");
    const secret = join(dir, "secret");
    await put(id, "AK1");
    await put(secret, "SK1");
    const p = fileCredentialsProvider({ accessKeyIdFile: id, accessKeySecretFile: secret });
    await p.getCredentials();
    // same size, same mtime: not re-read (as if nothing happened)
    await writeFile(secret, "SK9");
    await utimes(secret, tick, tick);
    expect((await p.getCredentials()).accessKeySecret).toBe("SK1");
  });

  it("reads an optional security token file", async () => {
    const [id, secret, token] = ["id", "secret", "token"].map((f) => join(dir, f)) as [
      string,
      string,
      string,
    ];
    await put(id, "AK");
    await put(secret, "SK");
    await put(token, "STS\n");
    const p = fileCredentialsProvider({
      accessKeyIdFile: id,
      accessKeySecretFile: secret,
      securityTokenFile: token,
    });
    expect(await p.getCredentials()).toEqual({
      accessKeyId: "AK",
      accessKeySecret: "SK",
      securityToken: "STS",
    });
  });

  it("names the file, never its content, when something is wrong", async () => {
    const id = join(dir, "id");
    const secret = join(dir, "secret");
    await put(id, "AK");
    const missing = fileCredentialsProvider({ accessKeyIdFile: id, accessKeySecretFile: secret });
    await expect(missing.getCredentials()).rejects.toThrow(`credentials file ${secret} does not exist`);

    await put(secret, "   \n");
    await expect(missing.getCredentials()).rejects.toThrow(
      `credentials file ${secret} (accessKeySecret) is empty`,
    );

    await put(secret, "TOP-SECRET second-line\n");
    const err = (await missing.getCredentials().catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err.message).toContain(secret);
    expect(err.message).not.toContain("TOP-SECRET");
  });
});

describe("jsonFileCredentialsProvider", () => {
  it("reads either spelling, and hides content when the JSON is broken", async () => {
    const f = join(dir, "creds.json");
    await put(f, JSON.stringify({ accessKeyId: "AK", accessKeySecret: "SK" }));
    const p = jsonFileCredentialsProvider(f);
    expect(await p.getCredentials()).toEqual({ accessKeyId: "AK", accessKeySecret: "SK" });
    await put(f, JSON.stringify({ AccessKeyId: "AK2", AccessKeySecret: "SK2", SecurityToken: "T2" }));
    expect(await p.getCredentials()).toEqual({
      accessKeyId: "AK2",
      accessKeySecret: "SK2",
      securityToken: "T2",
    });
    await put(f, '{"accessKeySecret": "LEAK-ME"');
    const err = (await p.getCredentials().catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`credentials file ${f} is not valid JSON`);
  });
});

describe("ramRoleCredentialsProvider", () => {
  const HOUR = 3_600_000;

  function fakeMetadata(start: number) {
    const issued: RamRoleCredentials[] = [];
    let fail: Error | undefined;
    let lifetimeMs = 6 * HOUR;
    let clock = start;
    let gate: Promise<void> | undefined;
    const md = {
      calls: 0,
      roleCalls: 0,
      async ramRoles() {
        md.roleCalls++;
        return ["EniwayRole"];
      },
      async ramRoleCredentials(role: string): Promise<RamRoleCredentials> {
        md.calls++;
        expect(role).toBe("EniwayRole");
        if (gate) await gate;
        if (fail) throw fail;
        const n = issued.length + 1;
        const c = {
          accessKeyId: `STS.AK${n}`,
          accessKeySecret: `sk${n}`,
          securityToken: `tok${n}`,
          expiration: new Date(clock + lifetimeMs),
        };
        issued.push(c);
        return c;
      },
    };
    return {
      md,
      now: () => clock,
      advance: (ms: number) => {
        clock += ms;
      },
      setFail: (e: Error | undefined) => {
        fail = e;
      },
      setLifetime: (ms: number) => {
        lifetimeMs = ms;
      },
      setGate: (g: Promise<void> | undefined) => {
        gate = g;
      },
    };
  }

  it("discovers the role, caches, and refreshes 5 minutes before Expiration", async () => {
    const f = fakeMetadata(Date.UTC(2024, 0, 1));
    const p = ramRoleCredentialsProvider({ metadata: f.md, now: f.now });
    expect(await p.getCredentials()).toEqual({
      accessKeyId: "STS.AK1",
      accessKeySecret: "sk1",
      securityToken: "tok1",
    });
    f.advance(6 * HOUR - 6 * 60_000); // 6 min left
    expect((await p.getCredentials()).accessKeyId).toBe("STS.AK1");
    expect(f.md.calls).toBe(1);
    f.advance(2 * 60_000); // 4 min left: refresh
    expect((await p.getCredentials()).accessKeyId).toBe("STS.AK2");
    expect(f.md.calls).toBe(2);
    expect(f.md.roleCalls).toBe(1);
  });

  it("never waits longer than half the lifetime of short-lived credentials", async () => {
    const f = fakeMetadata(0);
    f.setLifetime(4 * 60_000); // 4 min: margin becomes 2 min
    const p = ramRoleCredentialsProvider({ metadata: f.md, now: f.now, roleName: "EniwayRole" });
    await p.getCredentials();
    f.advance(119_000);
    expect((await p.getCredentials()).accessKeyId).toBe("STS.AK1");
    f.advance(2_000);
    expect((await p.getCredentials()).accessKeyId).toBe("STS.AK2");
    expect(f.md.roleCalls).toBe(0);
  });

  it("concurrent callers share one refresh", async () => {
    const f = fakeMetadata(0);
    let open!: () => void;
    f.setGate(
      new Promise<void>((r) => {
        open = r;
      }),
    );
    const p = ramRoleCredentialsProvider({ metadata: f.md, now: f.now });
    const all = Promise.all(Array.from({ length: 5 }, () => p.getCredentials()));
    await new Promise((r) => setTimeout(r, 5));
    open();
    const got = await all;
    expect(new Set(got.map((c) => c.accessKeyId))).toEqual(new Set(["STS.AK1"]));
    expect(f.md.calls).toBe(1);
  });

  it("keeps using still-valid credentials when a refresh fails, with a warning, then retries later", async () => {
    const f = fakeMetadata(0);
    const { logger, lines } = memoryLogger();
    const p = ramRoleCredentialsProvider({ metadata: f.md, now: f.now, logger, retryAfterFailureMs: 10_000 });
    await p.getCredentials();
    f.advance(6 * HOUR - 60_000); // 1 min left
    f.setFail(new Error("metadata unreachable"));
    expect((await p.getCredentials()).accessKeyId).toBe("STS.AK1");
    expect(lines.some((l) => l.includes('"level":"warn"') && l.includes("metadata unreachable"))).toBe(true);
    expect(lines.join("\n")).not.toMatch(/sk1|tok1/);
    const calls = f.md.calls;
    f.advance(5_000);
    await p.getCredentials(); // within the back-off: no new attempt
    expect(f.md.calls).toBe(calls);
    f.setFail(undefined);
    f.advance(6_000);
    expect((await p.getCredentials()).accessKeyId).toBe("STS.AK2");
  });

  it("fails once the old credentials have expired and the refresh fails", async () => {
    const f = fakeMetadata(0);
    const p = ramRoleCredentialsProvider({ metadata: f.md, now: f.now });
    await p.getCredentials();
    f.advance(6 * HOUR + 1);
    f.setFail(new Error("metadata unreachable"));
    await expect(p.getCredentials()).rejects.toThrow(
      /RAM role credentials unavailable \(role EniwayRole\): metadata unreachable/,
    );
  });

  it("refuses credentials that are already expired", async () => {
    const f = fakeMetadata(0);
    f.setLifetime(-1);
    const p = ramRoleCredentialsProvider({ metadata: f.md, now: f.now });
    await expect(p.getCredentials()).rejects.toThrow(/expired/);
  });
});
