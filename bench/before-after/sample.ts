/** The four measured scenarios, and what one measurement of one of them records. */

/** The scenarios, in the order each session runs them. */
export const SCENARIOS = [
  { id: 'enqueue_single', label: 'enqueue, one per call', how: '16 loops of raw POST /jobs' },
  {
    id: 'process_single_http',
    label: 'process, one per claim (raw HTTP)',
    how: '16 loops of POST /claim → POST /runs/:id/complete',
  },
  {
    id: 'process_single_worker',
    label: 'process, one per claim (Worker)',
    how: "16 Workers of concurrency 1 from this checkout's src/client (the after-server hands the next job over with each completion; the before-server ignores the hand-off field, so the Worker claims again)",
  },
  {
    id: 'process_batched_http',
    label: 'process, batched 50 (raw HTTP)',
    how: '16 loops of POST /claims {max_jobs: 50} → POST /runs/complete',
  },
] as const
/** A scenario's id. */
export type ScenarioId = (typeof SCENARIOS)[number]['id']

/** The two servers compared. */
export type Version = 'before' | 'after'

/** One (round, version, scenario) measurement. */
export interface Sample {
  round: number
  version: Version
  scenario: ScenarioId
  status: 'ok' | 'error'
  /** Jobs in the timed phase (warm-up excluded). */
  jobs?: number
  seconds?: number
  jobs_per_sec?: number
  server_cpu_us_per_job?: number
  /** null: Postgres is not ours to read (DATABASE_URL). */
  pg_cpu_us_per_job?: number | null
  client_cpu_us_per_job?: number
  /** How the queue was filled before a process scenario: POST /jobs/batch, or single enqueues. */
  fill?: 'batch' | 'single'
  error?: string
}

/** What a scenario measures, before it is labelled with round, version and scenario. */
export type Outcome = Omit<Sample, 'round' | 'version' | 'scenario'>

/** `n` to `digits` decimals, as samples and summaries record figures. */
export const round = (n: number, digits = 2) => Number(n.toFixed(digits))
