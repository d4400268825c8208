/** Values that must be part of a statement's text rather than its parameters. */
import type { Queryable } from './client'

/**
 * A row limit written into the statement text (a whole number, checked here)
 * rather than sent as a parameter. Prepared statements get a generic plan after
 * a few calls; with `limit $n` that plan cannot cost an ordered index scan that
 * stops early, and Postgres settled on reading the whole table.
 */
export function literalLimit(sql: Queryable, n: number) {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`limit must be a whole number, got ${n}`)
  return sql.unsafe(String(n))
}
