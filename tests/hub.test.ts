/**
 * The event hub and what hangs off it: NOTIFY payloads stay under Postgres's size
 * limit and decode to what was sent, publish reaches this process at once, a
 * burst leaves in a few coalesced NOTIFYs, and a thousand streams or long polls
 * that clients abandon leave no subscriber, watcher, stream or waiter behind.
 */
import { describe, expect, test } from 'bun:test'
import { decodeChanges, encodeChanges, type HubEvent, type JobChange } from '../src/events/hub'
import { newJobId } from '../src/ids'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually, SseReader } from './support/sse-client'

const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const events = f.deps.events

const changesOf = (n: number, kind: string, status = 'pending'): JobChange[] =>
  Array.from({ length: n }, () => ({ id: newJobId(), status, kind, queue: 'default' }))

/** Runs `n` tasks, `lanes` at a time. */
async function inLanes(n: number, lanes: number, task: (i: number) => Promise<void>) {
  let next = 0
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < n) await task(next++)
    }),
  )
}

describe('NOTIFY payloads', () => {
  test('encodeChanges splits many changes into payloads under 8,000 bytes that decode back to them', () => {
    const changes = [
      ...changesOf(150, 'k'.repeat(200)),
      // Multi-byte kinds: the limit is in bytes, not characters.
      ...changesOf(50, 'ü'.repeat(200), 'active'),
    ]
    const payloads = encodeChanges('origin-1', changes)
    expect(payloads.length).toBeGreaterThan(1)
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000)
    const decoded = payloads.map((p) => decodeChanges(p))
    for (const d of decoded) expect(d?.origin).toBe('origin-1')
    expect(decoded.flatMap((d) => d?.changes ?? [])).toEqual(changes)
  })

  test('decodeChanges answers null for a payload that is not ours', () => {
    expect(decodeChanges('not json')).toBeNull()
    expect(decodeChanges('{"x":1}')).toBeNull()
    expect(decodeChanges(encodeChanges('o', changesOf(1, 'x'))[0] as string)?.changes.length).toBe(1)
  })
})

describe('EventHub', () => {
  test('publish delivers to subscribers in this process synchronously, and unsubscribe removes them', () => {
    const before = events.hub.stats().subscribers
    const heard: HubEvent[] = []
    const unsubscribe = events.hub.subscribe((e) => heard.push(e))
    expect(events.hub.stats().subscribers).toBe(before + 1)
    const changes = changesOf(2, uniqueKind('hub-sync'), 'succeeded')
    events.hub.publish(changes)
    expect(heard).toEqual([{ type: 'changes', changes }])
    unsubscribe()
    expect(events.hub.stats().subscribers).toBe(before)
  })

  test('a burst of 500 publishes reaches another instance in full through far fewer than 500 NOTIFYs', async () => {
    const other = await startFixture({ eventsPollSec: 3600 }, { prefix: f.tables.prefix, keepTables: true })
    const kind = uniqueKind('hub-burst')
    const heard: JobChange[] = []
    const unsubscribe = other.deps.events.hub.subscribe((e) => {
      if (e.type === 'changes') heard.push(...e.changes.filter((c) => c.kind === kind))
    })
    const notifies = events.hub.stats().notifies
    const received = other.deps.events.hub.stats().received
    const sent = changesOf(500, kind, 'succeeded')
    for (const change of sent) events.hub.publish([change])

    await eventually(() => heard.length >= 500, 10_000, '500 changes on the other instance')
    // The other instance can hear a NOTIFY before the sender's own statement resolves and counts it.
    await eventually(
      () => events.hub.stats().queued === 0 && events.hub.stats().notifies > notifies,
      5000,
      'the NOTIFY queue to drain',
    )
    expect(heard.length).toBe(500)
    expect(new Set(heard.map((c) => c.id))).toEqual(new Set(sent.map((c) => c.id)))
    expect(other.deps.events.hub.stats().received - received).toBe(500)
    const used = events.hub.stats().notifies - notifies
    expect(used).toBeGreaterThan(0)
    expect(used).toBeLessThan(500)
    unsubscribe()
    await other.close()
  }, 15_000)
})

