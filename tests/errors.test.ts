/** The error mapping: every refusal is JSON `{ error }`, bad input is 400 naming the field, never a 500. */
import { describe, expect, test } from 'bun:test'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { type Answer, startFixture } from './support/harness'

const f = await startFixture()
const small = await startFixture({ maxBodyBytes: 2048 })

const UNKNOWN_RUN = 'run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

/** A refusal: the status, a JSON content type, an `error` string naming `field` when given. */
function expectRefused(res: Answer, status: number, field?: string) {
  expect(res.status).toBe(status)
  expect(res.headers.get('content-type') ?? '').toContain('application/json')
  expect(typeof res.body?.error).toBe('string')
  if (field) expect(res.body.error).toContain(field)
}

/** `n` random characters from [lo, hi] (incompressible, unlike a repeated letter). */
function randomChars(n: number, lo: number, hi: number): string {
  let out = ''
  for (let i = 0; i < n; i++) out += String.fromCodePoint(lo + Math.floor(Math.random() * (hi - lo + 1)))
  return out
}

describe('every non-2xx answer is JSON with an error string', () => {
  test('unknown routes are 404 JSON', async () => {
    expectRefused(await f.call('GET', '/no-such-route'), 404)
    expectRefused(await f.call('DELETE', '/jobs'), 404)
    expectRefused(await f.call('GET', '/jobs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D/nothing'), 404)
  })

  test('404, 409 and 400 from the services carry an error string', async () => {
    expectRefused(await f.call('GET', '/jobs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'), 404)
    expectRefused(await f.call('GET', `/runs/${UNKNOWN_RUN}`), 404)
    const kind = uniqueKind('err')
    await enqueueJob(f, { kind, idempotency_key: 'dup' })
    expectRefused(await f.call('POST', '/jobs', { kind, idempotency_key: 'dup' }), 409)
    const { run } = await claimOne(f, kind)
    expectRefused(await f.call('POST', `/runs/${run.id}/complete`, { worker_id: 'intruder' }), 409)
  })
})

describe('validation: 400 naming the field', () => {
  test('a missing required field', async () => {
    expectRefused(await f.call('POST', '/jobs', { queue: 'q' }), 400, 'kind')
    expectRefused(await f.call('POST', '/claim', { kinds: ['a'] }), 400, 'worker_id')
    expectRefused(await f.call('POST', `/runs/${UNKNOWN_RUN}/complete`, { result: 1 }), 400, 'worker_id')
  })

  test('numeric and boolean strings are not coerced in JSON bodies', async () => {
    expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), priority: '5' }), 400, 'priority')
    expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), max_attempts: '3' }), 400, 'max_attempts')
    const body = { worker_id: 'w', retryable: 'true' }
    expectRefused(await f.call('POST', `/runs/${UNKNOWN_RUN}/fail`, body), 400, 'retryable')
    expectRefused(
      await f.call('POST', '/claim', { kinds: ['a'], worker_id: 'w', lease_seconds: '30' }),
      400,
      'lease_seconds',
    )
  })

  test('wrong types and out-of-range numbers', async () => {
    expectRefused(await f.call('POST', '/jobs', { kind: 42 }), 400, 'kind')
    expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), priority: 1.5 }), 400, 'priority')
    expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), priority: 1e12 }), 400, 'priority')
    expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), max_attempts: 0 }), 400, 'max_attempts')
    expectRefused(await f.call('POST', '/claim', { kinds: 'a', worker_id: 'w' }), 400, 'kinds')
    const beat = { worker_id: 'w', progress_current: -1 }
    expectRefused(await f.call('POST', `/runs/${UNKNOWN_RUN}/heartbeat`, beat), 400, 'progress_current')
  })

  test('empty kinds, negative or huge lease_seconds, negative backoff_seconds', async () => {
    expectRefused(await f.call('POST', '/claim', { kinds: [], worker_id: 'w' }), 400, 'kinds')
    for (const lease of [-1, 0, 10 ** 9]) {
      const res = await f.call('POST', '/jobs/claim', { kinds: ['a'], worker_id: 'w', lease_seconds: lease })
      expectRefused(res, 400, 'lease_seconds')
    }
    const kind = uniqueKind('backoff')
    await enqueueJob(f, { kind, max_attempts: 3 })
    const { run } = await claimOne(f, kind)
    const res = await f.call('POST', `/runs/${run.id}/fail`, { worker_id: 'worker-1', backoff_seconds: -1 })
    expectRefused(res, 400, 'backoff_seconds')
    expect((await f.call('GET', `/runs/${run.id}`)).body.status).toBe('running')
  })

  test('a status filter outside the enum', async () => {
    expectRefused(await f.call('GET', '/jobs?status=done'), 400, 'status')
    expectRefused(await f.call('GET', '/runs?status=pending'), 400, 'status')
  })

  test('malformed cursors and ids in the query', async () => {
    expectRefused(await f.call('GET', '/jobs?cursor=abc'), 400, 'cursor')
    expectRefused(await f.call('GET', '/runs?job_id=abc'), 400, 'job_id')
    expectRefused(await f.call('GET', '/jobs?limit=abc'), 400, 'limit')
  })

  test('an out-of-range limit names limit', async () => {
    for (const path of ['/jobs?limit=201', '/jobs?limit=0', '/runs?limit=500']) {
      expectRefused(await f.call('GET', path), 400, 'limit')
    }
  })

  test('scheduled_at that is not a date-time', async () => {
    for (const scheduled_at of ['tomorrow', '2030-13-45T99:00:00Z', 12345]) {
      expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), scheduled_at }), 400, 'scheduled_at')
    }
  })
})

