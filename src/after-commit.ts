/**
 * What a change does besides the change itself: the hint on the event hub (live
 * streams, waiting claimers, other instances) and the counters. Both must follow
 * the commit and only the commit: a hint for a rolled-back row tells streams about
 * a job that never existed (a `deleted` for an id no reader can find), and a
 * counter for it counts work that never happened. Services gather these effects
 * while their statement or transaction runs and afterCommit applies them once it
 * has committed; nothing else in a service publishes or counts a change.
 */
import { changeOf, type EventHub, type JobChange } from './events/hub'
import type { Metrics } from './metrics/registry'

/** The part of Deps the effects go to. */
export interface EffectTargets {
  events: { hub: Pick<EventHub, 'publish'> }
  metrics: Metrics
}

/** The effects gathered while a statement or transaction runs; none applies before it commits. */
export interface Effects {
  /** Announces jobs in their new state (or `deleted`); only id, status, kind and queue are sent. */
  announce(jobs: readonly JobChange[]): void
  /** Counts on the metrics. */
  count(record: (metrics: Metrics) => void): void
}

/**
 * Runs `work` and, once it has resolved, applies the effects it gathered: the
 * announcements in one publish, then the counts. `work` must end with its commit:
 * one statement outside a transaction, or `sql.begin(...)` (which resolves after
 * COMMIT). When it throws, a rolled-back transaction included, nothing is applied.
 *
 * @example
 * const job = await afterCommit(deps, async (effects) => {
 *   const job = await jobCancel(sql, tables, id)
 *   effects.announce([job])
 *   return job
 * })
 */
export async function afterCommit<T>(targets: EffectTargets, work: (effects: Effects) => Promise<T>): Promise<T> {
  const changes: JobChange[] = []
  const counts: ((metrics: Metrics) => void)[] = []
  const value = await work({
    announce: (jobs) => {
      for (const job of jobs) changes.push(changeOf(job))
    },
    count: (record) => {
      counts.push(record)
    },
  })
  targets.events.hub.publish(changes)
  for (const record of counts) record(targets.metrics)
  return value
}
