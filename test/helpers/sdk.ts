// Alibaba Cloud's own generated SDKs (@alicloud/ecs20140526 and
// @alicloud/vpc20160428 on @alicloud/openapi-core) pointed at a simulator,
// for the contract tests that check the wire shapes through them.

import Ecs from "@alicloud/ecs20140526";
import { $OpenApiUtil } from "@alicloud/openapi-core";
import Vpc from "@alicloud/vpc20160428";
import { AK, type Cloud, REGION, SK } from "./sim.js";

/** The class, whether the loader hands over module.exports (Node) or its default (vitest's interop). */
function cjsDefault<T>(m: { default: T }): T {
  return ((m as unknown as { default?: T }).default ?? m) as T;
}
export const EcsClient = cjsDefault(Ecs);
export const VpcClient = cjsDefault(Vpc);

/** The SDKs' configuration for the simulator `c`, with the test's credentials unless `over` says otherwise. */
export function sdkConfig(
  c: Cloud,
  over: Partial<{ accessKeyId: string; accessKeySecret: string; securityToken: string }> = {},
): $OpenApiUtil.Config {
  return new $OpenApiUtil.Config({
    accessKeyId: AK,
    accessKeySecret: SK,
    ...over,
    endpoint: new URL(c.url).host,
    protocol: "http",
    regionId: REGION,
  });
}
