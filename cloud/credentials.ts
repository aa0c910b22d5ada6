// Where the cloud credentials come from: fixed values, files (re-read when they
// change, as a mounted Kubernetes secret does), or the instance's RAM role via
// the metadata service. Errors name the source, never its content.

import { readFile, stat } from "node:fs/promises";
import { type Logger, silentLogger } from "../lib/log.js";
import type { MetadataClient } from "./metadata.js";

export interface Credentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

/** The shape @alicloud/pop-core's credentialsProvider wants. */
export interface CredentialsProvider {
  getCredentials(): Promise<Credentials>;
}

export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsError";
  }
}

function checkCredentials(c: Credentials, source: string): Credentials {
  if (typeof c.accessKeyId !== "string" || c.accessKeyId.trim() === "")
    throw new CredentialsError(`${source}: accessKeyId is empty`);
  if (typeof c.accessKeySecret !== "string" || c.accessKeySecret.trim() === "")
    throw new CredentialsError(`${source}: accessKeySecret is empty`);
  if (c.securityToken !== undefined && typeof c.securityToken !== "string")
    throw new CredentialsError(`${source}: securityToken is not a string`);
  const out: Credentials = { accessKeyId: c.accessKeyId.trim(), accessKeySecret: c.accessKeySecret.trim() };
  if (c.securityToken?.trim()) out.securityToken = c.securityToken.trim();
  return out;
}

// ---- static ------------------------------------------------------------------

export function staticCredentialsProvider(c: Credentials): CredentialsProvider {
  const creds = checkCredentials(c, "static credentials");
  return { getCredentials: async () => ({ ...creds }) };
}

// ---- files -------------------------------------------------------------------

interface FileVersion {
  mtimeMs: number;
  size: number;
  ino: number;
}

/** Reads a file, caching its content until its mtime, size or inode change. */
function watchedFile<T>(path: string, parse: (text: string) => T): () => Promise<T> {
  let cache: { version: FileVersion; value: T } | undefined;
  return async () => {
    let version: FileVersion;
    let text: string;
    try {
      const st = await stat(path);
      version = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
      if (
        cache &&
        cache.version.mtimeMs === version.mtimeMs &&
        cache.version.size === version.size &&
        cache.version.ino === version.ino
      )
        return cache.value;
      text = await readFile(path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === "ENOENT"
          ? "does not exist"
          : code === "EACCES"
            ? "is not readable"
            : `cannot be read (${code})`;
      throw new CredentialsError(`credentials file ${path} ${why}`);
    }
    const value = parse(text);
    cache = { version, value };
    return value;
  };
}

function singleValue(path: string, what: string): (text: string) => string {
  return (text) => {
    const v = text.trim();
    if (v === "") throw new CredentialsError(`credentials file ${path} (${what}) is empty`);
    if (/\s/.test(v))
      throw new CredentialsError(`credentials file ${path} (${what}) holds more than one value`);
    return v;
  };
}

export interface FileCredentialsOptions {
  accessKeyIdFile: string;
  accessKeySecretFile: string;
  securityTokenFile?: string;
}

/** One value per file, trimmed; re-read whenever a file changes. */
export function fileCredentialsProvider(opts: FileCredentialsOptions): CredentialsProvider {
  const id = watchedFile(opts.accessKeyIdFile, singleValue(opts.accessKeyIdFile, "accessKeyId"));
  const secret = watchedFile(
    opts.accessKeySecretFile,
    singleValue(opts.accessKeySecretFile, "accessKeySecret"),
  );
  const tokenFile = opts.securityTokenFile;
  const token = tokenFile ? watchedFile(tokenFile, singleValue(tokenFile, "securityToken")) : undefined;
  return {
    getCredentials: async () => {
      const [accessKeyId, accessKeySecret, securityToken] = await Promise.all([id(), secret(), token?.()]);
      const c: Credentials = { accessKeyId, accessKeySecret };
      if (securityToken) c.securityToken = securityToken;
      return c;
    },
  };
}

/**
 * One JSON file: {"accessKeyId": …, "accessKeySecret": …, "securityToken"?: …}
 * (the AccessKeyId/AccessKeySecret/SecurityToken spelling is accepted too).
 */
export function jsonFileCredentialsProvider(path: string): CredentialsProvider {
  const read = watchedFile(path, (text): Credentials => {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      // JSON.parse's message quotes the content: never show it
      throw new CredentialsError(`credentials file ${path} is not valid JSON`);
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc))
      throw new CredentialsError(`credentials file ${path} must hold a JSON object`);
    const d = doc as Record<string, unknown>;
    const pick = (a: string, b: string): string | undefined => {
      const v = d[a] ?? d[b];
      return typeof v === "string" ? v : undefined;
    };
    const c: Credentials = {
      accessKeyId: pick("accessKeyId", "AccessKeyId") ?? "",
      accessKeySecret: pick("accessKeySecret", "AccessKeySecret") ?? "",
    };
    const token = pick("securityToken", "SecurityToken");
    if (token) c.securityToken = token;
    return checkCredentials(c, `credentials file ${path}`);
  });
  return { getCredentials: async () => ({ ...(await read()) }) };
}

