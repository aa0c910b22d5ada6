// Reading a listing that spans pages, one way for every Describe call: by
// NextToken (ECS) or by PageNumber (VPC). It stops on the last page, on an
// empty page or on a cursor the cloud gave before (logged), and takes more
// than MAX_PAGES pages for a broken answer.

import type { Logger } from "../lib/log.js";
import { CloudError, SYNTHETIC_CODES } from "./errors.js";
import type { CloudAction } from "./types.js";

export const MAX_PAGES = 1000;

export interface Page<T> {
  /** What the page brought (an item the caller skips is not here). */
  items: T[];
  /** How many items the page listed: 0 is an empty page. */
  listed: number;
  /** The cursor of the next page; "" when this page is the last. */
  next: string;
  /** The answer's RequestId, for the log. */
  requestId: string;
}

/** Every page's items, in order, from the page at `first` on. */
export async function readPages<T>(
  action: CloudAction,
  first: string,
  read: (cursor: string) => Promise<Page<T>>,
  log: Logger,
): Promise<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  let cursor = first;
  for (let n = 0; n < MAX_PAGES; n++) {
    const page = await read(cursor);
    out.push(...page.items);
    if (page.next === "" || page.listed === 0) return out;
    if (seen.has(page.next)) {
      log.warn(`${action} returned a NextToken twice; stopping`, { requestId: page.requestId });
      return out;
    }
    seen.add(page.next);
    cursor = page.next;
  }
  throw new CloudError({
    action,
    code: SYNTHETIC_CODES.invalidResponse,
    message: `more than ${MAX_PAGES} pages`,
    retryable: false,
  });
}

/**
 * The cursor after page `page` of a PageNumber listing: none when the page
 * came short of `size` or the pages so far reach the answer's TotalCount.
 */
export function nextPageNumber(page: number, size: number, listed: number, totalCount: unknown): string {
  const total = Number(String(totalCount ?? Number.NaN));
  if (listed < size || (Number.isFinite(total) && page * size >= total)) return "";
  return String(page + 1);
}
