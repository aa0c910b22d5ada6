// The error codes the simulator returns, with the HTTP status and message
// that Alibaba Cloud's documentation gives for each.

export interface ApiError {
  code: string;
  status: number;
  message: string;
}

const TABLE: Record<string, [number, string]> = {
  // gateway
  MissingParameter: [
    400,
    "The input parameter that is mandatory for processing this request is not supplied.",
  ],
  InvalidParameter: [400, "The specified parameter is not valid."],
  "InvalidParameter.Conflict": [400, "The specified parameters conflict with each other."],
  UnsupportedHTTPMethod: [403, "This HTTP method is not supported."],
  "InvalidAction.NotFound": [404, "Specified api is not found, please check your url and method."],
  InvalidVersion: [400, "Specified parameter Version is not valid."],
  IncompleteSignature: [400, "The request signature does not conform to Alibaba Cloud standards."],
  InvalidSignatureMethod: [400, "Specified signature method is not valid."],
  SignatureDoesNotMatch: [400, "Specified signature is not matched with our calculation."],
  SignatureNonceUsed: [400, "Specified signature nonce was used already."],
  "InvalidTimeStamp.Expired": [400, "Specified time stamp or date value is expired."],
  "InvalidTimeStamp.Format": [400, "Specified time stamp or date value is not well formatted."],
  "InvalidAccessKeyId.NotFound": [404, "Specified access key is not found."],
  MissingSecurityToken: [400, "SecurityToken is mandatory for this action."],
  "InvalidSecurityToken.Expired": [400, "Specified SecurityToken is expired."],
  "InvalidSecurityToken.Malformed": [400, "Specified SecurityToken is malformed."],
  "InvalidSecurityToken.MismatchWithAccessKey": [400, "Specified SecurityToken mismatch with the AccessKey."],
  "InvalidRegionId.NotFound": [404, "The specified RegionId does not exist."],
  Throttling: [
    400,
    "You have made too many requests within a short time; your request is denied due to request throttling.",
  ],
  "Throttling.User": [400, "Request was denied due to user flow control."],
  IdempotentParameterMismatch: [400, "The request is retried with updated parameters."],
  InternalError: [500, "The request processing has failed due to some unknown error, exception or failure."],
  ServiceUnavailable: [503, "The request has failed due to a temporary failure of the server."],
  "Operation.Conflict": [403, "The operation conflicts with another operation on the same resource."],
  // resources
  "InvalidEniId.NotFound": [404, "The specified NetworkInterfaceId does not exist."],
  "InvalidEcsId.NotFound": [404, "The specified EcsId is not found."],
  "InvalidVSwitchId.NotFound": [404, "The specified VSwitchId does not exist."],
  "InvalidSecurityGroupId.NotFound": [404, "The specified SecurityGroupId does not exist."],
  "InvalidVSwitchId.IpNotEnough": [403, "The specified VSwitch has not enough IpAddress."],
  EniPerInstanceLimitExceeded: [
    403,
    "The number of ENI exceeds the limit for the type of instance you are trying to launch.",
  ],
  MaxEniCountExceeded: [403, "The number of ENIs exceeds the quota of this region."],
  "InvalidOperation.InvalidEniState": [400, "The operation is not allowed in the current ENI state."],
  "InvalidOperation.DetachPrimaryEniNotAllowed": [
    400,
    "Detaching primary ENI from ECS instance is not allowed.",
  ],
  "InvalidOperation.InvalidEniType": [403, "The operation is not allowed in the current ENI type."],
  "InvalidOperation.AvailabilityZoneMismatch": [403, "The ENI and the instance are not in the same zone."],
  "InvalidOperation.Ipv4CountExceeded": [403, "The number of IPv4 addresses exceeds the limit."],
  "InvalidIp.IpUnassigned": [403, "The specified IP address is not assigned to the ENI."],
  "InvalidIp.Address": [403, "The specified IP address is not in the CIDR block of the VSwitch."],
  "InvalidPrivateIpAddress.Duplicated": [400, "Specified private IP address is duplicated."],
  "Duplicate.TagKey": [400, "The Tag.N.Key contain duplicate key."],
  "InvalidTagKey.Malformed": [400, "The specified Tag.n.Key is not valid."],
  "InvalidTagValue.Malformed": [400, "The specified Tag.n.Value is not valid."],
  "QuotaExceed.Tags": [403, "The maximum number of tags is exceeded."],
};

export function apiError(code: string, message?: string): ApiError {
  const known = TABLE[code];
  return { code, status: known?.[0] ?? 400, message: message ?? known?.[1] ?? `${code}.` };
}

export function isKnownCode(code: string): boolean {
  return code in TABLE;
}

export function missing(param: string): ApiError {
  return apiError(
    "MissingParameter",
    `The input parameter "${param}" that is mandatory for processing this request is not supplied.`,
  );
}

export function invalid(param: string, why = "is not valid"): ApiError {
  return apiError("InvalidParameter", `The specified parameter "${param}" ${why}.`);
}

/** Thrown inside handlers; the server turns it into the error response. */
export class ApiFailure extends Error {
  constructor(readonly error: ApiError) {
    super(`${error.code}: ${error.message}`);
    this.name = "ApiFailure";
  }
}

export function fail(code: string, message?: string): never {
  throw new ApiFailure(apiError(code, message));
}
