// The cloud's error codes, in one table: the HTTP status and message that
// Alibaba Cloud's documentation gives for each (the simulator answers with
// them), and what eniway makes of a code (`treat`). Code elsewhere names a
// code by its key, typed as CloudCode, so a misspelt code does not compile.

export type Treatment =
  /** Worth another attempt; so are the codes that extend it with a dot (Throttling.User). */
  | "retry"
  /** The vSwitch has no free addresses: block it for a while, use another. */
  | "vSwitchExhausted"
  /** The instance has all the ENIs its type allows: no new ENI for a while. */
  | "eniLimit"
  /** The thing to delete, detach or unassign is gone already: the call's goal holds. */
  | "gone";

export interface CodeInfo {
  status: number;
  message: string;
  treat?: Treatment;
}

export const CLOUD_ERRORS = {
  // gateway
  MissingParameter: {
    status: 400,
    message: "The input parameter that is mandatory for processing this request is not supplied.",
  },
  InvalidParameter: { status: 400, message: "The specified parameter is not valid." },
  "InvalidParameter.Conflict": { status: 400, message: "The specified parameters conflict with each other." },
  UnsupportedHTTPMethod: { status: 403, message: "This HTTP method is not supported." },
  "InvalidAction.NotFound": {
    status: 404,
    message: "Specified api is not found, please check your url and method.",
  },
  InvalidVersion: { status: 400, message: "Specified parameter Version is not valid." },
  IncompleteSignature: {
    status: 400,
    message: "The request signature does not conform to Alibaba Cloud standards.",
  },
  InvalidSignatureMethod: { status: 400, message: "Specified signature method is not valid." },
  SignatureDoesNotMatch: { status: 400, message: "Specified signature is not matched with our calculation." },
  SignatureNonceUsed: { status: 400, message: "Specified signature nonce was used already." },
  "InvalidTimeStamp.Expired": { status: 400, message: "Specified time stamp or date value is expired." },
  "InvalidTimeStamp.Format": {
    status: 400,
    message: "Specified time stamp or date value is not well formatted.",
  },
  "InvalidAccessKeyId.NotFound": { status: 404, message: "Specified access key is not found." },
  MissingSecurityToken: { status: 400, message: "SecurityToken is mandatory for this action." },
  "InvalidSecurityToken.Expired": { status: 400, message: "Specified SecurityToken is expired." },
  "InvalidSecurityToken.Malformed": { status: 400, message: "Specified SecurityToken is malformed." },
  "InvalidSecurityToken.MismatchWithAccessKey": {
    status: 400,
    message: "Specified SecurityToken mismatch with the AccessKey.",
  },
  "InvalidRegionId.NotFound": { status: 404, message: "The specified RegionId does not exist." },
  Throttling: {
    status: 400,
    message:
      "You have made too many requests within a short time; your request is denied due to request throttling.",
    treat: "retry",
  },
  "Throttling.User": { status: 400, message: "Request was denied due to user flow control.", treat: "retry" },
  DryRunOperation: { status: 400, message: "Request validation has been passed with DryRun flag set." },
  IdempotentParameterMismatch: { status: 400, message: "The request is retried with updated parameters." },
  InternalError: {
    status: 500,
    message: "The request processing has failed due to some unknown error, exception or failure.",
    treat: "retry",
  },
  ServiceUnavailable: {
    status: 503,
    message: "The request has failed due to a temporary failure of the server.",
    treat: "retry",
  },
  "Operation.Conflict": {
    status: 403,
    message: "The operation conflicts with another operation on the same resource.",
    treat: "retry",
  },
  // Other spellings of "conflicts with an operation in progress": the gateway's own,
  // and the one ENI deletion is known to return. The simulator answers Operation.Conflict.
  OperationConflict: {
    status: 409,
    message: "Request was denied due to conflict with a previous request.",
    treat: "retry",
  },
  "InvalidOperation.Conflict": {
    status: 403,
    message: "The operation conflicts with another operation in progress.",
    treat: "retry",
  },
  // resources
  "InvalidEniId.NotFound": {
    status: 404,
    message: "The specified NetworkInterfaceId does not exist.",
    treat: "gone",
  },
  "InvalidEcsId.NotFound": { status: 404, message: "The specified EcsId is not found." },
  "InvalidVSwitchId.NotFound": { status: 404, message: "The specified VSwitchId does not exist." },
  "InvalidSecurityGroupId.NotFound": {
    status: 404,
    message: "The specified SecurityGroupId does not exist.",
  },
  "InvalidVSwitchId.IpNotEnough": {
    status: 403,
    message: "The specified VSwitch has not enough IpAddress.",
    treat: "vSwitchExhausted",
  },
  // ECS sometimes says this instead of IpNotEnough for an exhausted vSwitch.
  "QuotaExceeded.PrivateIpAddress": {
    status: 403,
    message: "The number of private IP addresses exceeds the quota.",
    treat: "vSwitchExhausted",
  },
  EniPerInstanceLimitExceeded: {
    status: 403,
    message: "The number of ENI exceeds the limit for the type of instance you are trying to launch.",
    treat: "eniLimit",
  },
  MaxEniCountExceeded: { status: 403, message: "The number of ENIs exceeds the quota of this region." },
  "InvalidOperation.InvalidEniState": {
    status: 400,
    message: "The operation is not allowed in the current ENI state.",
  },
  "InvalidOperation.DetachPrimaryEniNotAllowed": {
    status: 400,
    message: "Detaching primary ENI from ECS instance is not allowed.",
  },
  "InvalidOperation.InvalidEniType": {
    status: 403,
    message: "The operation is not allowed in the current ENI type.",
  },
  "InvalidOperation.AvailabilityZoneMismatch": {
    status: 403,
    message: "The ENI and the instance are not in the same zone.",
  },
  "InvalidOperation.Ipv4CountExceeded": {
    status: 403,
    message: "The number of IPv4 addresses exceeds the limit.",
  },
  "InvalidIp.IpUnassigned": {
    status: 403,
    message: "The specified IP address is not assigned to the ENI.",
    treat: "gone",
  },
  "InvalidIp.Address": {
    status: 403,
    message: "The specified IP address is not in the CIDR block of the VSwitch.",
  },
  "InvalidPrivateIpAddress.Duplicated": {
    status: 400,
    message: "Specified private IP address is duplicated.",
  },
  // IPv6 on ENIs (AssignIpv6Addresses, UnassignIpv6Addresses: documented codes and statuses)
  "InvalidOperation.Ipv6CountExceeded": {
    status: 403,
    message: "The number of IPv6 addresses exceeds the limit.",
  },
  "InvalidOperation.Ipv6NotSupport": { status: 403, message: "The instance type does not support IPv6." },
  "InvalidVSwitch.Ipv6NotTurnOn": {
    status: 403,
    message: "The IPv6 function of the specified VSwitch is not turned on.",
  },
  "InvalidIp.IpRepeated": { status: 403, message: "The specified IP addresses are repeated." },
  "InvalidIp.IpAssigned": { status: 403, message: "The specified IP address is already assigned." },
  // vSwitch CIDR reservations (VPC). The documentation reached gives no code for these
  // cases; the simulator's choices follow the VPC API's naming (README: "the simulator").
  "InvalidCidrBlock.Overlapped": {
    status: 400,
    message: "The specified CIDR block overlaps with an existing reserved CIDR block.",
  },
  "QuotaExceeded.VSwitchCidrReservation": {
    status: 403,
    message: "The number of reserved CIDR blocks of the vSwitch exceeds the quota.",
  },
  "ResourceNotFound.VSwitchCidrReservation": {
    status: 404,
    message: "The specified reserved CIDR block does not exist.",
  },
  "IncorrectStatus.VSwitchCidrReservation": {
    status: 400,
    message: "The current status of the reserved CIDR block does not support this operation.",
  },
  "DependencyViolation.VSwitchCidrReservation": {
    status: 400,
    message: "Prefixes allocated from the reserved CIDR block are still assigned to ENIs.",
  },
  "Duplicate.TagKey": { status: 400, message: "The Tag.N.Key contain duplicate key." },
  "InvalidTagKey.Malformed": { status: 400, message: "The specified Tag.n.Key is not valid." },
  "InvalidTagValue.Malformed": { status: 400, message: "The specified Tag.n.Value is not valid." },
  "QuotaExceed.Tags": { status: 403, message: "The maximum number of tags is exceeded." },
} as const satisfies Record<string, CodeInfo>;

export type CloudCode = keyof typeof CLOUD_ERRORS;

export function isCloudCode(code: string): code is CloudCode {
  return Object.hasOwn(CLOUD_ERRORS, code);
}

const infoOf = (code: string): CodeInfo | undefined => (isCloudCode(code) ? CLOUD_ERRORS[code] : undefined);

/**
 * What eniway makes of a code: its own treatment, else "retry" when a code it
 * extends with a dot retries (Throttling.DeepPageSkip is a Throttling).
 */
export function treatmentOf(code: string): Treatment | undefined {
  const own = infoOf(code)?.treat;
  if (own) return own;
  const parts = code.split(".");
  for (let n = parts.length - 1; n > 0; n--)
    if (infoOf(parts.slice(0, n).join("."))?.treat === "retry") return "retry";
  return undefined;
}