// ---- RAM role via metadata ---------------------------------------------------

export interface RamRoleCredentialsOptions {
  metadata: Pick<MetadataClient, "ramRoles" | "ramRoleCredentials">;
  /** Default: the first role the metadata service lists. */
  roleName?: string;
  /** Refresh when less than this remains before Expiration (never more than half the lifetime). Default 5 min. */
  refreshMarginMs?: number;
  /** After a failed refresh while the old credentials are still valid, wait this long before trying again. Default 10 s. */
  retryAfterFailureMs?: number;
  now?: () => number;
  logger?: Logger;
}

interface CachedCredentials {
  creds: Credentials;
  expiresAt: number;
  refreshAt: number;
}

export function ramRoleCredentialsProvider(opts: RamRoleCredentialsOptions): CredentialsProvider {
  const marginMs = opts.refreshMarginMs ?? 5 * 60_000;
  const retryAfterFailureMs = opts.retryAfterFailureMs ?? 10_000;
  const now = opts.now ?? Date.now;
  const log = (opts.logger ?? silentLogger).child({ component: "credentials", source: "ram-role" });
  let role = opts.roleName;
  let cached: CachedCredentials | undefined;
  let nextAttemptAt = 0;
  let inflight: Promise<Credentials> | undefined;

  async function roleName(): Promise<string> {
    if (role) return role;
    const roles = await opts.metadata.ramRoles();
    const first = roles[0];
    if (!first) throw new CredentialsError("no RAM role is attached to this instance");
    role = first;
    return first;
  }

  async function refresh(): Promise<Credentials> {
    let name: string | undefined;
    try {
      name = await roleName();
      const c = await opts.metadata.ramRoleCredentials(name);
      const fetchedAt = now();
      const expiresAt = c.expiration.getTime();
      if (expiresAt <= fetchedAt)
        throw new CredentialsError(`RAM role ${name}: the metadata service gave expired credentials`);
      const margin = Math.min(marginMs, (expiresAt - fetchedAt) / 2);
      const creds = checkCredentials(
        { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: c.securityToken },
        `RAM role ${name}`,
      );
      cached = { creds, expiresAt, refreshAt: expiresAt - margin };
      log.info("RAM role credentials refreshed", { role: name, expiration: c.expiration.toISOString() });
      return creds;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const t = now();
      if (cached && t < cached.expiresAt) {
        nextAttemptAt = t + retryAfterFailureMs;
        log.warn("RAM role credentials refresh failed; using the current ones until they expire", {
          role: name,
          error: message,
          expiresInMs: cached.expiresAt - t,
        });
        return cached.creds;
      }
      throw new CredentialsError(
        `RAM role credentials unavailable${name ? ` (role ${name})` : ""}: ${message}`,
      );
    }
  }

  return {
    getCredentials(): Promise<Credentials> {
      const t = now();
      if (cached && t < cached.refreshAt) return Promise.resolve({ ...cached.creds });
      if (cached && t < cached.expiresAt && t < nextAttemptAt) return Promise.resolve({ ...cached.creds });
      inflight ??= refresh().finally(() => {
        inflight = undefined;
      });
      return inflight.then((c) => ({ ...c }));
    },
  };
}
