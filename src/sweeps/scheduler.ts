/**
 * The scheduler: fires due schedules. Many instances may run it against one
 * database; a transaction-scoped advisory lock lets one tick run at a time (the
 * others skip theirs), and due rows are taken FOR UPDATE SKIP LOCKED besides.
 * Each fire enqueues with the key `sched:<id>:<fire time>` in the same transaction
 * that advances next_fire_at past now: a crash undoes both, a repeat of the same
 * fire finds the key taken, and a long outage fires once rather than replaying.
 */
import { afterCommit, type Effects } from '../after-commit'
import type { Deps } from '../deps'
import { parseRecurrence } from '../schedules/recurrence'
import { enqueueFromSchedule, fireEffects } from '../schedules/service'
import { scheduleDisable, scheduleRecordFire, scheduleTakeDue } from '../schedules/sql'
import { type SweepLoop, startSweepLoop } from './loop'

const BATCH = 100

/** What one tick did. */
export interface TickOutcome {
  fired: number
  disabled: number
  failed: number
  /** False when another instance held the tick lock. */
  ran: boolean
}

/** Fires up to BATCH due schedules in one transaction, gathering each fire's effects. */
async function tickOnce(deps: Deps, effects: Effects): Promise<TickOutcome & { due: number }> {
  const { sql, tables, log } = deps
  return sql.begin(async (tx) => {
    const [lock] = await tx<{ locked: boolean; now: string }[]>`
      select pg_try_advisory_xact_lock(hashtext(${`foreman-scheduler:${tables.prefix}`})) as locked, now() as now`
    if (!lock?.locked) return { fired: 0, disabled: 0, failed: 0, due: 0, ran: false }
    // Past the database's now and ours, whichever is later, so the next fire is never already due.
    const now = new Date(Math.max(Date.parse(lock.now), Date.now()))
    const due = await scheduleTakeDue(tx, tables, BATCH)
    const outcome = { fired: 0, disabled: 0, failed: 0, due: due.length, ran: true }
    for (const schedule of due) {
      let next: Date
      try {
        next = parseRecurrence(schedule.cron_expr, schedule.timezone).next(
          now,
          schedule.next_fire_at ? new Date(schedule.next_fire_at) : null,
        )
      } catch (err) {
        // Retrying an expression that no longer parses would fail every tick forever.
        const reason = `disabled by the scheduler: ${(err as Error).message}`
        await scheduleDisable(tx, tables, schedule.id, reason)
        log.warn({ schedule: schedule.id, cron_expr: schedule.cron_expr, reason }, 'schedule disabled')
        outcome.disabled++
        continue
      }
      try {
        // A savepoint per schedule: one that fails must not undo the others' fires.
        const enqueued = await tx.savepoint(async (sp) => {
          const key = `sched:${schedule.id}:${schedule.next_fire_at}`
          const enqueued = await enqueueFromSchedule(sp, deps, schedule, key)
          await scheduleRecordFire(sp, tables, schedule.id, enqueued.job.id, next)
          return enqueued
        })
        fireEffects(effects, enqueued)
        outcome.fired++
      } catch (err) {
        log.error({ err, schedule: schedule.id }, 'schedule fire failed; it stays due for the next tick')
        outcome.failed++
      }
    }
    return outcome
  })
}

/**
 * One scheduler tick: fires every due schedule, a batch per transaction. Each
 * batch's jobs are announced once it commits; a batch that rolls back announces
 * nothing (its jobs never existed), and the error ends the tick.
 */
export async function fireDueSchedules(deps: Deps): Promise<TickOutcome> {
  const total: TickOutcome = { fired: 0, disabled: 0, failed: 0, ran: false }
  for (;;) {
    const { due, ...outcome } = await afterCommit(deps, (effects) => tickOnce(deps, effects))
    total.fired += outcome.fired
    total.disabled += outcome.disabled
    total.failed += outcome.failed
    total.ran ||= outcome.ran
    // Stop when the batch was not full, or every one of it failed (no progress).
    if (due < BATCH || outcome.failed === due) return total
  }
}

/** The scheduler on its timer (FOREMAN_SCHEDULER_INTERVAL_SEC). */
export function startScheduler(deps: Deps): SweepLoop {
  return startSweepLoop({
    name: 'scheduler',
    intervalMs: deps.config.schedulerIntervalSec * 1000,
    log: deps.log,
    sweep: async () => {
      const { fired, disabled, failed } = await fireDueSchedules(deps)
      return { fired, disabled, failed }
    },
  })
}
