// The cloud's data, as eniway uses it (camelCase domain types), and the wire
// shapes of Alibaba Cloud's ECS 2014-05-26 and VPC 2016-04-28 RPC responses.
// The simulator renders the wire shapes; the client parses them.

export const ECS_API_VERSION = "2014-05-26";
export const VPC_API_VERSION = "2016-04-28";

export const ECS_ACTIONS = [
  "CreateNetworkInterface",
  "AttachNetworkInterface",
  "DetachNetworkInterface",
  "DeleteNetworkInterface",
  "DescribeNetworkInterfaces",
  "AssignPrivateIpAddresses",
  "UnassignPrivateIpAddresses",
  "AssignIpv6Addresses",
  "UnassignIpv6Addresses",
  "DescribeInstanceTypes",
] as const;
export const VPC_ACTIONS = ["DescribeVSwitches", "ListVSwitchCidrReservations"] as const;
export type EcsAction = (typeof ECS_ACTIONS)[number];
export type VpcAction = (typeof VPC_ACTIONS)[number];
export type CloudAction = EcsAction | VpcAction;
export const ALL_ACTIONS: readonly CloudAction[] = [...ECS_ACTIONS, ...VPC_ACTIONS];

export function isCloudAction(s: string): s is CloudAction {
  return (ALL_ACTIONS as readonly string[]).includes(s);
}

/**
 * Actions the simulator serves beyond those the client calls: making and
 * removing vSwitch CIDR reservations, where IP prefixes come from (VPC), is
 * the operator's (eniway only lists them).
 */
export const SIM_VPC_ACTIONS = ["CreateVSwitchCidrReservation", "DeleteVSwitchCidrReservation"] as const;
export type SimAction = CloudAction | (typeof SIM_VPC_ACTIONS)[number];
export const SIM_ACTIONS: readonly SimAction[] = [...ALL_ACTIONS, ...SIM_VPC_ACTIONS];

export function isSimAction(s: string): s is SimAction {
  return (SIM_ACTIONS as readonly string[]).includes(s);
}

/** ENI statuses, as DescribeNetworkInterfaces documents them. */
export const ENI_STATUSES = [
  "Creating",
  "Available",
  "Attaching",
  "InUse",
  "Detaching",
  "Deleting",
  "CreateFailed",
] as const;
export type EniStatus = (typeof ENI_STATUSES)[number];
export type EniType = "Primary" | "Secondary";

export interface Eni {
  eniId: string;
  status: EniStatus;
  type: EniType;
  instanceId: string; // "" when not attached
  vpcId: string;
  vSwitchId: string;
  zoneId: string;
  macAddress: string;
  primaryIp: string;
  /** All private IPv4 addresses, the primary one first. */
  privateIps: string[];
  /** The IPv4 prefixes (/28) assigned to the ENI (Ipv4PrefixSets). */
  ipv4Prefixes: string[];
  /** The IPv6 addresses assigned to the ENI (Ipv6Sets), in canonical text. */
  ipv6s: string[];
  securityGroupIds: string[];
  tags: Record<string, string>;
  creationTime: string;
}

export interface InstanceTypeLimits {
  instanceTypeId: string;
  /** ENIs per instance, including the primary ENI. */
  eniQuantity: number;
  /** Private IPv4 addresses per ENI, including the ENI's primary IP. */
  eniPrivateIpAddressQuantity: number;
  eniIpv6AddressQuantity: number;
}

/** A vSwitch's reserved CIDR block for prefixes (ListVSwitchCidrReservations). */
export interface VSwitchCidrReservation {
  reservationId: string;
  vSwitchId: string;
  cidr: string;
  ipVersion: "IPv4" | "IPv6";
  status: string;
  /** Prefixes of the block assigned to ENIs, and those it can still give. */
  assignedCidrCount: number;
  availableCidrCount: number;
}

export interface VSwitch {
  vSwitchId: string;
  vpcId: string;
  zoneId: string;
  cidrBlock: string;
  availableIpAddressCount: number;
  status: "Available" | "Pending";
  /** Its IPv6 /64; "" when IPv6 is not enabled on it. */
  ipv6CidrBlock: string;
}

// ---- wire shapes -------------------------------------------------------------

export interface WireTag {
  TagKey: string;
  TagValue: string;
}

export interface WirePrivateIpSet {
  PrivateIpAddress: string;
  Primary: boolean;
}

export interface WireIpv6Set {
  Ipv6Address: string;
}

export interface WireIpv4PrefixSets {
  Ipv4PrefixSet: { Ipv4Prefix: string }[];
}

export interface WireIpv6PrefixSets {
  Ipv6PrefixSet: { Ipv6Prefix: string }[];
}

