// The rules for identifiers and addresses, each stated once: the daemon's
// config schema, the checks on every value sent to the cloud
// (cloud/validate.ts) and, through the generated JSON Schema, the Helm chart
// use these. Every pattern also compiles in Go's RE2 (Helm's validator): no
// lookaround, no flags, no \s or `.` (whose meaning differs between the two).

/** A string rule: a pattern it must match, one it must not, and its length (UTF-16 units). */
export interface Rule {
  readonly pattern?: RegExp;
  readonly notPattern?: RegExp;
  readonly minLength?: number;
  readonly maxLength?: number;
}

export function matches(rule: Rule, v: string): boolean {
  return (
    v.length >= (rule.minLength ?? 0) &&
    v.length <= (rule.maxLength ?? Number.POSITIVE_INFINITY) &&
    (rule.pattern?.test(v) ?? true) &&
    !(rule.notPattern?.test(v) ?? false)
  );
}

/** JavaScript's `\s`, spelled out: RE2's `\s` is ASCII only. */
export const SPACE = "\\t\\n\\v\\f\\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff";

/** `text` matched in any case, without the `i` flag JSON Schema has no room for. */
function anyCase(text: string): string {
  return text.replace(/[a-z]/gi, (c) => `[${c.toUpperCase()}${c.toLowerCase()}]`);
}

/** Alibaba Cloud's resource ids: `eni-bp1…`, `vsw-…`, `sg-…`. */
function resourceId(prefix: string): Rule {
  return { pattern: new RegExp(`^${prefix}-[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$`) };
}

export const ENI_ID = resourceId("eni");
export const INSTANCE_ID = resourceId("i");
export const VSWITCH_ID = resourceId("vsw");
export const VPC_ID = resourceId("vpc");
export const SECURITY_GROUP_ID = resourceId("sg");
/** cn-hangzhou, ap-southeast-1, cn-shanghai-finance-1. */
export const REGION_ID: Rule = { pattern: /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/ };
/** cn-hangzhou-h. */
export const ZONE_ID: Rule = { pattern: /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/ };
/** ecs.g7.large. */
export const INSTANCE_TYPE: Rule = { pattern: /^[a-z0-9]+(\.[a-z0-9-]+){1,3}$/ };
export const ROLE_NAME: Rule = { pattern: /^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$/ };
/** ECS: at most 64 printable ASCII characters. */
export const CLIENT_TOKEN: Rule = { pattern: /^[\x21-\x7e]{1,64}$/ };

const URL_IN_TAG = `${anyCase("http")}[Ss]?://`;
/** ECS tag key: 1..128 characters, not starting with aliyun or acs: (any case), no URL. */
export const TAG_KEY: Rule = {
  minLength: 1,
  maxLength: 128,
  notPattern: new RegExp(`^(${anyCase("aliyun")}|${anyCase("acs")}:)|${URL_IN_TAG}`),
};
/** ECS tag value: at most 128 characters, not starting with acs: (any case), no URL. */
export const TAG_VALUE: Rule = {
  maxLength: 128,
  notPattern: new RegExp(`^${anyCase("acs")}:|${URL_IN_TAG}`),
};

/** An http(s) URL with an optional path, without query or fragment: the metadata service. */
export const HTTP_URL: Rule = { pattern: new RegExp(`^https?://[^${SPACE}/?#]+(/[^${SPACE}?#]*)?$`) };
/** An API endpoint: http(s)://host[:port], nothing after it but an optional `/`. */
export const API_ENDPOINT: Rule = { pattern: new RegExp(`^https?://[^${SPACE}/?#]+/?$`) };
/** HOST:PORT, with an IPv6 host in brackets. */
export const HOST_PORT: Rule = { pattern: /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/ };
/** An absolute file path. */
export const ABS_PATH: Rule = { pattern: /^\/[^\0]*$/ };
/** A Kubernetes object name (RFC 1123 subdomain), as node names are. */
export const NODE_NAME: Rule = {
  maxLength: 253,
  pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
};
/** eniway's cluster name, the `eniway.io/cluster` tag on its ENIs. */
export const CLUSTER_ID: Rule = { pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/ };
