/**
 * What a service does once a statement that ended jobs has committed: the
 * trigger moved their dependents in that statement (migrations/008); this reads
 * which, announces them (a released job wakes a claimer of its kind) and counts
 * the ones it cancelled.
 */
import type { Effects } from '../after-commit'
import type { Queryable } from '../db/client'
import type { Tables } from '../db/tables'
import { recordJobTerminal } from '../metrics/record'
import { type DependentChange, dependentsMovedBy, type EndedWithDependents } from './settle-sql'

/** A row of a statement that may have ended a job: nulls where it did not. */
export interface EndedRow {
  id?: string | null
  status?: string | null
  completed_at?: string | null
  dependents?: string[] | null
}

/**
 * Announces and counts the dependents that the ends of `ended` moved. Costs a
 * statement only when one of them had dependents; call it inside afterCommit's
 * work, after the statement that ended them.
 */
export async function dependentsMoved(
  sql: Queryable,
  t: Tables,
  effects: Effects,
  ended: readonly (EndedRow | null | undefined)[],
): Promise<void> {
  const parents = ended.filter(
    (e): e is EndedWithDependents => !!e?.id && !!e.status && e.dependents != null && e.completed_at != null,
  )
  if (parents.length === 0) return
  movedAnnounced(effects, await dependentsMovedBy(sql, t, parents))
}

/** Announces moved dependents and counts those that this transition ended. */
export function movedAnnounced(effects: Effects, moved: readonly DependentChange[]): void {
  if (moved.length === 0) return
  effects.announce(moved)
  effects.count((m) => {
    for (const job of moved) if (job.ended_here) recordJobTerminal(m, job)
  })
}

/** A row without its `dependents` column (a statement reads it; the answer does not show it). */
export function withoutDependents<T extends { dependents?: unknown }>(row: T): Omit<T, 'dependents'> {
  const { dependents: _, ...rest } = row
  return rest
}
