/** The workers view: what each worker holds and has done lately, read from its runs. */
import type { Deps } from '../deps'
import type { WorkerRun, WorkerSummary } from './model'
import { workerList } from './sql'

/** Timestamps nested in json come in Postgres' JSON form; the API's is RFC 3339 with milliseconds. */
const iso = (stamp: string) => new Date(stamp).toISOString()

/** Every worker with a running run or a run ended in the last hour, by worker id. */
export async function listWorkers({ sql, tables }: Deps): Promise<WorkerSummary[]> {
  const workers = await workerList(sql, tables)
  return workers.map((w) => ({
    ...w,
    running: w.running.map(
      (r): WorkerRun => ({ ...r, started_at: iso(r.started_at), lease_expires_at: iso(r.lease_expires_at) }),
    ),
  }))
}