describe('strings Postgres cannot store or index', () => {
  test('a NUL byte in a string or in a params key is 400 naming where it is', async () => {
    expectRefused(await f.call('POST', '/jobs', { kind: 'bad\u0000kind' }), 400, 'kind')
    expectRefused(
      await f.call('POST', '/jobs', { kind: uniqueKind(), params: { ok: ['x', 'y\u0000'] } }),
      400,
      'params',
    )
    const key = await f.call('POST', '/jobs', { kind: uniqueKind(), params: { 'k\u0000': 1 } })
    expectRefused(key, 400, 'params')
    const kind = uniqueKind('nul')
    await enqueueJob(f, { kind })
    const { run } = await claimOne(f, kind)
    const res = await f.call('POST', `/runs/${run.id}/fail`, { worker_id: 'worker-1', error: 'oops\u0000' })
    expectRefused(res, 400, 'error')
  })

  test('a NUL byte in a query filter is 400 naming the filter', async () => {
    expectRefused(await f.call('GET', '/jobs?kind=a%00b'), 400, 'kind')
    expectRefused(await f.call('GET', '/runs?worker_id=a%00b'), 400, 'worker_id')
  })

  test('a 201-char kind and a 513-char idempotency_key are 400', async () => {
    expectRefused(await f.call('POST', '/jobs', { kind: randomChars(201, 0x61, 0x7a) }), 400, 'kind')
    const key = randomChars(513, 0x21, 0x7e)
    expectRefused(await f.call('POST', '/jobs', { kind: uniqueKind(), idempotency_key: key }), 400, 'idempotency_key')
  })

  test('a key of 256 random astral-plane chars (512 UTF-16 units) is accepted and deduplicated', async () => {
    const kind = uniqueKind('astral')
    const key = randomChars(256, 0x10000, 0x10ffff)
    expect(key.length).toBe(512)
    const first = await f.call('POST', '/jobs', { kind, idempotency_key: key })
    expect(first.status).toBe(201)
    expect(first.body.idempotency_key).toBe(key)
    const again = await f.call('POST', '/jobs', { kind, idempotency_key: key })
    expect(again.status).toBe(409)
    expect(again.body.job.id).toBe(first.body.id)
  })

  test('the longest kind and key in random 3-byte chars are accepted (no index overflow)', async () => {
    const kind = randomChars(200, 0x4e00, 0x9fff)
    const key = randomChars(512, 0x4e00, 0x9fff)
    const res = await f.call('POST', '/jobs', { kind, idempotency_key: key })
    expect(res.status).toBe(201)
    expect(res.body.kind).toBe(kind)
  })
})

describe('request bodies', () => {
  test('a body over the limit is 413 JSON', async () => {
    const body = { kind: uniqueKind(), params: { blob: randomChars(3000, 0x61, 0x7a) } }
    expectRefused(await small.call('POST', '/jobs', body), 413)
    // Under the limit the same fixture accepts it.
    expect((await small.call('POST', '/jobs', { kind: uniqueKind(), params: { blob: 'x' } })).status).toBe(201)
  })

  test('a streamed body without Content-Length over the limit is 413 JSON', async () => {
    const chunk = new TextEncoder().encode(' '.repeat(1024))
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 4) controller.enqueue(chunk)
        else controller.close()
      },
    })
    const req = new Request('http://localhost/foreman/jobs', {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit)
    const res = await small.app.handle(req)
    expect(res.status).toBe(413)
    expect(typeof ((await res.json()) as any).error).toBe('string')
  })

  test('invalid JSON is 400', async () => {
    expectRefused(await f.call('POST', '/jobs', '{"kind": ', { 'content-type': 'application/json' }), 400, 'JSON')
    expectRefused(await f.call('POST', '/claim', 'kinds=a', { 'content-type': 'application/json' }), 400)
  })

  test('JSON sent as application/x-www-form-urlencoded (curl -d) is accepted', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const kind = uniqueKind('form')
    const created = await f.call('POST', '/jobs', JSON.stringify({ kind, priority: 3 }), form)
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ kind, priority: 3 })
    const claimed = await f.call('POST', '/claim', JSON.stringify({ kinds: [kind], worker_id: 'curl' }), form)
    expect(claimed.status).toBe(200)
    const done = await f.call('POST', `/jobs/${created.body.id}/complete`, JSON.stringify({ worker_id: 'curl' }), form)
    expect(done.status).toBe(200)
    expect(done.body.status).toBe('succeeded')
  })

  test('an empty body to POST /claim is 400 naming kinds', async () => {
    expectRefused(await f.call('POST', '/claim'), 400, 'kinds')
    expectRefused(await f.call('POST', '/claim', ''), 400, 'kinds')
    expectRefused(await f.call('POST', '/jobs/claim', '', { 'content-type': 'application/json' }), 400, 'kinds')
  })
})
