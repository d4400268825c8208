/** One version's turn in a round: its own server process, every scenario on it, then clean-up. */
import type postgres from 'postgres'
import { dropTables } from '../../src/db/migrate'
import { tablesFor } from '../../src/db/tables'
import { type ForemanProcess, startForemanProcess } from '../foreman-process'
import { reader } from './cpu'
import { LIMITS } from './options'
import { type Sample, SCENARIOS, type Version } from './sample'
import { type Context, RUNNERS } from './scenarios'

/** Starts one version's server, runs every scenario on it, stops it and drops its tables. */
export async function session(
  roundNo: number,
  version: Version,
  root: string,
  dbUrl: string,
  admin: postgres.Sql,
  postmaster: number | null,
): Promise<Sample[]> {
  const prefix = `ba_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}_`
  const tables = tablesFor(prefix)
  const samples: Sample[] = []
  let server: ForemanProcess | undefined
  try {
    server = await startForemanProcess(root, dbUrl, prefix, { readyMs: LIMITS.readyMs, stopMs: LIMITS.stopMs })
    const ctx: Context = {
      server,
      admin,
      jobsTable: tables.jobs,
      runsTable: tables.runs,
      read: reader(server.pid, postmaster),
    }
    for (const scenario of SCENARIOS) {
      const started = performance.now()
      let sample: Sample
      if (!server.alive()) {
        sample = {
          round: roundNo,
          version,
          scenario: scenario.id,
          status: 'error',
          error: `server exited: ${server.tail()}`,
        }
      } else {
        try {
          sample = { round: roundNo, version, scenario: scenario.id, ...(await RUNNERS[scenario.id](ctx)) }
        } catch (error) {
          const why = error instanceof Error ? error.message : String(error)
          sample = { round: roundNo, version, scenario: scenario.id, status: 'error', error: why }
        }
      }
      samples.push(sample)
      const wall = ((performance.now() - started) / 1000).toFixed(1)
      const shown =
        sample.status === 'ok'
          ? `${sample.jobs_per_sec} jobs/s; CPU µs/job server ${sample.server_cpu_us_per_job}, postgres ${sample.pg_cpu_us_per_job ?? '–'}, client ${sample.client_cpu_us_per_job}`
          : `error: ${sample.error}`
      console.log(`round ${roundNo} ${version.padEnd(6)} ${scenario.id.padEnd(22)} ${shown} (${wall} s)`)
    }
  } catch (error) {
    // The server did not start: every scenario of this session is an error.
    const why = error instanceof Error ? error.message : String(error)
    console.log(`round ${roundNo} ${version.padEnd(6)} server: ${why}`)
    for (const scenario of SCENARIOS.slice(samples.length))
      samples.push({ round: roundNo, version, scenario: scenario.id, status: 'error', error: why })
  } finally {
    await server?.stop()
    await dropTables(admin, tables).catch((error) => console.error(`dropping ${prefix}*:`, error))
  }
  return samples
}
