/**
 * The operator views' `max_age_seconds`: a caller that accepts an older answer
 * shares the latest read (so many open consoles cost one read), a caller that does
 * not always reads afresh, and a pause or resume is never hidden behind an old one.
 */
import { describe, expect, test } from 'bun:test'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

type QueueRow = { queue: string; pending: number; paused: boolean }
const queueIn = async (path: string, queue: string) => {
  const res = await f.call('GET', path)
  expect(res.status).toBe(200)
  return (res.body as QueueRow[]).find((q) => q.queue === queue)
}

describe('max_age_seconds on the operator views', () => {
  test('GET /queues shares a young answer with callers that accept it, and no one else', async () => {
    const queue = `shared-${Date.now().toString(36)}`
    const kind = uniqueKind('shared')
    await postOk(f, '/jobs', { kind, queue })
    expect((await queueIn('/queues', queue))?.pending).toBe(1)
    await postOk(f, '/jobs', { kind, queue })
    // Accepting a minute-old answer: the read above, before the second job.
    expect((await queueIn('/queues?max_age_seconds=60', queue))?.pending).toBe(1)
    // Saying nothing: read now.
    expect((await queueIn('/queues', queue))?.pending).toBe(2)
    // That fresh read is now the one shared.
    expect((await queueIn('/queues?max_age_seconds=60', queue))?.pending).toBe(2)
  })

  test('a pause and a resume forget the shared answer', async () => {
    const queue = `shared-pause-${Date.now().toString(36)}`
    await postOk(f, '/jobs', { kind: uniqueKind('shared'), queue })
    expect((await queueIn('/queues', queue))?.paused).toBe(false)
    await postOk(f, `/queues/${queue}/pause`, undefined)
    expect((await queueIn('/queues?max_age_seconds=60', queue))?.paused).toBe(true)
    await postOk(f, `/queues/${queue}/resume`, undefined)
    expect((await queueIn('/queues?max_age_seconds=60', queue))?.paused).toBe(false)
  })

  test('GET /workers and GET /stats share the same way; /stats per window', async () => {
    const kind = uniqueKind('shared-stats')
    const countOf = async (path: string) => {
      const res = await f.call('GET', path)
      expect(res.status).toBe(200)
      return (res.body as { rows: { kind: string; enqueued: number }[] }).rows
        .filter((r) => r.kind === kind)
        .reduce((n, r) => n + r.enqueued, 0)
    }
    await postOk(f, '/jobs', { kind })
    expect(await countOf('/stats?window=1h')).toBe(1)
    await postOk(f, '/jobs', { kind })
    expect(await countOf('/stats?window=1h&max_age_seconds=60')).toBe(1)
    // Another window is another read.
    expect(await countOf('/stats?window=15m&max_age_seconds=60')).toBe(2)
    expect(await countOf('/stats?window=1h')).toBe(2)

    const workerIds = async (path: string) => {
      const res = await f.call('GET', path)
      expect(res.status).toBe(200)
      return (res.body as { worker_id: string }[]).map((w) => w.worker_id)
    }
    const [first, second] = [`w1-${kind}`, `w2-${kind}`]
    await claimOne(f, kind, first)
    expect(await workerIds('/workers')).toContain(first)
    await claimOne(f, kind, second)
    expect(await workerIds('/workers?max_age_seconds=60')).not.toContain(second)
    expect(await workerIds('/workers')).toContain(second)
  })

  test('refuses a max age that is not a number from 0 to 60, naming it', async () => {
    for (const path of [
      '/queues?max_age_seconds=61',
      '/workers?max_age_seconds=-1',
      '/stats?max_age_seconds=soon',
      '/queues?max_age_seconds=1.5',
    ]) {
      const res = await f.call('GET', path)
      expect(res.status).toBe(400)
      expect(JSON.stringify(res.body)).toContain('max_age_seconds')
    }
  })
})
