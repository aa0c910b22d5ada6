// The error every cloud API call surfaces, and which error codes are worth retrying.
// Messages and JSON never carry the request URL, the AccessKeyId, the signature
// or the SecurityToken: see scrubMessage.

import { type CloudCode, type Treatment, treatmentOf } from "./codes.js";

/** Synthetic codes for failures that never produced an API error body. */
export const SYNTHETIC_CODES = {
  /** Connect or read timeout. */
  requestTimeout: "RequestTimeout",
  /** Connection refused, reset, DNS failure, … */
  connectionError: "ConnectionError",
  /** A 2xx response whose body is not the JSON we expect. */
  invalidResponse: "InvalidResponse",
  /** The credentials provider failed before any request was sent. */
  credentialsUnavailable: "CredentialsUnavailable",
  /** Anything else thrown below the API layer. */
  unexpected: "Unexpected",
} as const;

/** `HttpError.<status>`: a non-2xx response without an API error body. */
export function httpErrorCode(status: number): string {
  return `HttpError.${status}`;
}

/** Retryable: the cloud's codes marked so in codes.ts, timeouts, connection errors, 5xx and 429. */
export function isRetryableCode(code: string): boolean {
  if (treatmentOf(code) === "retry") return true;
  if (code === SYNTHETIC_CODES.requestTimeout || code === SYNTHETIC_CODES.connectionError) return true;
  const m = /^HttpError\.(\d{3})$/.exec(code);
  if (!m) return false;
  const status = Number(m[1]);
  return status >= 500 || status === 429;
}

export interface CloudErrorInit {
  action: string;
  code: string;
  message: string;
  requestId?: string;
  /** 0 when no HTTP response was received. */
  httpStatus?: number;
  hostId?: string;
  recommend?: string;
  /** Defaults to isRetryableCode(code). */
  retryable?: boolean;
}

export interface CloudErrorJson {
  name: string;
  action: string;
  code: string;
  message: string;
  requestId: string;
  httpStatus: number;
  hostId?: string;
  recommend?: string;
  retryable: boolean;
}

export class CloudError extends Error {
  readonly action: string;
  readonly code: string;
  readonly requestId: string;
  readonly httpStatus: number;
  readonly hostId?: string;
  readonly recommend?: string;
  readonly retryable: boolean;
  /** The service's message alone, without action, code or request id. */
  readonly detail: string;

  constructor(init: CloudErrorInit) {
    const requestId = init.requestId ?? "";
    super(`${init.action}: ${init.code}: ${init.message}${requestId ? ` (RequestId ${requestId})` : ""}`);
    this.name = "CloudError";
    this.action = init.action;
    this.code = init.code;
    this.requestId = requestId;
    this.httpStatus = init.httpStatus ?? 0;
    this.detail = init.message;
    if (init.hostId) this.hostId = init.hostId;
    if (init.recommend) this.recommend = init.recommend;
    this.retryable = init.retryable ?? isRetryableCode(init.code);
  }

  toJSON(): CloudErrorJson {
    const out: CloudErrorJson = {
      name: this.name,
      action: this.action,
      code: this.code,
      message: this.message,
      requestId: this.requestId,
      httpStatus: this.httpStatus,
      retryable: this.retryable,
    };
    if (this.hostId) out.hostId = this.hostId;
    if (this.recommend) out.recommend = this.recommend;
    return out;
  }
}

/** True when err is a CloudError carrying one of codes. */
export function hasCode(err: unknown, codes: readonly CloudCode[]): err is CloudError {
  return err instanceof CloudError && (codes as readonly string[]).includes(err.code);
}

/** True when err is a CloudError whose code eniway treats this way (see codes.ts). */
export function isTreated(err: unknown, t: Treatment): err is CloudError {
  return err instanceof CloudError && treatmentOf(err.code) === t;
}

const MAX_MESSAGE = 512;
const CREDENTIAL_PARAM =
  /\b(AccessKeyId|AccessKeySecret|SecurityToken|Signature|SignatureNonce)(\s*[:=]\s*|%3D|%253D)("?)[^\s&"',;]*/gi;

/**
 * Makes a service or transport message safe to show: drops the gateway's echo of
 * the string to sign (it contains the AccessKeyId and SecurityToken), removes
 * URLs (unless keepUrls: the Recommend diagnosis link), credential-looking
 * parameters and every known secret value (raw and percent-encoded), and bounds
 * the length.
 */
export function scrubMessage(
  text: string,
  secrets: readonly string[] = [],
  opts: { keepUrls?: boolean } = {},
): string {
  let out = text;
  const cut = out.search(/string\s*to\s*sign/i);
  if (cut >= 0) out = `${out.slice(0, cut).trimEnd()} [string to sign omitted]`;
  for (const s of secrets) {
    if (s.length < 4) continue;
    for (const form of new Set([s, encodeURIComponent(s), encodeURIComponent(encodeURIComponent(s))])) {
      out = out.split(form).join("[redacted]");
    }
  }
  if (!opts.keepUrls) out = out.replace(/\bhttps?:\/\/\S+/gi, "[url]");
  out = out.replace(CREDENTIAL_PARAM, "$1=[redacted]");
  if (out.length > MAX_MESSAGE) out = `${out.slice(0, MAX_MESSAGE)}…`;
  return out;
}
