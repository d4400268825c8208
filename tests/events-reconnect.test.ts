/**
 * A dropped LISTEN connection: postgres.js re-listens, the hub tells its
 * subscribers to resynchronise (without waiting for the safety poll), and
 * changes made by another instance flow again.
 */
import { expect, test } from 'bun:test'
import type { HubEvent } from '../src/events/hub'
import { enqueueJob, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually, SseReader } from './support/sse-client'

// A safety poll far longer than the test: any resync seen here came from the re-listen.
const a = await startFixture({ eventsPollSec: 600 })
const b = await startFixture({ eventsPollSec: 600 }, { prefix: a.tables.prefix, keepTables: true })
const channel = `${a.tables.prefix}events`
// One LISTEN connection per instance carries both channels; its last query names either.
const listenQueries = [`listen "${channel}"`, `listen "${a.tables.prefix}limits"`]

test('killing the LISTEN connection resyncs subscribers and cross-instance events resume', async () => {
  const heard: HubEvent['type'][] = []
  const stop = a.deps.events.hub.subscribe((event) => heard.push(event.type))
  const job = await enqueueJob(b, { kind: uniqueKind('relisten') })
  const stream = await SseReader.open(`${a.serve()}/events/${job.id}`)
  expect((await stream.next())[0]?.data.status).toBe('pending')

  const killed = await a.sql<{ pid: number }[]>`
    select pid from pg_stat_activity
    where query = any(${listenQueries}) and pid <> pg_backend_pid()`
  expect(killed.length).toBeGreaterThanOrEqual(2) // one per instance
  for (const { pid } of killed) await a.sql`select pg_terminate_backend(${pid})`

  await eventually(() => heard.includes('resync'), 10_000, 'a resync after the re-listen')
  // Both instances listen again (B's re-listen may lag A's, which the resync above proves).
  let listening = 0
  for (let i = 0; i < 100 && listening < 2; i++) {
    const [row] = await a.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where query = any(${listenQueries})`
    listening = row?.n ?? 0
    if (listening < 2) await Bun.sleep(50)
  }
  expect(listening).toBeGreaterThanOrEqual(2)

  // B's cancel reaches A's stream through the new LISTEN connection.
  const cancelled = await b.call('POST', `/jobs/${job.id}/cancel`)
  expect(cancelled.status).toBe(200)
  const [event] = await stream.next(1, 10_000)
  expect(event?.data).toMatchObject({ id: job.id, status: 'cancelled' })
  await stream.ended()
  stop()
}, 30_000)
