/**
 * HEAD on the event streams answers at once with the GET's status and headers and
 * no body, and opens nothing: no subscription, no stream slot. (Elysia's own HEAD
 * runs the GET and reads its whole body for a Content-Length: on a stream that
 * never ends, it never answered.)
 */
import { expect, test } from 'bun:test'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture({ maxStreams: 1 })
const base = f.serve()
const UNKNOWN_JOB = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

/** A HEAD that must answer within a few seconds. */
async function head(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { method: 'HEAD', headers, signal: AbortSignal.timeout(5000) })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() }
}

test('HEAD /events and HEAD /events/:id answer 200 text/event-stream at once, with no body and no stream opened', async () => {
  const job = (await f.call('POST', '/jobs', { kind: uniqueKind('head') })).body as { id: string }
  const subscribers = f.deps.events.hub.stats().subscribers
  for (const path of ['/events', '/events?kind=x&status=pending', `/events/${job.id}`]) {
    const answer = await head(path)
    expect({ path, ...answer, type: answer.type.split(';')[0] }).toEqual({
      path,
      status: 200,
      type: 'text/event-stream',
      body: '',
    })
  }
  expect(f.deps.events.streams.open).toBe(0)
  expect(f.deps.events.hub.stats().subscribers).toBe(subscribers)
})

test('through app.handle too (Elysia routes a HEAD on a path with parameters to the GET)', async () => {
  const job = (await f.call('POST', '/jobs', { kind: uniqueKind('head') })).body as { id: string }
  for (const path of ['/events', `/events/${job.id}`]) {
    const answer = await Promise.race([
      f.app.handle(new Request(`http://localhost/foreman${path}`, { method: 'HEAD' })),
      Bun.sleep(5000).then(() => null),
    ])
    expect([path, answer?.status, answer?.headers.get('content-type')?.split(';')[0]]).toEqual([
      path,
      200,
      'text/event-stream',
    ])
  }
  expect(f.deps.events.streams.open).toBe(0)
})

test('HEAD answers what the GET would before streaming: 404 for an unknown job, 400 for a bad id or filter', async () => {
  expect((await head(`/events/${UNKNOWN_JOB}`)).status).toBe(404)
  expect((await head('/events/nope')).status).toBe(400)
  expect((await head('/events?status=nope')).status).toBe(400)
  expect((await head('/events', { 'last-event-id': 'nope' })).status).toBe(400)
})
