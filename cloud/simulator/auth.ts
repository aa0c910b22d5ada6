// Request authentication as the OpenAPI gateway does it: HMAC-SHA1
// signatures (SignatureVersion 1.0, parameters in the query: pop-core), and
// ACS3-HMAC-SHA256 (V3, the Authorization header: the official generated
// SDKs' default), each with a timestamp window, single-use nonces, static
// AccessKeys and expiring STS credentials (AccessKeyId + SecurityToken).

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { type ApiError, apiError, missing } from "./errors.js";
import type { Params } from "./params.js";
import type { Clock } from "./state.js";

export function percentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function stringToSign(method: string, params: Params): string {
  const canonical = Object.keys(params)
    .filter((k) => k !== "Signature")
    .sort()
    .map((k) => `${percentEncode(k)}=${percentEncode(params[k]!)}`)
    .join("&");
  return `${method}&${percentEncode("/")}&${percentEncode(canonical)}`;
}

export function sign(method: string, params: Params, secret: string): string {
  return createHmac("sha1", `${secret}&`).update(stringToSign(method, params)).digest("base64");
}

export interface StsCredentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken: string;
  issuedAt: number;
  expiresAt: number;
}

// ---- V3: ACS3-HMAC-SHA256 ------------------------------------------------------

export const V3_ALGORITHM = "ACS3-HMAC-SHA256";
const AUTHORIZATION_V3 =
  /^ACS3-HMAC-SHA256 Credential=([^,\s]+),SignedHeaders=([a-z0-9;_.-]+),Signature=([0-9a-f]{64})$/;
/** Headers a V3 request must sign (besides every other x-acs-* header it sends). */
const V3_REQUIRED = [
  "host",
  "x-acs-action",
  "x-acs-version",
  "x-acs-date",
  "x-acs-signature-nonce",
  "x-acs-content-sha256",
];

export const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** Percent-decoding that keeps a malformed sequence as sent (its signature then cannot match). */
const decode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The query as V3 signs it: pairs decoded, names and values re-encoded (RFC 3986), sorted by name, `k=` when empty. */
export function canonicalQueryV3(rawQuery: string): string {
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const [k, v] = eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
    pairs.push([percentEncode(decode(k)), percentEncode(decode(v))]);
  }
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

export interface V3Canonical {
  method: string;
  path: string;
  rawQuery: string;
  /** The signed headers' values, by lowercase name. */
  headers: Record<string, string>;
  signedHeaders: string[];
  payloadHash: string;
}

/** Method, URI, query, `name:value` per signed header, the signed-header list, the payload hash. */
export function canonicalRequestV3(c: V3Canonical): string {
  const headerLines = c.signedHeaders.map((h) => `${h}:${(c.headers[h] ?? "").trim()}\n`).join("");
  return [
    c.method.toUpperCase(),
    c.path,
    canonicalQueryV3(c.rawQuery),
    headerLines,
    c.signedHeaders.join(";"),
    c.payloadHash,
  ].join("\n");
}

export const stringToSignV3 = (canonicalRequest: string): string =>
  `${V3_ALGORITHM}\n${sha256Hex(canonicalRequest)}`;

export const signV3 = (secret: string, stringToSign: string): string =>
  createHmac("sha256", secret).update(stringToSign).digest("hex");

/** A V3 request as it arrived: the raw query (no "?"), Node's lowercase headers, the body read. */
export interface V3Request {
  method: string;
  path: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const headerValue = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v.join(",") : v;
};

