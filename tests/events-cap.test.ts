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

describe('FOREMAN_MAX_STREAMS', () => {
  test('beyond the cap a stream is refused with a JSON 503 and Retry-After; a closed stream frees its slot', async () => {
    const capped = await startFixture({ maxStreams: 2 })
    const cappedBase = capped.serve()
    const job = (await capped.call('POST', '/jobs', { kind: uniqueKind('capped') })).body
    const all = await SseReader.open(`${cappedBase}/events`)
    const one = await SseReader.open(`${cappedBase}/events/${job.id}`)
    expect([all.status, one.status]).toEqual([200, 200])
    expect(await metric(cappedBase, OPEN)).toBe(2)

    for (const path of ['/events', `/events/${job.id}`]) {
      const refused = await fetch(`${cappedBase}${path}`)
      expect(refused.status).toBe(503)
      expect(refused.headers.get('content-type')).toContain('application/json')
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await refused.json()).error).toContain('too many open event streams')
    }
    expect(await metric(cappedBase, 'foreman_event_streams_shed_total{reason="at_capacity"}')).toBe(2)

    all.close()
    await eventually(() => capped.deps.events.streams.open === 1, 10_000, 'the closed stream to give back its slot')
    // Refusals before streaming (an unknown job) give their slot back at once.
    for (let i = 0; i < 3; i++)
      expect((await fetch(`${cappedBase}/events/job_00000000000000000000000000`)).status).toBe(404)
    const again = await SseReader.open(`${cappedBase}/events`)
    expect(again.status).toBe(200)
    expect(capped.deps.events.streams.open).toBe(2)
    again.close()
    one.close()
    await eventually(() => capped.deps.events.streams.open === 0, 10_000, 'every slot to be given back')
    expect(await metric(cappedBase, OPEN)).toBe(0)
  }, 60_000)
})
