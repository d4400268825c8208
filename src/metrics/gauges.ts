/**
 * Gauges read from the tables at scrape time. Each scrape replaces them all, so a
 * kind or queue that emptied out drops away instead of lingering at its last value.
 */
import { Gauge, type Registry } from 'prom-client'
import { JOB_STATUSES, RUN_STATUSES } from '../jobs/model'
import { FLOW_KEYS_SHOWN, type FlowKeyDepth } from './flow-sql'
import type { TableSnapshot } from './sql'

/** The scrape-time gauges. */
export interface TableGauges {
  readSuccess: Gauge
  jobs: Gauge<'status'>
  runs: Gauge<'status'>
  schedules: Gauge<'enabled'>
  schedulesDue: Gauge
  queueDepth: Gauge<'kind' | 'queue'>
  queueOldestAge: Gauge<'kind' | 'queue'>
  oldestPendingAge: Gauge
  leaseOverdue: Gauge
  deadTuples: Gauge<'table'>
  liveTuples: Gauge<'table'>
  lastAutovacuum: Gauge<'table'>
  lastAutoanalyze: Gauge<'table'>
  oldestTransactionAge: Gauge
  /** Set by applyFlowKeys, from its own read. */
  flowKeyPending: Gauge<'kind' | 'key'>
}

/** Registers the scrape-time gauges on `registry`. */
export function createTableGauges(registry: Registry): TableGauges {
  const registers = [registry]
  const gauge = <L extends string = string>(name: string, help: string, labelNames: L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers })
  return {
    readSuccess: gauge(
      'foreman_metrics_table_read_success',
      '1 when this scrape read the tables within the statement timeout, 0 when it did not (table gauges then absent).',
    ),
    jobs: gauge('foreman_jobs_count', 'Jobs by status (every status, 0 when none).', ['status']),
    runs: gauge('foreman_runs_count', 'Runs by status (every status, 0 when none).', ['status']),
    schedules: gauge('foreman_schedules_count', 'Schedules by enabled (true, false).', ['enabled']),
    schedulesDue: gauge('foreman_schedules_due_count', 'Enabled schedules whose next fire time has passed.'),
    queueDepth: gauge('foreman_queue_depth', 'Pending jobs claimable now, per kind and queue.', ['kind', 'queue']),
    queueOldestAge: gauge(
      'foreman_queue_oldest_pending_age_seconds',
      'How long the oldest claimable pending job has waited, per kind and queue.',
      ['kind', 'queue'],
    ),
    oldestPendingAge: gauge(
      'foreman_oldest_pending_age_seconds',
      'How long the oldest claimable pending job has waited (since enqueue, or scheduled_at when later); 0 when none.',
    ),
    leaseOverdue: gauge(
      'foreman_overdue_lease_age_seconds',
      'How far past its lease the most overdue running run is; 0 when none (the reaper should keep this near 0).',
    ),
    deadTuples: gauge('foreman_table_dead_tuples', 'Dead row versions awaiting vacuum (pg_stat_user_tables).', [
      'table',
    ]),
    liveTuples: gauge('foreman_table_live_tuples', 'Estimated live rows (pg_stat_user_tables).', ['table']),
    lastAutovacuum: gauge(
      'foreman_table_last_autovacuum_timestamp_seconds',
      'When autovacuum last vacuumed the table (Unix time); absent when never.',
      ['table'],
    ),
    lastAutoanalyze: gauge(
      'foreman_table_last_autoanalyze_timestamp_seconds',
      'When autovacuum last analyzed the table (Unix time); absent when never.',
      ['table'],
    ),
    oldestTransactionAge: gauge(
      'foreman_db_oldest_transaction_age_seconds',
      'Age of the oldest open client transaction in this database: it holds back vacuum, so dead tuples pile up and claims slow down.',
    ),
    flowKeyPending: gauge(
      'foreman_flow_key_pending',
      `Pending jobs (due or not) of the ${FLOW_KEYS_SHOWN} concurrency keys with the most, over the kinds with limits; key="" is the jobs without a key. A key that drains or falls out of the top ${FLOW_KEYS_SHOWN} is absent; all are absent when this read failed or timed out (logged; the other table gauges are read apart).`,
      ['kind', 'key'],
    ),
  }
}

/** Replaces every table gauge but the flow keys' with `snapshot`; null (the read failed) leaves them empty. */
export function applyTableSnapshot(g: TableGauges, snapshot: TableSnapshot | null): void {
  for (const [key, gauge] of Object.entries(g)) {
    if (key !== 'readSuccess' && key !== 'flowKeyPending') (gauge as Gauge).reset()
  }
  g.readSuccess.set(snapshot ? 1 : 0)
  if (!snapshot) return
  for (const status of JOB_STATUSES) g.jobs.set({ status }, snapshot.jobs_by_status[status] ?? 0)
  for (const status of RUN_STATUSES) g.runs.set({ status }, snapshot.runs_by_status[status] ?? 0)
  g.schedules.set({ enabled: 'true' }, snapshot.schedules_enabled)
  g.schedules.set({ enabled: 'false' }, snapshot.schedules_disabled)
  g.schedulesDue.set(snapshot.schedules_due)
  let oldest = 0
  for (const q of snapshot.queues) {
    g.queueDepth.set({ kind: q.kind, queue: q.queue }, q.depth)
    g.queueOldestAge.set({ kind: q.kind, queue: q.queue }, q.oldest_age)
    oldest = Math.max(oldest, q.oldest_age)
  }
  g.oldestPendingAge.set(oldest)
  g.leaseOverdue.set(snapshot.lease_overdue)
  for (const t of snapshot.tables) {
    g.deadTuples.set({ table: t.table }, t.dead_tuples)
    g.liveTuples.set({ table: t.table }, t.live_tuples)
    if (t.last_autovacuum !== null) g.lastAutovacuum.set({ table: t.table }, t.last_autovacuum)
    if (t.last_autoanalyze !== null) g.lastAutoanalyze.set({ table: t.table }, t.last_autoanalyze)
  }
  g.oldestTransactionAge.set(snapshot.oldest_transaction_age)
}

/**
 * Replaces foreman_flow_key_pending with `keys`, so a key that drained or fell out
 * of the top since the last scrape is gone; null (the read failed) leaves it empty.
 */
export function applyFlowKeys(g: TableGauges, keys: FlowKeyDepth[] | null): void {
  g.flowKeyPending.reset()
  for (const k of keys ?? []) g.flowKeyPending.set({ kind: k.kind, key: k.key }, k.pending)
}