describe('no leaks', () => {
  test('1,000 connect/disconnect cycles of GET /events/:id and 100 of GET /events leave nothing behind', async () => {
    const subscribers = events.hub.stats().subscribers
    const kind = uniqueKind('hub-leak')
    const job = (await f.call('POST', '/jobs', { kind })).body
    let firsts = 0

    await inLanes(1000, 20, async () => {
      const sse = await SseReader.open(`${base}/events/${job.id}`)
      expect(sse.status).toBe(200)
      const [first] = await sse.next(1)
      if (first?.data.id === job.id) firsts++
      sse.close()
    })
    await inLanes(100, 10, async () => {
      const sse = await SseReader.open(`${base}/events?kind=${kind}`)
      expect(sse.status).toBe(200)
      await sse.until(() => sse.frames.length > 0, 5000, 'the retry frame')
      sse.close()
    })
    // Refused before streaming: an unknown id must not leave its watch behind.
    await inLanes(50, 10, async () => {
      expect((await fetch(`${base}/events/${newJobId()}`)).status).toBe(404)
    })
    expect(firsts).toBe(1000)

    await eventually(() => events.streams.open === 0, 5000, 'every stream to close')
    expect(events.streams.open).toBe(0)
    expect(events.feed.stats()).toMatchObject({ watchedJobs: 0, jobWatchers: 0, streams: 0 })
    expect(events.waiters.stats()).toEqual({ waiting: 0, sleeping: 0 })
    expect(events.hub.stats().subscribers).toBe(subscribers)

    // The job is still watchable afterwards: nothing was left half-open.
    const sse = await SseReader.open(`${base}/events/${job.id}`)
    await sse.next(1)
    await f.call('POST', `/jobs/${job.id}/cancel`)
    expect((await sse.next(1))[0]?.data.status).toBe('cancelled')
    await sse.ended()
    await eventually(() => events.streams.open === 0, 5000, 'the last stream to close')
    expect(events.feed.stats().watchedJobs).toBe(0)
  }, 30_000)

  test('1,000 long-poll claims abandoned by their clients leave no waiter behind', async () => {
    const kind = uniqueKind('hub-lp-leak')
    const subscribers = events.hub.stats().subscribers
    for (let round = 0; round < 10; round++) {
      const controllers = Array.from({ length: 100 }, () => new AbortController())
      const requests = controllers.map((c, i) =>
        fetch(`${base}/claim`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ kinds: [kind], worker_id: `w-${round}-${i}`, wait_seconds: 30 }),
          signal: c.signal,
        }).then(
          (res) => res.status,
          () => 'aborted',
        ),
      )
      await eventually(() => events.waiters.stats().sleeping >= 100, 5000, `round ${round}: 100 sleeping claimers`)
      for (const c of controllers) c.abort()
      expect(new Set(await Promise.all(requests))).toEqual(new Set(['aborted']))
      await eventually(() => events.waiters.stats().waiting === 0, 5000, `round ${round}: the line to empty`)
    }
    expect(events.waiters.stats()).toEqual({ waiting: 0, sleeping: 0 })
    expect(events.hub.stats().subscribers).toBe(subscribers)
  }, 30_000)

  test('100 enqueues waiting for an outcome, abandoned by their clients, leave no job watcher behind', async () => {
    const kind = uniqueKind('hub-enqueue-leak')
    const controllers = Array.from({ length: 100 }, () => new AbortController())
    const requests = controllers.map((c) =>
      fetch(`${base}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind, wait_seconds: 30 }),
        signal: c.signal,
      }).then(
        (res) => res.status,
        () => 'aborted',
      ),
    )
    await eventually(() => events.feed.stats().jobWatchers >= 100, 4000, '100 enqueues waiting')
    for (const c of controllers) c.abort()
    expect(new Set(await Promise.all(requests))).toEqual(new Set(['aborted']))
    await eventually(() => events.feed.stats().jobWatchers === 0, 4000, 'the watchers to go')
    expect(events.feed.stats()).toMatchObject({ watchedJobs: 0, jobWatchers: 0, streams: 0 })
  })
})
