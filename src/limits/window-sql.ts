/**
 * Sliding rate windows, kept as an array of claim times per key (flow_slots) and
 * per kind (limits): newest first, at most `limit` of them. The limited claim
 * judges and extends them (slot-claim-sql.ts); GET /limits/:kind shows them
 * (keys-sql.ts). One definition, so the view says what the claim does.
 */
import type { Fragment, Queryable } from '../db/client'

/** A count of seconds, as a value or a column. */
type Seconds = number | Fragment

/** How many of `claims` fall in the `seconds` before `now` (a claim's statement_timestamp(), a read's now()). */
export function claimsInWindow(sql: Queryable, claims: Fragment, seconds: Seconds, now: Fragment) {
  return sql`(select count(*)::int from unnest(${claims}) r(at) where r.at > ${now} - make_interval(secs => ${seconds}))`
}

/**
 * When a window that holds `limit` claims next has room: when the `limit`-th
 * newest leaves it. Meaningful only when the window is full.
 */
export function windowOpensAt(sql: Queryable, claims: Fragment, limit: Seconds, seconds: Seconds) {
  return sql`(${claims})[${limit}] + make_interval(secs => ${seconds})`
}

/**
 * `claims` with `count` more claims at `now`, keeping the newest `limit`: enough
 * to tell whether any window of the limit's length holds `limit` claims.
 */
export function claimsPushed(sql: Queryable, claims: Fragment, count: Fragment, limit: number, now: Fragment) {
  return sql`
    array(select at from unnest(array_fill(${now}, array[${count}]) || ${claims}) at order by at desc limit ${limit})`
}
