/**
 * The fuzz target: the real process (`bun src/index.ts`, the wiring users run,
 * with server.ts's body limit and idle timeout) on the test database under a
 * table prefix of its own, plus a direct pool for snapshots of its tables.
 */
import { createSql, type Sql } from '../../../src/db/client'
import { dropTables } from '../../../src/db/migrate'
import { type Tables, tablesFor } from '../../../src/db/tables'
import { ENTRY, foremanEnv } from '../../support/foreman-process'
import { uniquePrefix } from '../../support/harness'
import { drain } from '../support/processes'

/** A Foreman child process and what the fuzzer needs around it. */
export interface Target {
  base: string
  host: string
  port: number
  sql: Sql
  tables: Tables
  /** Log lines at error level or above (5xx stack traces), for the report. */
  errorLines: string[]
  /** Set once the child has exited (a crash, unless we stopped it). */
  exited: () => number | null
  stop(): Promise<void>
}

/** The child's settings: our database and prefix, and no sweeps. */
function childEnv(url: string, prefix: string): Record<string, string> {
  return foremanEnv({
    DATABASE_URL: url,
    FOREMAN_TABLE_PREFIX: prefix,
    // The sweeps change rows on their own (scheduler fires, reaper abandons); the
    // "refused requests change nothing" check needs every change to come from a request.
    FOREMAN_SCHEDULER_INTERVAL_SEC: '86400',
    FOREMAN_REAPER_INTERVAL_SEC: '86400',
    FOREMAN_RETENTION_DAYS: '0',
    // info: the "listening on :port" line is how we learn the port (PORT=0).
    LOG_LEVEL: 'info',
  })
}

/** Starts the child and waits for its "listening" line. */
export async function startTarget(): Promise<Target> {
  const url = process.env.DATABASE_URL
  if (!url) throw new Error('DATABASE_URL is not set: the test preload did not run')
  const prefix = uniquePrefix()
  const child = Bun.spawn([process.execPath, ENTRY], {
    env: childEnv(url, prefix),
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let exitCode: number | null = null
  let stopping = false
  void child.exited.then((code) => {
    exitCode = code
  })
  const errorLines: string[] = []
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`foreman did not start:\n${errorLines.join('\n')}`)), 60_000)
    // Keep draining so the child never blocks on a full pipe.
    const watch = (stream: ReadableStream<Uint8Array>) =>
      drain(stream, (line) => {
        const listening = line.match(/listening on :(\d+)/)?.[1]
        if (listening) {
          clearTimeout(timer)
          resolvePort(Number(listening))
        }
        const level = Number(line.match(/"level":(\d+)/)?.[1] ?? 0)
        if (level >= 50 || (level === 0 && line.trim() !== '')) errorLines.push(line.slice(0, 20_000))
      })
    void watch(child.stdout)
    void watch(child.stderr)
    void child.exited.then((code) => {
      if (!stopping) reject(new Error(`foreman exited with ${code} before listening:\n${errorLines.join('\n')}`))
    })
  })
  const sql = createSql({ url, max: 2, applicationName: 'foreman-fuzz' })
  const tables = tablesFor(prefix)
  return {
    base: `http://127.0.0.1:${port}/foreman`,
    host: '127.0.0.1',
    port,
    sql,
    tables,
    errorLines,
    exited: () => (stopping ? null : exitCode),
    async stop() {
      stopping = true
      child.kill('SIGTERM')
      const killed = await Promise.race([child.exited, Bun.sleep(15_000).then(() => 'timeout' as const)])
      if (killed === 'timeout') child.kill('SIGKILL')
      await dropTables(sql, tables)
      await sql.end({ timeout: 5 })
    },
  }
}

/**
 * One digest over every row of the tables a request can change (jobs, runs,
 * schedules, limits), hot and history alike: the history sweep moving a
 * finished job changes no row. Cheap enough to take after every case while the tables
 * stay small (a few thousand rows: ~1-5 ms).
 */
export async function digestTables(sql: Sql, t: Tables): Promise<string> {
  const [row] = await sql<{ digest: string }[]>`
    select md5(
      coalesce((select string_agg(x::text, ',' order by x.id) from (
        select * from ${sql(t.jobs)} union all select * from ${sql(t.jobsHistory)}) x), '') || '|' ||
      coalesce((select string_agg(x::text, ',' order by x.id) from (
        select to_jsonb(r) as x, r.id from ${sql(t.runs)} r
        union all select to_jsonb(r) - 'job_completed_at', r.id from ${sql(t.runsHistory)} r) x), '') || '|' ||
      coalesce((select string_agg(x::text, ',' order by x.id) from ${sql(t.schedules)} x), '') || '|' ||
      coalesce((select string_agg(x::text, ',' order by x.kind) from ${sql(t.limits)} x), '')
    ) as digest`
  return row!.digest
}