export interface WireNetworkInterfaceSet {
  NetworkInterfaceId: string;
  Status: EniStatus;
  Type: EniType;
  InstanceId: string;
  VpcId: string;
  VSwitchId: string;
  ZoneId: string;
  MacAddress: string;
  PrivateIpAddress: string;
  NetworkInterfaceName: string;
  Description: string;
  CreationTime: string;
  ResourceGroupId: string;
  ServiceManaged: boolean;
  SecurityGroupIds: { SecurityGroupId: string[] };
  PrivateIpSets: { PrivateIpSet: WirePrivateIpSet[] };
  Ipv6Sets: { Ipv6Set: WireIpv6Set[] };
  Ipv4PrefixSets: WireIpv4PrefixSets;
  Ipv6PrefixSets: WireIpv6PrefixSets;
  Tags: { Tag: WireTag[] };
}

export interface WireCreateNetworkInterfaceResponse {
  RequestId: string;
  NetworkInterfaceId: string;
  Status: EniStatus;
  Type: EniType;
  VpcId: string;
  VSwitchId: string;
  ZoneId: string;
  PrivateIpAddress: string;
  MacAddress: string;
  NetworkInterfaceName: string;
  Description: string;
  ResourceGroupId: string;
  OwnerId: string;
  ServiceManaged: boolean;
  SecurityGroupIds: { SecurityGroupId: string[] };
  PrivateIpSets: { PrivateIpSet: WirePrivateIpSet[] };
  Ipv6Sets: { Ipv6Set: WireIpv6Set[] };
  Ipv4PrefixSets: WireIpv4PrefixSets;
  Ipv6PrefixSets: WireIpv6PrefixSets;
  Tags: { Tag: WireTag[] };
}

export interface WireDescribeNetworkInterfacesResponse {
  RequestId: string;
  TotalCount?: number;
  PageNumber?: number;
  PageSize?: number;
  NextToken: string;
  NetworkInterfaceSets: { NetworkInterfaceSet: WireNetworkInterfaceSet[] };
}

export interface WireAssignPrivateIpAddressesResponse {
  RequestId: string;
  AssignedPrivateIpAddressesSet: {
    NetworkInterfaceId: string;
    PrivateIpSet: { PrivateIpAddress: string[] };
    /** The prefixes the call assigned (empty for a call that assigned IPs). */
    Ipv4PrefixSet?: { Ipv4Prefixes: string[] };
  };
}

export interface WireAssignIpv6AddressesResponse {
  RequestId: string;
  NetworkInterfaceId: string;
  Ipv6Sets: { Ipv6Address: string[] };
  Ipv6PrefixSets: { Ipv6Prefix: string[] };
}

/** A reserved CIDR block of a vSwitch as ListVSwitchCidrReservations returns it (a flat array, V3 style). */
export interface WireVSwitchCidrReservation {
  VSwitchCidrReservationId: string;
  VSwitchCidrReservationCidr: string;
  VSwitchCidrReservationName: string;
  VSwitchCidrReservationDescription: string;
  VSwitchId: string;
  VpcId: string;
  IpVersion: "IPv4" | "IPv6";
  Type: "prefix";
  Status: "Assigning" | "Assigned" | "Releasing" | "Released";
  AssignedCidrCount: number;
  AvailableCidrCount: number;
  CreationTime: string;
  Tags: { Key: string; Value: string }[];
}

export interface WireListVSwitchCidrReservationsResponse {
  RequestId: string;
  NextToken: string;
  MaxResults: number;
  TotalCount: number;
  VSwitchCidrReservations: WireVSwitchCidrReservation[];
}

export interface WireInstanceType {
  InstanceTypeId: string;
  InstanceTypeFamily: string;
  CpuCoreCount: number;
  MemorySize: number;
  EniQuantity: number;
  EniPrivateIpAddressQuantity: number;
  EniIpv6AddressQuantity: number;
  EniTotalQuantity: number;
  EniTrunkSupported: boolean;
}

export interface WireDescribeInstanceTypesResponse {
  RequestId: string;
  NextToken: string;
  InstanceTypes: { InstanceType: WireInstanceType[] };
}

export interface WireVSwitch {
  VSwitchId: string;
  VpcId: string;
  Status: "Available" | "Pending";
  CidrBlock: string;
  ZoneId: string;
  AvailableIpAddressCount: number;
  VSwitchName: string;
  Description: string;
  CreationTime: string;
  IsDefault: boolean;
  ResourceGroupId: string;
  /** Whether the vSwitch has an IPv6 CIDR block; Ipv6CidrBlock is present when it has. */
  EnabledIpv6?: boolean;
  Ipv6CidrBlock?: string;
}

export interface WireDescribeVSwitchesResponse {
  RequestId: string;
  TotalCount: number;
  PageNumber: number;
  PageSize: number;
  VSwitches: { VSwitch: WireVSwitch[] };
}

/** The error body every Alibaba Cloud RPC API returns. */
export interface WireError {
  RequestId: string;
  HostId: string;
  Code: string;
  Message: string;
  Recommend: string;
}
