/**
 * CPU readings from /proc: the server process, the whole of Postgres and this
 * process (the load generator), and the rates of a timed phase between two readings.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type postgres from 'postgres'
import { type Outcome, round } from './sample'

/** One tick of /proc's utime/stime in µs (CLK_TCK is 100 on Linux). */
const TICK_US = 10_000

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    // Gone between listing and reading.
    return null
  }
}

/** utime + stime of a process in µs (fields 14 and 15 of stat; here 11 and 12 after the name). */
function processCpuUs(pid: number): number {
  const f = statFields(pid)
  if (!f) throw new Error(`process ${pid} is gone`)
  return (Number(f[11]) + Number(f[12])) * TICK_US
}

/**
 * CPU of the whole Postgres server in µs: its children (backends, walwriter,
 * checkpointer, autovacuum…) alive now, plus what the postmaster has reaped
 * (cutime + cstime, so a backend that exits during a phase still counts), plus
 * the postmaster itself. Summing only living children would make the total drop
 * whenever a connection closes.
 */
export function postgresCpuUs(postmaster: number): number {
  const own = statFields(postmaster)
  if (!own) throw new Error(`postmaster ${postmaster} is gone`)
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = statFields(Number(name))
    // Field 4 of stat (here 1) is the parent's pid.
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks * TICK_US
}

/** A reading at one instant: wall clock (ms) and CPU (µs) of server, Postgres and this process. */
export interface Reading {
  at: number
  server: number
  pg: number | null
  client: number
}

/** Reads CPU of the server at `serverPid` and of Postgres (null: not ours to read), and this process's. */
export function reader(serverPid: number, postmaster: number | null): () => Reading {
  return () => {
    const self = process.cpuUsage()
    return {
      at: performance.now(),
      server: processCpuUs(serverPid),
      pg: postmaster === null ? null : postgresCpuUs(postmaster),
      client: self.user + self.system,
    }
  }
}

/** Rates of a timed phase between two readings. */
export function measured(start: Reading, end: Reading, jobs: number): Outcome {
  const seconds = (end.at - start.at) / 1000
  const perJob = (us: number) => round(us / jobs, 1)
  return {
    status: 'ok',
    jobs,
    seconds: round(seconds, 3),
    jobs_per_sec: Math.round(jobs / seconds),
    server_cpu_us_per_job: perJob(end.server - start.server),
    pg_cpu_us_per_job: start.pg === null || end.pg === null ? null : perJob(end.pg - start.pg),
    client_cpu_us_per_job: perJob(end.client - start.client),
  }
}

/**
 * The pid of the Postgres server behind `admin`, to read its CPU: our own embedded
 * server's is the first line of its postmaster.pid. Null for someone else's
 * (DATABASE_URL), which may be on another machine: no Postgres CPU then.
 */
export async function postmasterPid(admin: postgres.Sql): Promise<number | null> {
  if (process.env.DATABASE_URL) return null
  const [row] = await admin<{ data_dir: string | null }[]>`select current_setting('data_directory', true) as data_dir`
  if (!row?.data_dir) return null
  const pid = Number(readFileSync(join(row.data_dir, 'postmaster.pid'), 'utf8').split('\n')[0])
  postgresCpuUs(pid) // throws now, not mid-run, if it cannot be read
  return pid
}
