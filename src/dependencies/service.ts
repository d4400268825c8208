/** The rules of reading a job's place in a graph. */
import type { Deps } from '../deps'
import { NotFound } from '../errors'
import type { Job } from '../jobs/model'
import { jobDependents } from './reads-sql'

/** What depends on job `id`; 404 when unknown. */
export async function listDependents({ sql, tables }: Deps, id: string): Promise<Job[]> {
  const jobs = await jobDependents(sql, tables, id)
  if (!jobs) throw new NotFound(`job ${id} not found`)
  return jobs
}
