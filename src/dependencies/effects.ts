/**
 * What a service does with a host statement's DependentsAnswer once it has
 * committed: announce the dependents it moved, count those it ended, and settle
 * the ones it could not see (committed after its snapshot: see settle-sql.ts).
 */
import type { Effects } from '../after-commit'
import type { Queryable } from '../db/client'
import type { Tables } from '../db/tables'
import { isTerminal } from '../jobs/model'
import { recordJobTerminal } from '../metrics/record'
import { type DependentChange, type DependentsAnswer, settleWaiting, slotsEnsured } from './settle-sql'

/** Rounds of settling before giving up: each needs a dependent enqueued mid-statement, again. */
const MAX_SETTLE_ROUNDS = 5

/**
 * Applies the dependents part of a committed host statement's answer. Awaits the
 * settling statements (each commits on its own), so call it inside afterCommit's
 * work after the host statement.
 */
export async function dependentsMoved(
  sql: Queryable,
  t: Tables,
  effects: Effects,
  answer: DependentsAnswer | undefined,
): Promise<void> {
  let current = answer
  for (let round = 0; current && round < MAX_SETTLE_ROUNDS; round++) {
    await announced(sql, t, effects, current.dependents_changed)
    const missed = current.dependents_missed
    if (!missed || missed.length === 0) return
    const settled = await settleWaiting(sql, t, missed)
    await announced(sql, t, effects, settled.settled)
    current = settled
  }
}

/**
 * Announces the moved dependents and counts those now terminal. Released jobs of
 * kinds with limits get their slot rows first (before the announcement wakes a
 * claimer). A statement of its own, after the release committed: one more CTE in
 * every completion would cost jobs without dependencies too; should the process
 * die between the two, the job waits for the next job of its key to recreate the row.
 */
async function announced(
  sql: Queryable,
  t: Tables,
  effects: Effects,
  changed: DependentChange[] | null | undefined,
): Promise<void> {
  if (!changed || changed.length === 0) return
  const limited = changed.filter((j) => j.status === 'pending' && j.flow_controlled)
  if (limited.length > 0) await slotsEnsured(sql, t, limited)
  effects.announce(changed)
  effects.count((m) => {
    for (const job of changed) if (isTerminal(job.status)) recordJobTerminal(m, job)
  })
}

/** Drops the dependents columns from a host's row (they are not part of the job it answers). */
export function withoutDependentsColumns<T extends DependentsAnswer & { dependents?: unknown }>(
  row: T,
): Omit<T, keyof DependentsAnswer | 'dependents'> {
  const { dependents_changed: _c, dependents_missed: _m, dependents: _d, ...rest } = row
  return rest
}
