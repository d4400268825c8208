/**
 * GET /events/:id through a real socket: the job at once, one event per change in
 * order, the stream ending after the terminal event, refusals before streaming,
 * changes made by another Foreman instance on the same tables, and a quiet stream
 * that outlives Bun's idle timeout on keep-alive comments.
 */
import { describe, expect, test } from 'bun:test'
import { newJobId } from '../src/ids'
import { blockedOn, lockRun, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { SseReader } from './support/sse-client'

// No safety poll to speak of: whatever arrives, arrives by a hint (in-process or NOTIFY).
const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
// A second Foreman instance on the same tables, with its own LISTEN/NOTIFY connections.
const other = await startFixture({ eventsPollSec: 3600 }, { prefix: f.tables.prefix, keepTables: true })

describe('GET /events/:id', () => {
  test('sends retry, then the job at once, then claim, progress and completion in order, then ends', async () => {
    const kind = uniqueKind('sse-order')
    const job = await postOk(f, '/jobs', { kind })
    const sse = await SseReader.open(`${base}/events/${job.id}`)
    expect(sse.status).toBe(200)
    expect(sse.response.headers.get('content-type')).toStartWith('text/event-stream')

    const [first] = await sse.next(1)
    expect(sse.frames[0]).toMatchObject({ type: 'retry' })
    expect(first).toMatchObject({ event: 'job', data: { id: job.id, status: 'pending', current_run: null } })

    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-order' })
    const [active] = await sse.next(1)
    expect(active?.data).toMatchObject({ id: job.id, status: 'active', attempt_count: 1 })
    expect(active?.data.current_run).toMatchObject({ id: claimed.run.id, status: 'running', worker_id: 'w-order' })

    await postOk(f, `/runs/${claimed.run.id}/heartbeat`, {
      worker_id: 'w-order',
      progress_current: 3,
      progress_total: 10,
    })
    const [progress] = await sse.next(1)
    expect(progress?.data.status).toBe('active')
    expect(progress?.data.current_run).toMatchObject({ id: claimed.run.id, progress_current: 3, progress_total: 10 })

    await postOk(f, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-order', result: { answer: 42 } })
    const [done] = await sse.next(1)
    expect(done?.data).toMatchObject({ id: job.id, status: 'succeeded', result: { answer: 42 }, current_run: null })

    await sse.ended()
    expect(sse.events.length).toBe(4)
    const ids = sse.events.map((e) => e.id ?? '')
    for (const id of ids) expect(id).toContain(job.id)
    // Event ids are versions: each change's id sorts after the one before it.
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })

  test('an unknown well-formed id is a JSON 404 before any streaming; a malformed id is 400', async () => {
    const unknown = await fetch(`${base}/events/${newJobId()}`)
    expect(unknown.status).toBe(404)
    expect(unknown.headers.get('content-type')).toContain('application/json')
    expect(typeof (await unknown.json()).error).toBe('string')

    const malformed = await fetch(`${base}/events/not-a-job-id`)
    expect(malformed.status).toBe(400)
    expect(typeof (await malformed.json()).error).toBe('string')
  })

  test('a stream of an already terminal job sends that one event and ends', async () => {
    const kind = uniqueKind('sse-terminal')
    const job = await postOk(f, '/jobs', { kind })
    await postOk(f, `/jobs/${job.id}/cancel`, {})
    const sse = await SseReader.open(`${base}/events/${job.id}`)
    await sse.ended()
    expect(sse.events.map((e) => [e.event, e.data.id, e.data.status])).toEqual([['job', job.id, 'cancelled']])
    expect(sse.events[0]?.id).toContain(job.id)
  })

  test('cancelling an active job shows cancel_requested, and the worker failing out lands as cancelled and ends', async () => {
    const kind = uniqueKind('sse-cancel')
    const job = await postOk(f, '/jobs', { kind })
    const sse = await SseReader.open(`${base}/events/${job.id}`)
    await sse.next(1)
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-cancel' })
    expect((await sse.next(1))[0]?.data.status).toBe('active')

    const cancelled = await postOk(f, `/jobs/${job.id}/cancel`, {})
    expect(cancelled).toMatchObject({ status: 'active', cancel_requested: true })
    expect((await sse.next(1))[0]?.data).toMatchObject({ status: 'active', cancel_requested: true })

    const beat = await postOk(f, `/runs/${claimed.run.id}/heartbeat`, { worker_id: 'w-cancel' })
    expect(beat.cancel_requested).toBe(true)
    await postOk(f, `/runs/${claimed.run.id}/fail`, { worker_id: 'w-cancel', error: 'cancelled by request' })

    await sse.ended()
    const last = sse.events.at(-1)
    expect(last?.data).toMatchObject({ id: job.id, status: 'cancelled', current_run: null })
    expect(sse.events.filter((e) => e.data.status === 'cancelled').length).toBe(1)
  })

  test('changes made through another instance on the same tables reach the stream (LISTEN/NOTIFY)', async () => {
    const kind = uniqueKind('sse-other')
    const received = f.deps.events.hub.stats().received
    // Enqueued, claimed, heartbeaten and completed by instance B; watched on instance A.
    const job = await postOk(other, '/jobs', { kind })
    const sse = await SseReader.open(`${base}/events/${job.id}`)
    expect((await sse.next(1))[0]?.data.status).toBe('pending')

    const claimed = await postOk(other, '/claim', { kinds: [kind], worker_id: 'w-other' })
    expect((await sse.next(1))[0]?.data).toMatchObject({ status: 'active', current_run: { id: claimed.run.id } })

    await postOk(other, `/jobs/${job.id}/heartbeat`, { worker_id: 'w-other', progress_current: 7 })
    expect((await sse.next(1))[0]?.data.current_run).toMatchObject({ progress_current: 7 })

    await postOk(other, `/jobs/${job.id}/complete`, { worker_id: 'w-other', result: 'from-b' })
    expect((await sse.next(1))[0]?.data).toMatchObject({ status: 'succeeded', result: 'from-b' })
    await sse.ended()
    // They came over the wire from B, not from A's own publishes.
    expect(f.deps.events.hub.stats().received).toBeGreaterThan(received)
  })
})

describe('GET /events/:id and commit order', () => {
  test('a completion that commits after a concurrent cancel still reaches the stream, which then ends', async () => {
    const kind = uniqueKind('sse-race')
    const job = await postOk(f, '/jobs', { kind })
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-race' })
    const sse = await SseReader.open(`${base}/events/${job.id}`)
    expect((await sse.next(1))[0]?.data.status).toBe('active')

    // The completion's statement starts first but waits on the run row (say, behind a
    // heartbeat); a cancel slips in and commits before it.
    const unlock = await lockRun(f, claimed.run.id)
    const completing = f.call('POST', `/runs/${claimed.run.id}/complete`, { worker_id: 'w-race', result: 'won' })
    await blockedOn(f, "status = 'succeeded'")
    expect((await postOk(f, `/jobs/${job.id}/cancel`, {})).cancel_requested).toBe(true)
    expect((await sse.next(1))[0]?.data).toMatchObject({ status: 'active', cancel_requested: true })
    await unlock()
    expect((await completing).body).toMatchObject({ status: 'succeeded', result: 'won' })

    // The job is now succeeded in the table; the stream must say so and end.
    expect((await sse.next(1))[0]?.data).toMatchObject({ id: job.id, status: 'succeeded', result: 'won' })
    await sse.ended()
  })
})

describe('an idle stream', () => {
  test('outlives the 10 s idle timeout on keep-alive comments and still delivers a later change', async () => {
    const quiet = await startFixture({ sseKeepAliveSec: 1, eventsPollSec: 3600 })
    const url = quiet.serve()
    const kind = uniqueKind('sse-idle')
    const job = await postOk(quiet, '/jobs', { kind })
    const sse = await SseReader.open(`${url}/events/${job.id}`)
    await sse.next(1)

    await Bun.sleep(12_000)
    expect(sse.done).toBe(false)
    expect(sse.comments).toContain('keep-alive')

    await postOk(quiet, '/claim', { kinds: [kind], worker_id: 'w-idle' })
    expect((await sse.next(1))[0]?.data).toMatchObject({ id: job.id, status: 'active' })
    sse.close()
    await quiet.close()
  }, 25_000)
})
