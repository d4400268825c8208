/**
 * Foreman's metrics: counters and histograms moved where things happen, on a
 * private prom-client Registry. Nothing is global (no default registry, no default
 * process metrics), so a test can build many apps side by side.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { createTableGauges, type TableGauges } from './gauges'
import { type KnownLabels, primeFixedLabels } from './known-labels'

/**
 * Every metric a Foreman process exposes, on its own registry. The job lifecycle's
 * counters and histograms and the scrape-time counts keep the names and labels of
 * the original Go service, so dashboards and alerts written for it keep working;
 * the rest are ours (HTTP timings, SSE streams, per-queue depth, table health).
 *
 * Two series we once had are gone rather than kept beside the originals: schedule
 * fires by kind and trigger (the original counts fires without labels; a stalled
 * scheduler shows in foreman_schedules_due_count, and the jobs a schedule makes in
 * foreman_jobs_enqueued_total{kind}), and claim wait by queue (the original has
 * kind only; foreman_queue_oldest_pending_age_seconds{kind,queue} shows a starving
 * queue, without a histogram's 19 series per kind and queue).
 */
export interface Metrics {
  registry: Registry
  jobsEnqueued: Counter<'kind' | 'queue' | 'outcome'>
  jobsClaimed: Counter<'kind' | 'queue'>
  jobsTerminal: Counter<'kind' | 'status'>
  runsTerminal: Counter<'kind' | 'status'>
  heartbeats: Counter<'kind'>
  /** Timed and manual fires alike. */
  schedulesFired: Counter
  reaperSweeps: Counter<'outcome'>
  reaperReaped: Counter
  retentionDeleted: Counter
  historyMoved: Counter
  jobLifetime: Histogram<'kind' | 'status'>
  runDuration: Histogram<'kind' | 'status'>
  claimWait: Histogram<'kind'>
  /** Keys (or whole kinds) with due work that a claim passed over because of a limit (issue 12). */
  jobsThrottled: Counter<'kind' | 'reason'>
  httpDuration: Histogram<'method' | 'route' | 'status'>
  /** SSE streams open in this process (GET /events and GET /events/:id). */
  eventStreamsOpen: Gauge
  /** Streams ended for falling behind (over_budget) and requests refused at FOREMAN_MAX_STREAMS (at_capacity). */
  eventStreamsShed: Counter<'reason'>
  /** Read from the tables at scrape time (see sql.ts). */
  tables: TableGauges
  /** The queues of each kind whose counter series exist (see known-labels.ts). */
  known: KnownLabels
}

/** 1 ms … 10 s: an API answer; long-polls and streams land in +Inf. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** 10 ms … 1 day: a job waits and runs for anything from a blink to overnight. */
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86_400]

/** Builds a fresh registry with every Foreman metric on it. */
export function createMetrics(): Metrics {
  const registry = new Registry()
  const registers = [registry]
  const metrics: Metrics = {
    registry,
    jobsEnqueued: new Counter({
      name: 'foreman_jobs_enqueued_total',
      help: 'Enqueue requests (API and schedules): outcome=created for a new job, deduped when the idempotency key already held one.',
      labelNames: ['kind', 'queue', 'outcome'],
      registers,
    }),
    jobsClaimed: new Counter({
      name: 'foreman_jobs_claimed_total',
      help: 'Claims that handed a job to a worker (every attempt).',
      labelNames: ['kind', 'queue'],
      registers,
    }),
    jobsTerminal: new Counter({
      name: 'foreman_jobs_terminal_total',
      help: 'Jobs that reached a terminal status (succeeded, failed, cancelled).',
      labelNames: ['kind', 'status'],
      registers,
    }),
    runsTerminal: new Counter({
      name: 'foreman_runs_terminal_total',
      help: 'Runs that ended: succeeded, failed, or abandoned by the reaper.',
      labelNames: ['kind', 'status'],
      registers,
    }),
    heartbeats: new Counter({
      name: 'foreman_heartbeats_total',
      help: 'Heartbeats accepted from the worker holding the run.',
      labelNames: ['kind'],
      registers,
    }),
    schedulesFired: new Counter({
      name: 'foreman_schedules_fired_total',
      help: 'Schedule fires, timed by the scheduler and manual by POST /schedules/:id/fire.',
      registers,
    }),
    reaperSweeps: new Counter({
      name: 'foreman_reaper_sweeps_total',
      help: 'Reaper sweeps by outcome (success, error).',
      labelNames: ['outcome'],
      registers,
    }),
    reaperReaped: new Counter({
      name: 'foreman_reaper_reaped_total',
      help: 'Running runs whose lease expired and that the reaper abandoned.',
      registers,
    }),
    retentionDeleted: new Counter({
      name: 'foreman_retention_deleted_total',
      help: 'Terminal jobs (with their runs) deleted by retention.',
      registers,
    }),
    historyMoved: new Counter({
      name: 'foreman_history_moved_total',
      help: 'Finished jobs (with their runs) moved from the hot tables to history.',
      registers,
    }),
    jobLifetime: new Histogram({
      name: 'foreman_job_lifetime_seconds',
      help: 'From enqueue to a terminal status.',
      labelNames: ['kind', 'status'],
      buckets: JOB_BUCKETS,
      registers,
    }),
    runDuration: new Histogram({
      name: 'foreman_run_duration_seconds',
      help: 'From claim to the end of the run (complete, fail or abandon).',
      labelNames: ['kind', 'status'],
      buckets: JOB_BUCKETS,
      registers,
    }),
    claimWait: new Histogram({
      name: 'foreman_claim_wait_seconds',
      help: 'From enqueue (or scheduled_at, when later) to the first claim.',
      labelNames: ['kind'],
      buckets: JOB_BUCKETS,
      registers,
    }),
    jobsThrottled: new Counter({
      name: 'foreman_jobs_throttled_total',
      help: 'Times a claim passed over due work of a kind with limits: reason is the limit that held it (max_active, max_active_per_key, rate, rate_per_key); counted per key passed over.',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'foreman_http_request_duration_seconds',
      help: 'HTTP requests by method, route template and status (streams and long-polls included).',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    }),
    eventStreamsOpen: new Gauge({
      name: 'foreman_event_streams_open',
      help: 'SSE streams open in this process (GET /events and GET /events/:id).',
      registers,
    }),
    eventStreamsShed: new Counter({
      name: 'foreman_event_streams_shed_total',
      help: 'SSE streams shed: reason=over_budget when the client left more than the byte budget unread (it resumes with Last-Event-ID), at_capacity when FOREMAN_MAX_STREAMS refused it with a 503.',
      labelNames: ['reason'],
      registers,
    }),
    tables: createTableGauges(registry),
    known: { queuesByKind: new Map() },
  }
  primeFixedLabels(metrics)
  return metrics
}
