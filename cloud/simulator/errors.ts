// The simulator's errors: the code, with the HTTP status and message that
// Alibaba Cloud's documentation gives for it (cloud/codes.ts).

import { CLOUD_ERRORS, type CloudCode, isCloudCode } from "../codes.js";

export interface ApiError {
  code: string;
  status: number;
  message: string;
}

export function apiError(code: CloudCode, message?: string): ApiError {
  const known = CLOUD_ERRORS[code];
  return { code, status: known.status, message: message ?? known.message };
}

/** A code a world file names for an injected fault: from the table, or any other with 400. */
export function faultError(code: string): ApiError {
  return isCloudCode(code) ? apiError(code) : { code, status: 400, message: `${code}.` };
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

export function fail(code: CloudCode, message?: string): never {
  throw new ApiFailure(apiError(code, message));
}
