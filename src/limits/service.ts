/**
 * The rules of limits: set (a full replace), read, list, delete. The claim reads
 * them in its own transaction (claim-sql.ts); this process's set of limited kinds
 * is reloaded at its next claim, other instances' within a second.
 */
import type { Deps } from '../deps'
import { InvalidInput, NotFound } from '../errors'
import { limitsDetailGet } from './keys-sql'
import { announceLimitsChanged } from './limited-kinds'
import {
  DEFAULT_KEYS_LIMIT,
  LIMIT_FIELDS,
  type Limits,
  type LimitsBody,
  type LimitsDeleted,
  type LimitsDetail,
  type LimitsGetQuery,
  MAX_KEYS_LIMIT,
} from './model'
import { limitsDelete, limitsList, limitsUpsert } from './sql'

/** Stores `kind`'s limits in place of any it had; 400 when the body names none. */
export async function setLimits({ sql, tables, events }: Deps, kind: string, body: LimitsBody): Promise<Limits> {
  // An empty PUT would store a row that limits nothing: DELETE says that plainly.
  if (LIMIT_FIELDS.every((field) => body[field] === undefined)) {
    throw new InvalidInput('body', `needs at least one of ${LIMIT_FIELDS.join(', ')} (DELETE removes every limit)`)
  }
  const limits = await limitsUpsert(sql, tables, kind, body)
  events.limitedKinds.forget()
  await announceLimitsChanged(sql, tables, kind)
  return limits
}

/** How many busy keys GET /limits/:kind lists: 20 when not asked, 400 naming `keys_limit` outside 1–200. */
export function keysLimitOf(query: LimitsGetQuery): number {
  const limit = query.keys_limit ?? DEFAULT_KEYS_LIMIT
  if (limit < 1 || limit > MAX_KEYS_LIMIT)
    throw new InvalidInput('keys_limit', `must be between 1 and ${MAX_KEYS_LIMIT}`)
  return limit
}

/** One kind's limits, with its running and pending jobs and rate windows, kind-wide and per busy key; 404 when it has none. */
export async function getLimits(
  { sql, tables }: Deps,
  kind: string,
  query: LimitsGetQuery = {},
): Promise<LimitsDetail> {
  const detail = await limitsDetailGet(sql, tables, kind, keysLimitOf(query))
  if (!detail) throw new NotFound(`kind ${JSON.stringify(kind)} has no limits`)
  return detail
}

/** Every kind's limits, by kind. */
export function listLimits({ sql, tables }: Deps): Promise<Limits[]> {
  return limitsList(sql, tables)
}

/** Removes a kind's limits; 404 when it has none. */
export async function deleteLimits({ sql, tables, events }: Deps, kind: string): Promise<LimitsDeleted> {
  const had = await limitsDelete(sql, tables, kind)
  events.limitedKinds.forget()
  if (had) await announceLimitsChanged(sql, tables, kind)
  if (!had) throw new NotFound(`kind ${JSON.stringify(kind)} has no limits`)
  return { kind }
}
