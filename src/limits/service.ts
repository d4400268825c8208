/**
 * The rules of limits: set (a full replace), read, list, delete. The claim reads
 * them in its own transaction (claim-sql.ts); this process's set of limited kinds
 * is reloaded at its next claim, other instances' within a second.
 */
import type { Deps } from '../deps'
import { InvalidInput, NotFound } from '../errors'
import { announceLimitsChanged } from './limited-kinds'
import { LIMIT_FIELDS, type Limits, type LimitsBody, type LimitsDeleted } from './model'
import { limitsDelete, limitsGet, limitsList, limitsUpsert } from './sql'

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

/** One kind's limits; 404 when it has none. */
export async function getLimits({ sql, tables }: Deps, kind: string): Promise<Limits> {
  const limits = await limitsGet(sql, tables, kind)
  if (!limits) throw new NotFound(`kind ${JSON.stringify(kind)} has no limits`)
  return limits
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
