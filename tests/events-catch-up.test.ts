/**
 * The safety poll's catch-up: a change no instance announced (its NOTIFY was lost)
 * reaches every stream after one shared read of what changed, not a replay per
 * stream; a re-listen, after which any number of changes went unheard, still has
 * each stream replay from its own cursor.
 */
import { afterAll, expect, test } from 'bun:test'
import pino from 'pino'
import { type FeedUpdate, JobFeed, type StreamWatcher } from '../src/events/feed'
import { toVersion } from '../src/events/sql'
import { drivenHub } from './support/driven-hub'
import { postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually } from './support/sse-client'

const f = await startFixture({ eventsPollSec: 3600 })

/** The feed's hub, driven here by the test. */
const { hub, hear } = drivenHub()

// Every call the feed makes on its client (statements and the fragments they are built of), counted.
let calls = 0
const counted = new Proxy(f.deps.sql, {
  apply(target, self, args) {
    calls++
    return Reflect.apply(target, self, args)
  },
})
const feeds: JobFeed[] = []
/** A feed of its own, so each test starts with no streams. */
function newFeed(): JobFeed {
  const feed = new JobFeed(hub, counted, f.tables, pino({ level: 'silent' }))
  feeds.push(feed)
  return feed
}
afterAll(() => {
  for (const feed of feeds) feed.close()
})

function watcher(kind: string): StreamWatcher & { got: FeedUpdate[]; resyncs: number } {
  const w = {
    filter: { kind },
    from: { version: toVersion(Date.now() - 1000), id: '' },
    got: [] as FeedUpdate[],
    resyncs: 0,
    deliver: (u: FeedUpdate) => w.got.push(u),
    resync: () => w.resyncs++,
  }
  return w
}

test('a poll tick reads what changed once and hands it to every stream; no stream replays', async () => {
  /** Calls one poll catch-up costs with `n` streams watching, once each has the unannounced job. */
  const catchUpWith = async (n: number) => {
    const kind = uniqueKind('catch-up')
    const feed = newFeed()
    const streams = Array.from({ length: n }, () => watcher(kind))
    for (const s of streams) feed.watchAll(s)
    // Enqueued through the API, but this feed hears nothing of it: a lost NOTIFY.
    const job = await postOk(f, '/jobs', { kind })
    calls = 0
    hear({ type: 'resync', reason: 'poll' })
    for (const s of streams) {
      await eventually(() => s.got.length > 0, 5000, 'the unannounced job on every stream')
      expect(s.got[0]).toMatchObject({ type: 'job', versioned: { job: { id: job.id, status: 'pending' } } })
      expect(s.resyncs).toBe(0)
    }
    return calls
  }
  const one = await catchUpWith(1)
  expect(one).toBeGreaterThan(0)
  expect(await catchUpWith(5)).toBe(one)
})

test('a re-listen has each stream replay from its own cursor', async () => {
  const kind = uniqueKind('relisten')
  const streams = [watcher(kind), watcher(kind)]
  const feed = newFeed()
  for (const s of streams) feed.watchAll(s)
  hear({ type: 'resync', reason: 'relisten' })
  for (const s of streams) expect(s.resyncs).toBe(1)
})
