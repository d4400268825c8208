/** Schemas (and their types) for GET /workers: each worker's running runs and recent record. */
import { t } from 'elysia'
import { Nullable, Timestamp } from '../http/schema'
import { JobId, RunId } from '../jobs/model'

const Count = (description: string) => t.Integer({ minimum: 0, description })

/** A run a worker holds now. */
export const WorkerRun = t.Object({
  run_id: RunId,
  job_id: JobId,
  kind: t.String(),
  queue: t.String(),
  attempt: t.Integer({ description: '1-based attempt number' }),
  started_at: Timestamp,
  lease_expires_at: Timestamp,
  progress_current: Nullable(t.Number()),
  progress_total: Nullable(t.Number()),
  progress_message: Nullable(t.String()),
})
export type WorkerRun = typeof WorkerRun.static

/** One worker, as the runs it claimed show it. */
export const WorkerSummary = t.Object({
  worker_id: t.String(),
  running: t.Array(WorkerRun, { description: 'Its running runs, oldest first' }),
  last_heartbeat_at: Nullable(
    t.String({
      format: 'date-time',
      description: 'The latest heartbeat of its running runs; null when none has sent one since its claim',
    }),
  ),
  finished_last_hour: Count('Its runs that ended in the last hour'),
  succeeded_last_hour: Count('… of which succeeded'),
  failed_last_hour: Count('… of which failed or were abandoned (lease expired)'),
})
export type WorkerSummary = typeof WorkerSummary.static