export interface Authenticator {
  /** V1 (query parameters): null when the request is authentic; the gateway's error otherwise. */
  check(method: string, params: Params): ApiError | null;
  /** V3 (the Authorization header): null when authentic; the gateway's error otherwise. */
  checkV3(req: V3Request): ApiError | null;
  issueSts(ttlSeconds: number): StsCredentials;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/;

export function createAuthenticator(opts: {
  keys: { accessKeyId: string; accessKeySecret: string }[];
  windowMs: number;
  clock: Clock;
}): Authenticator {
  const keys = new Map(opts.keys.map((k) => [k.accessKeyId, k.accessKeySecret]));
  const sts = new Map<string, StsCredentials>();
  const nonces = new Map<string, number>();
  let lastPrune = 0;

  const prune = (now: number): void => {
    if (now - lastPrune < 10_000) return;
    lastPrune = now;
    for (const [n, exp] of nonces) if (exp < now) nonces.delete(n);
    for (const [ak, c] of sts) if (c.expiresAt + opts.windowMs < now) sts.delete(ak);
  };

  const timestampError = (ts: string, now: number): ApiError | null => {
    const when = TIMESTAMP.test(ts) ? Date.parse(ts) : Number.NaN;
    if (Number.isNaN(when)) return apiError("InvalidTimeStamp.Format");
    if (Math.abs(now - when) > opts.windowMs) return apiError("InvalidTimeStamp.Expired");
    return null;
  };

  /** The secret of a static AccessKey, or of live STS credentials with their token. */
  const secretOf = (ak: string, token: string | undefined, now: number): string | ApiError => {
    const secret = keys.get(ak);
    if (secret !== undefined) return secret;
    const cred = sts.get(ak);
    if (!cred) return apiError("InvalidAccessKeyId.NotFound");
    if (!token) return apiError("MissingSecurityToken");
    if (token !== cred.securityToken) {
      return token.length === cred.securityToken.length
        ? apiError("InvalidSecurityToken.MismatchWithAccessKey")
        : apiError("InvalidSecurityToken.Malformed");
    }
    if (cred.expiresAt <= now) return apiError("InvalidSecurityToken.Expired");
    return cred.accessKeySecret;
  };

  const same = (a: string, b: string): boolean => {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  };

  /** After the signature matched: a nonce is good once per AccessKey within the window. */
  const useNonce = (ak: string, nonce: string, now: number): ApiError | null => {
    prune(now);
    const key = `${ak}\0${nonce}`;
    if (nonces.has(key)) return apiError("SignatureNonceUsed");
    nonces.set(key, now + opts.windowMs);
    return null;
  };

  const check = (method: string, p: Params): ApiError | null => {
    for (const name of ["AccessKeyId", "Signature", "SignatureNonce", "Timestamp"]) {
      if (!p[name]) return missing(name);
    }
    if ((p.SignatureMethod ?? "HMAC-SHA1") !== "HMAC-SHA1") return apiError("InvalidSignatureMethod");
    if ((p.SignatureVersion ?? "1.0") !== "1.0") return apiError("IncompleteSignature");
    const now = opts.clock.now();
    const tsError = timestampError(p.Timestamp!, now);
    if (tsError) return tsError;
    const ak = p.AccessKeyId!;
    const secret = secretOf(ak, p.SecurityToken, now);
    if (typeof secret !== "string") return secret;
    if (!same(sign(method, p, secret), p.Signature!)) {
      return apiError(
        "SignatureDoesNotMatch",
        `Specified signature is not matched with our calculation. server string to sign is:${stringToSign(method, p)}`,
      );
    }
    return useNonce(ak, p.SignatureNonce!, now);
  };

  const checkV3 = (r: V3Request): ApiError | null => {
    const auth = headerValue(r.headers, "authorization") ?? "";
    if (!auth.startsWith(`${V3_ALGORITHM} `)) return apiError("InvalidSignatureMethod");
    const m = AUTHORIZATION_V3.exec(auth);
    if (!m) return apiError("IncompleteSignature");
    const [, ak, list, signature] = m as unknown as [string, string, string, string];
    const signed = list.split(";");
    // Every signed header is sent; host, the x-acs-* the gateway reads, and any other x-acs-* are signed.
    const sentAcs = Object.keys(r.headers).filter((h) => h.startsWith("x-acs-"));
    for (const h of [...V3_REQUIRED, ...sentAcs])
      if (!signed.includes(h)) return apiError("IncompleteSignature");
    const headers: Record<string, string> = {};
    for (const h of signed) {
      const v = headerValue(r.headers, h);
      if (v === undefined) return apiError("IncompleteSignature");
      headers[h] = v;
    }
    const now = opts.clock.now();
    const tsError = timestampError(headers["x-acs-date"]!, now);
    if (tsError) return tsError;
    const secret = secretOf(ak, headers["x-acs-security-token"], now);
    if (typeof secret !== "string") return secret;
    // The payload hash is the one of the body received, whatever the header says.
    const payloadHash = sha256Hex(r.body);
    const canonical = canonicalRequestV3({ ...r, headers, signedHeaders: signed, payloadHash });
    const toSign = stringToSignV3(canonical);
    if (headers["x-acs-content-sha256"] !== payloadHash || !same(signV3(secret, toSign), signature)) {
      return apiError(
        "SignatureDoesNotMatch",
        `Specified signature does not match our calculation. server StringToSign is [${toSign}]`,
      );
    }
    return useNonce(ak, headers["x-acs-signature-nonce"]!, now);
  };

  const issueSts = (ttlSeconds: number): StsCredentials => {
    const now = opts.clock.now();
    const cred: StsCredentials = {
      accessKeyId: `STS.${randomBytes(12).toString("hex")}`,
      accessKeySecret: randomBytes(24).toString("base64"),
      securityToken: `CAIS${randomBytes(48).toString("base64")}`,
      issuedAt: now,
      expiresAt: now + ttlSeconds * 1000,
    };
    sts.set(cred.accessKeyId, cred);
    return cred;
  };

  return { check, checkV3, issueSts };
}
