/** The workers view: what each worker holds and has done lately, read from its runs. */
import { isoTimestamp } from '../db/rows'
import type { Deps } from '../deps'
import type { WorkerRun, WorkerSummary } from './model'
import { workerList } from './sql'

/** Every worker with a running run or a run ended in the last hour, by worker id. */
export async function listWorkers({ readSql, tables }: Deps): Promise<WorkerSummary[]> {
  const workers = await workerList(readSql, tables)
  return workers.map((w) => ({
    ...w,
    running: w.running.map(
      // Nested in json, timestamps come in Postgres' form; the API's is RFC 3339.
      (r): WorkerRun => ({
        ...r,
        started_at: isoTimestamp(r.started_at),
        lease_expires_at: isoTimestamp(r.lease_expires_at),
      }),
    ),
  }))
}
