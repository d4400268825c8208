/**
 * postgres.js hands top-level timestamptz columns through the client's type parser
 * (ISO strings), but a row nested with `to_jsonb` carries Postgres' own text form.
 * These helpers give nested runs the same RFC 3339 shape.
 */
import type { Run } from '../jobs/model'
import type { Sql } from './client'

const RUN_TIMESTAMPS = ['lease_expires_at', 'started_at', 'finished_at', 'created_at', 'updated_at'] as const

/** Normalises a run nested as jsonb (or null) to the API shape. */
export function runFromJson(value: unknown): Run | null {
  if (value === null || value === undefined) return null
  return withIsoStamps(value, RUN_TIMESTAMPS) as Run
}

function withIsoStamps(value: unknown, keys: readonly string[]): Record<string, unknown> {
  const row = { ...(value as Record<string, unknown>) }
  for (const key of keys) {
    const stamp = row[key]
    if (typeof stamp === 'string') row[key] = new Date(stamp).toISOString()
  }
  return row
}

/** Postgres' UTC text form with four-digit years: "2026-12-03 03:17:22.123456+00". */
const PLAIN_UTC = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00$/

/**
 * Formats a Postgres timestamp as an RFC 3339 string (millisecond precision).
 * Postgres' text form ("0050-06-01 00:00:00+00") is not ISO 8601, and outside ISO
 * form JavaScript reads years below 100 as 19xx; so it is made ISO first. Sessions
 * run in UTC (see createSql), so the offset is a whole hour. The common shape is
 * rewritten as text, without a Date: every row carries five of these, and the
 * Date round trip was a visible share of a claim's CPU in a profile.
 */
export function isoTimestamp(value: string | Date): string {
  if (value instanceof Date) return value.toISOString()
  const plain = PLAIN_UTC.exec(value)
  if (plain) return `${plain[1]}T${plain[2]}.${(plain[3] ?? '').slice(0, 3).padEnd(3, '0')}Z`
  return new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString()
}

/**
 * The `updated_at` a transition writes: now(), but always past the row's previous
 * value. now() is when the statement started, not when it committed: a complete
 * that waited on a lock while a cancel committed would otherwise carry the older
 * stamp, and live views, which order a job's states by it, would drop it.
 */
export function nextStamp(sql: Sql, column: string) {
  return sql`greatest(now(), ${sql(column)} + interval '1 microsecond')`
}
