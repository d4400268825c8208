/**
 * GET /events (every job) through a real socket: filters, `event: deleted` on
 * retention, resuming with Last-Event-ID or ?since= (at least once: every missed
 * job arrives, repeats allowed), refusing a bad cursor, and changes made by
 * another Foreman instance on the same tables.
 */
import { describe, expect, test } from 'bun:test'
import { pruneHistory } from '../src/sweeps/retention'
import { blockedOn, lockRun, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { type SseEvent, SseReader } from './support/sse-client'

const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const other = await startFixture({ eventsPollSec: 3600 }, { prefix: f.tables.prefix, keepTables: true })

const q = (params: Record<string, string>) => new URLSearchParams(params).toString()

/** Waits until every (id, status) pair has arrived on the stream. */
async function seen(sse: SseReader, wanted: [string, string][], timeoutMs = 4000) {
  const has = (id: string, status: string) => sse.events.some((e) => e.data?.id === id && e.data?.status === status)
  await sse.until(() => wanted.every(([id, status]) => has(id, status)), timeoutMs, JSON.stringify(wanted))
}

const statesOf = (events: SseEvent[]) => events.map((e) => `${e.data.id}:${e.data.status}`)

describe('GET /events filters', () => {
  test('kind, queue and status filters deliver only the jobs that match', async () => {
    const kindA = uniqueKind('stream-a')
    const kindB = uniqueKind('stream-b')
    const queue = uniqueKind('stream-q')
    const all = await SseReader.open(`${base}/events`)
    const byKind = await SseReader.open(`${base}/events?${q({ kind: kindA })}`)
    const byQueue = await SseReader.open(`${base}/events?${q({ queue })}`)
    const bySucceeded = await SseReader.open(`${base}/events?${q({ kind: kindA, status: 'succeeded' })}`)
    for (const s of [all, byKind, byQueue, bySucceeded]) {
      expect(s.status).toBe(200)
      expect(s.response.headers.get('content-type')).toStartWith('text/event-stream')
    }

    const a1 = await postOk(f, '/jobs', { kind: kindA })
    const b1 = await postOk(f, '/jobs', { kind: kindB, queue })
    const b2 = await postOk(f, '/jobs', { kind: kindB })
    await seen(all, [[a1.id, 'pending']])
    const claimed = await postOk(f, '/claim', { kinds: [kindA], worker_id: 'w-filter' })
    await seen(all, [[a1.id, 'active']])
    await postOk(f, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-filter' })
    await seen(all, [
      [a1.id, 'succeeded'],
      [b1.id, 'pending'],
      [b2.id, 'pending'],
    ])
    await seen(byKind, [[a1.id, 'succeeded']])
    await seen(byQueue, [[b1.id, 'pending']])
    await seen(bySucceeded, [[a1.id, 'succeeded']])

    expect(statesOf(byKind.events)).toEqual([`${a1.id}:pending`, `${a1.id}:active`, `${a1.id}:succeeded`])
    expect(statesOf(byQueue.events)).toEqual([`${b1.id}:pending`])
    expect(statesOf(bySucceeded.events)).toEqual([`${a1.id}:succeeded`])
    for (const s of [all, byKind, byQueue, bySucceeded]) {
      for (const e of s.events) {
        expect(e.event).toBe('job')
        expect(e.id).toContain(e.data.id)
      }
      s.close()
    }
  })

  test('retention deleting a job sends event: deleted with its id', async () => {
    const kind = uniqueKind('stream-deleted')
    const job = await postOk(f, '/jobs', { kind })
    await postOk(f, `/jobs/${job.id}/cancel`, {})
    await f.sql`update ${f.sql(f.tables.jobs)} set completed_at = now() - interval '3 days' where id = ${job.id}`

    const sse = await SseReader.open(`${base}/events?${q({ kind })}`)
    expect((await pruneHistory(f.deps, 1)).deleted).toBe(1)
    const [deleted] = await sse.next(1)
    expect(deleted?.event).toBe('deleted')
    expect(deleted?.data).toMatchObject({ id: job.id, kind, queue: 'default' })
    expect(deleted?.id).toBeTruthy()
    expect((await f.call('GET', `/jobs/${job.id}`)).status).toBe(404)
    sse.close()
  })
})

describe('GET /events resume', () => {
  test('reconnecting with Last-Event-ID delivers every job that changed while disconnected', async () => {
    const kind = uniqueKind('stream-resume')
    const first = await SseReader.open(`${base}/events?${q({ kind })}`)
    const j1 = await postOk(f, '/jobs', { kind })
    const j2 = await postOk(f, '/jobs', { kind })
    await seen(first, [
      [j1.id, 'pending'],
      [j2.id, 'pending'],
    ])
    const lastId = first.events.at(-1)?.id
    expect(lastId).toBeTruthy()
    first.close()
    await first.ended()

    // While nobody listens: two new jobs and a change to an old one.
    const j3 = await postOk(f, '/jobs', { kind })
    const j4 = await postOk(f, '/jobs', { kind })
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-resume' })
    expect(claimed.job.id).toBe(j1.id)

    const again = await SseReader.open(`${base}/events?${q({ kind })}`, { 'Last-Event-ID': lastId as string })
    expect(again.status).toBe(200)
    await seen(again, [
      [j1.id, 'active'],
      [j3.id, 'pending'],
      [j4.id, 'pending'],
    ])
    // And it is live after the replay.
    await postOk(f, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-resume' })
    await seen(again, [[j1.id, 'succeeded']])
    for (const e of again.events) expect(e.data.kind).toBe(kind)
    again.close()
  })

  test('?since=<RFC 3339> replays the jobs that changed after that time', async () => {
    const kind = uniqueKind('stream-since')
    const before = await postOk(f, '/jobs', { kind })
    await Bun.sleep(20)
    const j1 = await postOk(f, '/jobs', { kind })
    const j2 = await postOk(f, '/jobs', { kind })
    const since = new Date(Date.parse(j1.enqueued_at) - 5).toISOString()
    expect(Date.parse(since)).toBeGreaterThan(Date.parse(before.updated_at))

    const sse = await SseReader.open(`${base}/events?${q({ kind, since })}`)
    expect(sse.status).toBe(200)
    await seen(sse, [
      [j1.id, 'pending'],
      [j2.id, 'pending'],
    ])
    expect(sse.events.some((e) => e.data.id === before.id)).toBe(false)
    sse.close()
  })

  test('a malformed Last-Event-ID or since is a 400 naming it, before streaming', async () => {
    const badHeader = await fetch(`${base}/events`, { headers: { 'Last-Event-ID': 'yesterday-ish' } })
    expect(badHeader.status).toBe(400)
    expect(badHeader.headers.get('content-type')).toContain('application/json')
    expect((await badHeader.json()).error).toContain('Last-Event-ID')

    const badSince = await fetch(`${base}/events?since=not-a-time`)
    expect(badSince.status).toBe(400)
    expect((await badSince.json()).error).toContain('since')
  })
})

describe('GET /events and commit order', () => {
  test('a completion that commits after a concurrent cancel reaches the live stream and a resume from the cancel', async () => {
    const kind = uniqueKind('stream-race')
    const job = await postOk(f, '/jobs', { kind })
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-race' })
    const live = await SseReader.open(`${base}/events?${q({ kind })}`)

    // The completion's statement starts first but waits on the run row; a cancel commits meanwhile.
    const unlock = await lockRun(f, claimed.run.id)
    const completing = f.call('POST', `/runs/${claimed.run.id}/complete`, { worker_id: 'w-race' })
    await blockedOn(f, "status = 'succeeded'")
    await postOk(f, `/jobs/${job.id}/cancel`, {})
    await live.until(() => live.events.some((e) => e.data.cancel_requested), 4000, 'the cancel request')
    const cancelEventId = live.events.at(-1)?.id as string
    await unlock()
    expect((await completing).body.status).toBe('succeeded')
    // A later job as a marker: once the live stream shows it, the completion's hint was handled too.
    const marker = await postOk(f, '/jobs', { kind })
    await seen(live, [[marker.id, 'pending']])
    const resumed = await SseReader.open(`${base}/events?${q({ kind })}`, { 'Last-Event-ID': cancelEventId })
    await seen(resumed, [[marker.id, 'pending']])
    live.close()
    resumed.close()

    // The job is succeeded in the table; each stream must have said so.
    const statusOf = (sse: SseReader) => sse.events.filter((e) => e.data.id === job.id).at(-1)?.data.status
    expect({ live: statusOf(live), resumed: statusOf(resumed) }).toEqual({ live: 'succeeded', resumed: 'succeeded' })
  })
})

describe('GET /events across instances', () => {
  test('changes made through another instance on the same tables reach the all-jobs stream', async () => {
    const kind = uniqueKind('stream-other')
    const received = f.deps.events.hub.stats().received
    const sse = await SseReader.open(`${base}/events?${q({ kind })}`)
    const job = await postOk(other, '/jobs', { kind })
    await seen(sse, [[job.id, 'pending']])
    const claimed = await postOk(other, '/claim', { kinds: [kind], worker_id: 'w-other' })
    await seen(sse, [[job.id, 'active']])
    await postOk(other, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-other', result: [1, 2] })
    await seen(sse, [[job.id, 'succeeded']])
    expect(sse.events.at(-1)?.data).toMatchObject({ id: job.id, status: 'succeeded', result: [1, 2] })
    expect(f.deps.events.hub.stats().received).toBeGreaterThan(received)
    sse.close()
  })
})
