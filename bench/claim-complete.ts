/**
 * Claim+complete throughput over HTTP: N jobs, W concurrent workers, each looping
 * claim → complete until the queue is empty. Baseline in the same process: the
 * same W workers hammering GET /ping, the HTTP floor that the job loop can
 * approach but not beat (a job costs two requests and three statements).
 *
 *   bun bench/claim-complete.ts [jobs=2000] [workers=16]
 *
 * Uses DATABASE_URL when set, else an embedded Postgres (default durability) in
 * a temporary folder. Client and server share one process and the machine's
 * cores, so read the figures as ratios, not absolutes.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../src/app'
import { loadConfig } from '../src/config'
import { createSql } from '../src/db/client'
import { startEmbeddedPostgres } from '../src/db/embedded'
import { migrate } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { createLiveEvents } from '../src/events/live'
import { createLogger } from '../src/log'

const JOBS = Number(process.argv[2] ?? 2000)
const WORKERS = Number(process.argv[3] ?? 16)

async function database() {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} }
  const dir = await mkdtemp(join(tmpdir(), 'foreman-bench-'))
  await chmod(dir, 0o755)
  const db = await startEmbeddedPostgres({ dataDir: join(dir, 'pg') })
  const stop = async () => {
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  }
  return { url: db.url, stop }
}

/** Runs `workers` loops of `step` until one returns false; answers elapsed seconds. */
async function timed(workers: number, step: () => Promise<boolean>): Promise<number> {
  const started = performance.now()
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (await step());
    }),
  )
  return (performance.now() - started) / 1000
}

const db = await database()
const prefix = `bench_${Date.now().toString(36)}_`
const config = { ...loadConfig({}), tablePrefix: prefix }
const sql = createSql({ url: db.url, max: config.database.poolMax })
const tables = tablesFor(prefix)
await migrate(sql, tables)
const log = createLogger('PROD', 'warn')
const notifySql = createSql({ url: db.url, max: 1 })
const events = createLiveEvents({ sql, notifySql, tables, log, pollIntervalMs: config.eventsPollSec * 1000 })
await events.start()
const app = buildApp({ config, sql, tables, log, events })
const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: app.fetch })
const base = `http://127.0.0.1:${server.port}/foreman`
const post = (path: string, body: unknown) =>
  fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

try {
  // Warm-up: JIT, prepared statements, pool connections.
  const pingUntil = (count: number) => {
    let left = count
    return async () => {
      await (await fetch(`${base}/ping`)).text()
      return --left > 0
    }
  }
  await timed(WORKERS, pingUntil(200))
  const pingSec = await timed(WORKERS, pingUntil(JOBS * 2))
  const pingRate = (JOBS * 2) / pingSec

  let toEnqueue = JOBS
  const enqueueSec = await timed(WORKERS, async () => {
    if (toEnqueue-- <= 0) return false
    const res = await post('/jobs', { kind: 'bench', params: { n: toEnqueue } })
    if (res.status !== 201) throw new Error(`enqueue answered ${res.status}`)
    await res.text()
    return true
  })

  let done = 0
  const loopSec = await timed(WORKERS, async () => {
    const claim = await post('/claim', { kinds: ['bench'], worker_id: 'bench', lease_seconds: 60 })
    if (claim.status === 204) return false
    const { run } = (await claim.json()) as { run: { id: string } }
    const complete = await post(`/runs/${run.id}/complete`, { worker_id: 'bench', result: { ok: true } })
    if (complete.status !== 200) throw new Error(`complete answered ${complete.status}`)
    await complete.text()
    done++
    return true
  })
  if (done !== JOBS) throw new Error(`completed ${done} of ${JOBS}`)

  const jobsPerSec = JOBS / loopSec
  console.log(
    JSON.stringify(
      {
        jobs: JOBS,
        workers: WORKERS,
        ping_req_per_sec: Math.round(pingRate),
        enqueue_jobs_per_sec: Math.round(JOBS / enqueueSec),
        claim_complete_jobs_per_sec: Math.round(jobsPerSec),
        // Each job is two requests: 1.0 would mean the database cost nothing.
        requests_vs_ping_ratio: Number(((jobsPerSec * 2) / pingRate).toFixed(3)),
      },
      null,
      2,
    ),
  )
} finally {
  server.stop(true)
  await events.stop()
  await notifySql.end()
  await sql`drop table if exists ${sql(tables.runs)}, ${sql(tables.jobs)}, ${sql(tables.migrations)} cascade`
  await sql.end()
  await db.stop()
}
