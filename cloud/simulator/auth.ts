// Request authentication as the OpenAPI gateway does it: HMAC-SHA1
// signatures (SignatureVersion 1.0), a timestamp window, single-use nonces,
// static AccessKeys and expiring STS credentials (AccessKeyId + SecurityToken).

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
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

export interface Authenticator {
  /** null when the request is authentic; the gateway's error otherwise. */
  check(method: string, params: Params): ApiError | null;
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

  const check = (method: string, p: Params): ApiError | null => {
    for (const name of ["AccessKeyId", "Signature", "SignatureNonce", "Timestamp"]) {
      if (!p[name]) return missing(name);
    }
    if ((p.SignatureMethod ?? "HMAC-SHA1") !== "HMAC-SHA1") return apiError("InvalidSignatureMethod");
    if ((p.SignatureVersion ?? "1.0") !== "1.0") return apiError("IncompleteSignature");
    const now = opts.clock.now();
    const ts = p.Timestamp!;
    const m = TIMESTAMP.exec(ts);
    const when = m ? Date.parse(ts) : Number.NaN;
    if (!m || Number.isNaN(when)) return apiError("InvalidTimeStamp.Format");
    if (Math.abs(now - when) > opts.windowMs) return apiError("InvalidTimeStamp.Expired");

    const ak = p.AccessKeyId!;
    let secret = keys.get(ak);
    if (secret === undefined) {
      const cred = sts.get(ak);
      if (!cred) return apiError("InvalidAccessKeyId.NotFound");
      if (!p.SecurityToken) return apiError("MissingSecurityToken");
      if (p.SecurityToken !== cred.securityToken) {
        return p.SecurityToken.length === cred.securityToken.length
          ? apiError("InvalidSecurityToken.MismatchWithAccessKey")
          : apiError("InvalidSecurityToken.Malformed");
      }
      if (cred.expiresAt <= now) return apiError("InvalidSecurityToken.Expired");
      secret = cred.accessKeySecret;
    }
    const expected = Buffer.from(sign(method, p, secret));
    const given = Buffer.from(p.Signature!);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return apiError(
        "SignatureDoesNotMatch",
        `Specified signature is not matched with our calculation. server string to sign is:${stringToSign(method, p)}`,
      );
    }
    prune(now);
    const nonce = `${ak}\0${p.SignatureNonce}`;
    if (nonces.has(nonce)) return apiError("SignatureNonceUsed");
    nonces.set(nonce, now + opts.windowMs);
    return null;
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

  return { check, issueSts };
}
