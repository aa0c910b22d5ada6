// An independent implementation of Alibaba Cloud's RPC request signature
// (SignatureVersion 1.0, HMAC-SHA1), written from the public specification,
// so the contract tests can build requests pop-core refuses to make: replayed
// nonces, stale or malformed timestamps, tampered parameters, odd methods.

import { createHmac, randomUUID } from "node:crypto";

export type RawParams = Record<string, string>;

/** RFC 3986 percent-encoding: only A-Z a-z 0-9 - _ . ~ stay literal. */
export function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** METHOD&%2F&percentEncode(k1=v1&k2=v2...), keys sorted, Signature excluded. */
export function canonicalStringToSign(method: string, params: RawParams): string {
  const query = Object.keys(params)
    .filter((k) => k !== "Signature")
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(params[k] ?? "")}`)
    .join("&");
  return `${method.toUpperCase()}&${rfc3986("/")}&${rfc3986(query)}`;
}

export function signParams(method: string, params: RawParams, secret: string): string {
  return createHmac("sha1", `${secret}&`).update(canonicalStringToSign(method, params)).digest("base64");
}

/** `yyyy-MM-ddTHH:mm:ssZ`, as the gateway expects. */
export function isoTimestamp(ms: number = Date.now()): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export interface RawRequest {
  endpoint: string;
  method?: string;
  action: string;
  version: string;
  accessKeyId?: string;
  accessKeySecret: string;
  /** Extra or overriding parameters; a value of `undefined` removes a parameter before signing. */
  params?: Record<string, string | undefined>;
  /** Applied after signing, to simulate tampering; `undefined` removes the parameter. */
  after?: Record<string, string | undefined>;
  /** Leave the request unsigned. */
  unsigned?: boolean;
}

export interface RawResponse {
  status: number;
  body: Record<string, unknown>;
  text: string;
  params: RawParams;
}

function apply(target: RawParams, changes: Record<string, string | undefined> | undefined): void {
  for (const [k, v] of Object.entries(changes ?? {})) {
    if (v === undefined) delete target[k];
    else target[k] = v;
  }
}

/** Builds the signed parameter set of a request. */
export function buildParams(req: RawRequest): RawParams {
  const method = (req.method ?? "GET").toUpperCase();
  const p: RawParams = {
    Action: req.action,
    Version: req.version,
    Format: "JSON",
    AccessKeyId: req.accessKeyId ?? "",
    SignatureMethod: "HMAC-SHA1",
    SignatureVersion: "1.0",
    SignatureNonce: randomUUID(),
    Timestamp: isoTimestamp(),
  };
  apply(p, req.params);
  if (!req.unsigned) p.Signature = signParams(method, p, req.accessKeySecret);
  apply(p, req.after);
  return p;
}

/** Sends parameters as a GET query string, or as a form body for any other method. */
export async function sendRaw(endpoint: string, method: string, params: RawParams): Promise<RawResponse> {
  const query = Object.entries(params)
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .join("&");
  const m = method.toUpperCase();
  const res =
    m === "GET"
      ? await fetch(`${endpoint}/?${query}`)
      : await fetch(`${endpoint}/`, {
          method: m,
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: query,
        });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = {};
  }
  return { status: res.status, body, text, params };
}

export async function rawCall(req: RawRequest): Promise<RawResponse> {
  const params = buildParams(req);
  return sendRaw(req.endpoint, req.method ?? "GET", params);
}
