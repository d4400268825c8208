/**
 * Two Foreman servers (src/index.ts, as deployed) behind PgBouncer in transaction
 * mode (`npm run test:pgbouncer` only: it needs the pooler the preload starts).
 * Every request-path statement goes through PgBouncer, unprepared; LISTEN, NOTIFY
 * and migrations go to FOREMAN_DIRECT_DATABASE_URL. A job enqueued on one server
 * wakes a long-poll claimer on the other; more concurrent requests than the
 * pooler's server connections are served; a misconfigured start is refused.
 */
import { afterAll, expect, test } from 'bun:test'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ForemanClient } from '../../src/client'
import { createSql } from '../../src/db/client'
import { SESSION_IDLE_SEC } from '../../src/db/connections'
import { uniqueKind } from '../support/factories'
import { foremanEnv, listeningBase, spawnForeman } from '../support/foreman-process'
import { uniquePrefix } from '../support/harness'
import { PGBOUNCER_POOL_SIZE } from '../support/pgbouncer'

const pooler = process.env.FOREMAN_TEST_PGBOUNCER_URL
const directUrl = process.env.DATABASE_URL
if (!pooler || !directUrl) throw new Error('run through `npm run test:pgbouncer` (FOREMAN_TEST_POOL_MODE=transaction)')
/** Straight to the database, to count the servers' own connections. */
const direct = createSql({ url: directUrl, max: 1, applicationName: 'pgbouncer-test' })

const cwd = await mkdtemp(join(tmpdir(), 'foreman-pgbouncer-'))
const prefix = uniquePrefix()
const env = foremanEnv({
  DATABASE_URL: pooler,
  FOREMAN_DB_POOL_MODE: 'transaction',
  FOREMAN_DIRECT_DATABASE_URL: directUrl,
  FOREMAN_TABLE_PREFIX: prefix,
  FOREMAN_DB_POOL_MAX: '20',
  // Only a NOTIFY over the direct connection can wake the other server's claimers early.
  FOREMAN_EVENTS_POLL_SEC: '3600',
})
const servers = [spawnForeman(env, cwd), spawnForeman(env, cwd)]
afterAll(async () => {
  for (const s of servers) s.child.kill('SIGTERM')
  await Promise.all(servers.map((s) => s.exitWithin(10_000)))
  await direct.end()
})
const bases = await Promise.all(servers.map((s) => listeningBase(s, 30_000)))
const [a, b] = bases.map((baseUrl) => new ForemanClient({ baseUrl: baseUrl.replace(/\/foreman$/, '') })) as [
  ForemanClient,
  ForemanClient,
]

test('both servers started in transaction mode and say where the session work goes', () => {
  for (const s of servers) expect(s.output()).toContain('transaction pool mode')
})

test('a job enqueued on one server wakes a long-poll claimer on the other, through LISTEN on the direct connection', async () => {
  const kind = uniqueKind('bouncer')
  const waiting = b.claim({ kinds: [kind], worker_id: 'w-b', wait_seconds: 20 })
  await Bun.sleep(300)
  const started = performance.now()
  const { job } = await a.enqueue({ kind, params: { n: 1 } })
  const claimed = await waiting
  expect(claimed?.job.id).toBe(job.id)
  expect(performance.now() - started).toBeLessThan(10_000)
  const done = await b.complete(claimed?.run.id as string, { worker_id: 'w-b', result: { ok: true } })
  expect(done.status).toBe('succeeded')
}, 30_000)

test(`four times as many concurrent requests as PgBouncer's ${PGBOUNCER_POOL_SIZE} server connections all succeed`, async () => {
  const kind = uniqueKind('crowd')
  const n = PGBOUNCER_POOL_SIZE * 4
  const jobs = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? a : b).enqueue({ kind, params: { i } })))
  expect(new Set(jobs.map((j) => j.job.id)).size).toBe(n)
  const claimed = await Promise.all(
    Array.from({ length: n }, (_, i) => (i % 2 ? b : a).claim({ kinds: [kind], worker_id: `c-${i}` })),
  )
  const ids = claimed.map((c) => c?.job.id)
  expect(ids.every((id) => id !== undefined)).toBe(true)
  expect(new Set(ids).size).toBe(n)
}, 30_000)

test('each server holds two direct connections once started (LISTEN, NOTIFY); everything else goes through PgBouncer', async () => {
  const directs = async () => {
    const [row] = await direct`
      select count(*)::int as n from pg_stat_activity
      where application_name in ('foreman-session', 'foreman-notify')`
    return row?.n ?? -1
  }
  // The migration's connection closes once idle (SESSION_IDLE_SEC); the others stay.
  const deadline = Date.now() + (SESSION_IDLE_SEC + 10) * 1000
  while ((await directs()) > 2 * servers.length && Date.now() < deadline) await Bun.sleep(250)
  expect(await directs()).toBe(2 * servers.length)
}, 30_000)

test('transaction mode without a direct URL does not start', async () => {
  const { FOREMAN_DIRECT_DATABASE_URL: _, ...without } = env
  const refused = spawnForeman(without, cwd)
  expect(await refused.exitWithin(20_000)).not.toBe(0)
  expect(refused.output()).toContain('FOREMAN_DIRECT_DATABASE_URL')
})
