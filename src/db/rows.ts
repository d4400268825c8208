/**
 * postgres.js hands top-level timestamptz columns through the client's type parser
 * (ISO strings), but a row nested with `to_jsonb` carries Postgres' own text form.
 * These helpers give nested runs the same RFC 3339 shape.
 */
import type { Run } from '../jobs/model'

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

/** Formats a Postgres timestamp value as an RFC 3339 string (millisecond precision). */
export function isoTimestamp(value: string | Date): string {
  return (value instanceof Date ? value : new Date(value)).toISOString()
}
