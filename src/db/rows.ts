/**
 * postgres.js hands top-level timestamptz columns through the client's type parser
 * (ISO strings), but a row nested with `to_jsonb` carries Postgres' own text form.
 * These helpers give nested runs the same RFC 3339 shape.
 */
import type { Run } from '../jobs/model'
import type { Queryable } from './client'

const RUN_TIMESTAMPS = ['lease_expires_at', 'started_at', 'finished_at', 'created_at', 'updated_at'] as const

/** Normalises a run nested as jsonb (or null) to the API shape. */
export function runFromJson(value: unknown): Run | null {
  if (value === null || value === undefined) return null
  const run = { ...(value as Record<string, unknown>) }
  for (const key of RUN_TIMESTAMPS) {
    const stamp = run[key]
    if (typeof stamp === 'string') run[key] = new Date(stamp).toISOString()
  }
  return run as Run
}

/**
 * Formats a Postgres timestamp as an RFC 3339 string (millisecond precision).
 * Postgres' text form ("0050-06-01 00:00:00+00") is not ISO 8601, and outside ISO
 * form JavaScript reads years below 100 as 19xx; so it is made ISO first. Sessions
 * run in UTC (see createSql), so the offset is a whole hour. The common shape,
 * "2026-12-03 03:17:22.123456+00", is rewritten by position without a Date or a
 * regular expression: every row carries five of these, and parsing them was about
 * a sixth of a hand-off's CPU in the server (profile in docs/performance.md).
 */
export function isoTimestamp(value: string | Date): string {
  if (value instanceof Date) return value.toISOString()
  const n = value.length
  // "YYYY-MM-DD HH:MM:SS" + optional ".f" to ".ffffff" + "+00"
  if (n >= 22 && n <= 29 && n !== 23 && value.charCodeAt(10) === 32 && value.endsWith('+00') && value[4] === '-') {
    const fraction = n === 22 ? '' : value.slice(20, n - 3)
    if (n === 22 || value.charCodeAt(19) === 46) {
      return `${value.slice(0, 10)}T${value.slice(11, 19)}.${fraction.slice(0, 3).padEnd(3, '0')}Z`
    }
  }
  return new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString()
}

/**
 * The `updated_at` a transition writes: now(), but always past the row's previous
 * value. now() is when the statement started, not when it committed: a complete
 * that waited on a lock while a cancel committed would otherwise carry the older
 * stamp, and live views, which order a job's states by it, would drop it.
 */
export function nextStamp(sql: Queryable, column: string) {
  return sql`greatest(now(), ${sql(column)} + interval '1 microsecond')`
}
