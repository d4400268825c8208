/** The rules of reading a job's place in a graph. */
import { readYourWrite } from '../db/replica'
import type { Deps } from '../deps'
import { NotFound } from '../errors'
import type { Job } from '../jobs/model'
import { jobDependents } from './reads-sql'

/** What depends on job `id`; 404 when unknown (replica, then primary). */
export async function listDependents(deps: Deps, id: string): Promise<Job[]> {
  const jobs = await readYourWrite(deps, (sql) => jobDependents(sql, deps.tables, id))
  if (!jobs) throw new NotFound(`job ${id} not found`)
  return jobs
}
