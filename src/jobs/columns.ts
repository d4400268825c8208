/**
 * The job columns the API answers with, in table order: every column but the
 * ones only statements read: `flow_controlled` (the claim,
 * docs/design/flow-control.md), `depends_on`, `dependents`, `waiting_on`,
 * `on_dependency_failure` and `unique_while_active` (docs/design/orchestration.md).
 * Statements that answer jobs name these rather than `*`: a row with a column the
 * response schema lacks has it deleted on the way out, and that deletion cost
 * the enqueue route about a fifth more server CPU per job (objects that lose a
 * property leave the engine's fast path for the rest of their serialisation).
 */
import type { Queryable } from '../db/client'

export const JOB_COLUMNS = [
  'id',
  'kind',
  'queue',
  'service',
  'idempotency_key',
  'params',
  'priority',
  'max_attempts',
  'scheduled_at',
  'status',
  'cancel_requested',
  'attempt_count',
  'result',
  'enqueued_at',
  'started_at',
  'completed_at',
  'updated_at',
  'concurrency_key',
  'error',
  'expires_at',
  'timeout_seconds',
] as const

const unqualified = JOB_COLUMNS.join(', ')
const qualified = new Map<string, string>()

/** The API's job columns, qualified by `alias` (a plain lower-case identifier) when given. */
export function jobColumns(sql: Queryable, alias?: string) {
  if (alias === undefined) return sql.unsafe(unqualified)
  let text = qualified.get(alias)
  if (text === undefined) {
    if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`not a plain alias: ${alias}`)
    text = JOB_COLUMNS.map((c) => `${alias}.${c}`).join(', ')
    qualified.set(alias, text)
  }
  return sql.unsafe(text)
}

/**
 * The run columns the API answers with: every column of job_runs, in table
 * order. Named rather than `*` wherever a statement may read runs history, whose
 * rows carry one more column (job_completed_at, the partition key) the answer
 * must not show.
 */
export const RUN_COLUMNS = [
  'id',
  'job_id',
  'attempt',
  'worker_id',
  'status',
  'lease_expires_at',
  'progress_current',
  'progress_total',
  'progress_message',
  'result',
  'error',
  'started_at',
  'finished_at',
  'created_at',
  'updated_at',
] as const

const runQualified = new Map<string, string>()

/** The API's run columns, qualified by `alias` (a plain lower-case identifier). */
export function runColumns(sql: Queryable, alias: string) {
  let text = runQualified.get(alias)
  if (text === undefined) {
    if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`not a plain alias: ${alias}`)
    text = RUN_COLUMNS.map((c) => `${alias}.${c}`).join(', ')
    runQualified.set(alias, text)
  }
  return sql.unsafe(text)
}
