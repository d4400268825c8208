/**
 * The live feed's re-read can fail (the database restarting under it). The hints
 * of that batch must wait for the next re-read, not be dropped: an all-jobs
 * stream resumes from its cursor, which later events move past the jobs of the
 * failed batch, so a dropped hint is a change that no stream ever sees.
 */
import { afterAll, expect, test } from 'bun:test'
import pino from 'pino'
import { createSql } from '../src/db/client'
import { type FeedUpdate, JobFeed } from '../src/events/feed'
import { toVersion } from '../src/events/sql'
import { drivenHub } from './support/driven-hub'
import { postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually } from './support/sse-client'
import { TcpProxy } from './support/tcp-proxy'

const f = await startFixture({ eventsPollSec: 3600 })
const target = new URL(process.env.DATABASE_URL as string)
const proxy = new TcpProxy(target.hostname, Number(target.port))
proxy.start()
const proxied = new URL(target)
proxied.port = String(proxy.port)
// The feed reads through the proxy; the test's own writes go straight to Postgres.
const feedSql = createSql({ url: proxied.toString(), max: 1 })

/** The feed's hub, driven here by the test. */
const { hub, hear } = drivenHub()

const warnings: string[] = []
const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) })
const feed = new JobFeed(hub, feedSql, f.tables, log)

afterAll(async () => {
  feed.close()
  proxy.stop()
  await feedSql.end({ timeout: 1 })
})

test('a change whose re-read failed reaches the all-jobs stream once the database answers again', async () => {
  const kind = uniqueKind('feed-retry')
  const delivered: FeedUpdate[] = []
  feed.watchAll({
    filter: { kind },
    from: { version: toVersion(Date.now()), id: '' },
    deliver: (u) => delivered.push(u),
    resync: () => {},
  })
  const job = await postOk(f, '/jobs', { kind })

  proxy.stop()
  hear({ type: 'changes', changes: [{ id: job.id, status: 'pending', kind, queue: job.queue }] })
  await eventually(() => warnings.some((w) => w.includes('live re-read failed')), 15_000, 'the failed re-read')
  expect(delivered).toHaveLength(0)

  proxy.start()
  // The safety poll's tick (or any later hint) is what retries.
  hear({ type: 'resync', reason: 'poll' })
  await eventually(() => delivered.length > 0, 15_000, 'the job on the stream after the database is back')
  expect(delivered[0]).toMatchObject({ type: 'job', versioned: { job: { id: job.id, status: 'pending' } } })
}, 40_000)
