/**
 * Labelled counters start at 0 for every label value known ahead of time, because
 * rate() and increase() need a sample before the first increment: a series that
 * first appears at 1 hides that increment (and an alert on it never fires). Known
 * are the fixed values (statuses, outcomes) when the registry is made, the kinds
 * and queues the database already holds when the process starts
 * (primeKnownFromDatabase), and every sibling of a kind or kind+queue the moment
 * the first of its series is counted (primeKind, primeKindQueue: a Map lookup on
 * the hot path, work only the first time).
 *
 * Histograms are left out: zeroing one costs a series per bucket (19 per kind and
 * status), and a latency panel reads nothing from an empty histogram anyway.
 */
import type { Deps } from '../deps'
import { isTerminal, JOB_STATUSES, RUN_STATUSES } from '../jobs/model'
import type { Metrics } from './registry'
import { metricsKnownLabelsRead } from './sql'

/** The kinds, and the queues of each, whose counter series exist. */
export interface KnownLabels {
  queuesByKind: Map<string, Set<string>>
}

const TERMINAL_JOB_STATUSES = JOB_STATUSES.filter(isTerminal)
const ENDED_RUN_STATUSES = RUN_STATUSES.filter((s) => s !== 'running')
const ENQUEUE_OUTCOMES = ['created', 'deduped'] as const
/** The values of foreman_reaper_sweeps_total{outcome}, as the original service named them. */
export const REAPER_OUTCOMES = ['success', 'error'] as const
const SHED_REASONS = ['over_budget', 'at_capacity'] as const

/** Starts the series whose label values never change: reaper outcomes, shed reasons. */
export function primeFixedLabels(m: Metrics): void {
  for (const outcome of REAPER_OUTCOMES) m.reaperSweeps.inc({ outcome }, 0)
  for (const reason of SHED_REASONS) m.eventStreamsShed.inc({ reason }, 0)
}

/** Answers the queues known for `kind`, starting its per-kind series (every status) the first time. */
export function primeKind(m: Metrics, kind: string): Set<string> {
  const known = m.known.queuesByKind.get(kind)
  if (known) return known
  const queues = new Set<string>()
  m.known.queuesByKind.set(kind, queues)
  for (const status of TERMINAL_JOB_STATUSES) m.jobsTerminal.inc({ kind, status }, 0)
  for (const status of ENDED_RUN_STATUSES) m.runsTerminal.inc({ kind, status }, 0)
  m.heartbeats.inc({ kind }, 0)
  return queues
}

/** Starts the per-kind-and-queue series (both enqueue outcomes, claims) the first time the pair is seen. */
export function primeKindQueue(m: Metrics, kind: string, queue: string): void {
  const queues = primeKind(m, kind)
  if (queues.has(queue)) return
  queues.add(queue)
  for (const outcome of ENQUEUE_OUTCOMES) m.jobsEnqueued.inc({ kind, queue, outcome }, 0)
  m.jobsClaimed.inc({ kind, queue }, 0)
}

/**
 * Starts the series of every kind and queue the database knows (see
 * metricsKnownLabelsRead). Called once when the process starts; a failed read is
 * logged and skipped, since each kind is still started when it is first counted.
 */
export async function primeKnownFromDatabase(deps: Pick<Deps, 'sql' | 'tables' | 'metrics' | 'log'>): Promise<void> {
  try {
    for (const { kind, queue } of await metricsKnownLabelsRead(deps.sql, deps.tables)) {
      primeKindQueue(deps.metrics, kind, queue)
    }
  } catch (err) {
    deps.log.warn({ err }, 'metrics: could not read the known kinds; their counters start when first counted')
  }
}
