/**
 * FOREMAN_MAX_STREAMS: beyond the cap a stream (GET /events or GET /events/:id) is
 * refused before streaming with a JSON 503 and Retry-After; every way a stream
 * ends, and every refusal before streaming, gives its slot back.
 */
import { describe, expect, test } from 'bun:test'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually, SseReader } from './support/sse-client'

const OPEN = 'foreman_event_streams_open'

/** A label-free series' value on GET /metrics of `baseUrl` (undefined when absent). */
async function metric(baseUrl: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const capped = await startFixture({ maxStreams: 2 })
const base = capped.serve()
const open = () => capped.deps.events.streams.open

/** Enqueues a job of its own and answers it. */
async function newJob() {
  return (await capped.call('POST', '/jobs', { kind: uniqueKind('capped') })).body as { id: string }
}

describe('FOREMAN_MAX_STREAMS', () => {
  test('beyond the cap, GET /events and GET /events/:id are refused with a JSON 503 and Retry-After', async () => {
    const job = await newJob()
    const all = await SseReader.open(`${base}/events`)
    const one = await SseReader.open(`${base}/events/${job.id}`)
    expect([all.status, one.status]).toEqual([200, 200])
    expect(await metric(base, OPEN)).toBe(2)

    for (const path of ['/events', `/events/${job.id}`]) {
      const refused = await fetch(`${base}${path}`)
      expect(refused.status).toBe(503)
      expect(refused.headers.get('content-type')).toContain('application/json')
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await refused.json()).error).toContain('too many open event streams')
    }
    expect(await metric(base, 'foreman_event_streams_shed_total{reason="at_capacity"}')).toBe(2)
    all.close()
    one.close()
    await eventually(() => open() === 0, 10_000, 'both slots to be given back')
    expect(await metric(base, OPEN)).toBe(0)
  })

  test('a stream the client closes, and one that ends with its job, give their slots back', async () => {
    const job = await newJob()
    const all = await SseReader.open(`${base}/events`)
    const one = await SseReader.open(`${base}/events/${job.id}`)
    expect((await fetch(`${base}/events`)).status).toBe(503)

    all.close()
    await eventually(() => open() === 1, 10_000, 'the closed stream to give back its slot')
    const again = await SseReader.open(`${base}/events`)
    expect(again.status).toBe(200)

    await capped.call('POST', `/jobs/${job.id}/cancel`)
    await one.ended()
    await eventually(() => open() === 1, 10_000, "the finished job's stream to give back its slot")
    const more = await SseReader.open(`${base}/events`)
    expect(more.status).toBe(200)
    again.close()
    more.close()
    await eventually(() => open() === 0, 10_000, 'every slot to be given back')
  })

  test('a request refused before streaming (an unknown job, a bad cursor) keeps no slot', async () => {
    const first = await SseReader.open(`${base}/events`)
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${base}/events/job_00000000000000000000000000`)).status).toBe(404)
      expect((await fetch(`${base}/events?since=yesterday`)).status).toBe(400)
    }
    expect(open()).toBe(1)
    const second = await SseReader.open(`${base}/events`)
    expect(second.status).toBe(200)
    first.close()
    second.close()
    await eventually(() => open() === 0, 10_000, 'every slot to be given back')
  })
})
