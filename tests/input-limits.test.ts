/**
 * Input that must be refused at the edge with a JSON 4xx, never a 500, an empty
 * answer or a crash: JSON nested deeper than the limit, strings Postgres cannot
 * store, bodies over the size limit however they are framed, and requests no
 * route serves.
 */
import { describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { MAX_JSON_DEPTH } from '../src/http/json-walk'
import { listen } from '../src/server'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { type Answer, startFixture } from './support/harness'

const f = await startFixture()
// Room for a million-deep array (2 MB of brackets), so the depth check, not the size limit, refuses it.
const roomy = await startFixture({ maxBodyBytes: 8 * 1024 * 1024 })

/** A refusal: the status, a JSON content type, an `error` string naming `field` when given. */
function expectRefused(res: Answer, status: number, field?: string) {
  expect({ status: res.status, error: typeof res.body?.error }).toEqual({ status, error: 'string' })
  expect(res.headers.get('content-type') ?? '').toContain('application/json')
  if (field) expect(res.body.error).toStartWith(`${field}:`)
}

/** JSON text of an array nested `depth` deep. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`
/** JSON text of objects nested `depth` deep: {"a":{"a":…{}}}. */
const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`

const post = (fixture: typeof f, path: string, text: string) =>
  fixture.call('POST', path, text, { 'content-type': 'application/json' })

describe('deeply nested JSON is 400 naming the field', () => {
  for (const depth of [20_000, 100_000, 1_000_000]) {
    test(`params nested ${depth.toLocaleString('en')} deep on POST /jobs`, async () => {
      expectRefused(await post(roomy, '/jobs', `{"kind":"${uniqueKind()}","params":${nested(depth)}}`), 400, 'params')
    })

    test(`result nested ${depth.toLocaleString('en')} deep on complete (by run and by job)`, async () => {
      const job = await enqueueJob(roomy)
      const { run } = await claimOne(roomy, job.kind)
      const body = `{"worker_id":"worker-1","result":${nested(depth)}}`
      expectRefused(await post(roomy, `/runs/${run.id}/complete`, body), 400, 'result')
      expectRefused(await post(roomy, `/jobs/${job.id}/complete`, body), 400, 'result')
      expect((await roomy.call('GET', `/runs/${run.id}`)).body.status).toBe('running')
    })
  }

  test('objects nested 20,000 deep are refused like arrays', async () => {
    expectRefused(await post(f, '/jobs', `{"kind":"k","params":${nestedObjects(20_000)}}`), 400, 'params')
  })

  test('every route that stores caller JSON names the item', async () => {
    const deep = nested(5_000)
    expectRefused(
      await post(f, '/jobs/batch', `{"jobs":[{"kind":"a"},{"kind":"b"},{"kind":"c"},{"kind":"d","params":${deep}}]}`),
      400,
      'jobs.3.params',
    )
    const job = await enqueueJob(f)
    const { run } = await claimOne(f, job.kind)
    expectRefused(
      await post(f, '/runs/complete', `{"worker_id":"worker-1","runs":[{"run_id":"${run.id}","result":${deep}}]}`),
      400,
      'runs.0.result',
    )
    expectRefused(await post(f, `/runs/${run.id}/fail`, `{"worker_id":"worker-1","result":${deep}}`), 400, 'result')
    expectRefused(
      await post(f, `/runs/${run.id}/heartbeat`, `{"worker_id":"worker-1","progress_message":${deep}}`),
      400,
      'progress_message',
    )
    const schedule = `{"kind":"k","cron_expr":"@hourly","params":${deep}}`
    expectRefused(await post(f, '/schedules', schedule), 400, 'params')
    expect((await f.call('GET', `/runs/${run.id}`)).body.status).toBe('running')
  })

  test(`params exactly at the limit (${MAX_JSON_DEPTH} levels in the body) are stored and read back`, async () => {
    // The body object is level 1 and params level 2, so params may nest MAX_JSON_DEPTH - 1 levels.
    const params = JSON.parse(nested(MAX_JSON_DEPTH - 1))
    const job = await enqueueJob(f, { params })
    expect(job.params).toEqual(params)
    const tooDeep = await f.call('POST', '/jobs', { kind: uniqueKind(), params: [params] })
    expectRefused(tooDeep, 400, 'params')
    expect(tooDeep.body.error).toContain(String(MAX_JSON_DEPTH))
  })

  test('a schedule exactly at the limit fires a job with the same params', async () => {
    const params = { a: JSON.parse(nested(MAX_JSON_DEPTH - 2)) }
    const created = await f.call('POST', '/schedules', { kind: uniqueKind(), cron_expr: '@hourly', params })
    expect(created.status).toBe(201)
    const fired = await f.call('POST', `/schedules/${created.body.id}/fire`)
    expect(fired.status).toBe(200)
    expect(fired.body.params).toEqual(params)
  })
})

describe('strings Postgres cannot store faithfully are 400 naming where they are', () => {
  test('a lone surrogate in params, a params key, result or a text field', async () => {
    expectRefused(await post(f, '/jobs', `{"kind":"k","params":{"s":"\\ud800"}}`), 400, 'params.s')
    expectRefused(await post(f, '/jobs', `{"kind":"k","params":{"\\udc00":1}}`), 400, 'params')
    expectRefused(await post(f, '/jobs', `{"kind":"bad\\udfffkind"}`), 400, 'kind')
    const job = await enqueueJob(f)
    const { run } = await claimOne(f, job.kind)
    expectRefused(
      await post(f, `/runs/${run.id}/complete`, `{"worker_id":"worker-1","result":["\\ud83d"]}`),
      400,
      'result.0',
    )
    expectRefused(await post(f, `/runs/${run.id}/fail`, `{"worker_id":"worker-1","error":"x\\ude00"}`), 400, 'error')
  })

  test('a well-formed surrogate pair (an emoji) is stored as sent', async () => {
    const job = await enqueueJob(f, { kind: uniqueKind('😀'), params: { '😀': '😀' } })
    expect(job.params).toEqual({ '😀': '😀' })
  })

  test('a NUL past the depth a recursive check survives is still a JSON 400, not "not valid JSON"', async () => {
    const text = `{"kind":"k","params":${'['.repeat(100_000)}"\\u0000"${']'.repeat(100_000)}}`
    const res = await post(roomy, '/jobs', text)
    expectRefused(res, 400, 'params')
    expect(res.body.error).not.toContain('JSON')
  })
})

describe('Postgres data errors are 400 without SQL text', () => {
  test('stack depth limit exceeded (54001) and other client SQLSTATEs map to 400', async () => {
    const { toErrorResponse } = await import('../src/errors')
    for (const code of ['54001', '22P02', '22003', '22021', '54000']) {
      const error = Object.assign(new Error('stack depth limit exceeded in select secret from t'), { code })
      const { status, body } = toErrorResponse(error)
      expect({ code, status }).toEqual({ code, status: 400 })
      expect(body.error).not.toContain('secret')
    }
  })
})

describe('bodies over the size limit are 413 JSON however they arrive (real socket, served as in production)', async () => {
  const small = await startFixture({ maxBodyBytes: 64 * 1024 })
  const server = listen(small.app, { ...small.deps.config, port: 0 })
  const base = `http://127.0.0.1:${server.port}/foreman`
  const MB = 1024 * 1024

  /** A streamed body of `mb` megabytes of spaces: chunked, no Content-Length. */
  const streamed = (mb: number) => {
    const chunk = new Uint8Array(MB).fill(0x20)
    let sent = 0
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < mb) controller.enqueue(chunk)
        else controller.close()
      },
    })
  }

  const expect413 = async (res: Response) => {
    expect(res.status).toBe(413)
    expect(res.headers.get('content-type') ?? '').toContain('application/json')
    expect(((await res.json()) as { error: string }).error).toContain('larger than')
  }

  test('a 20 MB body with a Content-Length', async () => {
    await expect413(await fetch(`${base}/jobs`, { method: 'POST', body: new Uint8Array(20 * MB).fill(0x20) }))
  })

  test('a 20 MB chunked body without a Content-Length', async () => {
    const init = { method: 'POST', body: streamed(20), duplex: 'half' } as RequestInit
    await expect413(await fetch(`${base}/jobs`, init))
  })

  test('a Content-Length of 10 GB with a short body', async () => {
    const answer = await rawRequest(
      server.port ?? 0,
      'POST /foreman/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n{"kind":"k"}',
    )
    expect(answer).toStartWith('HTTP/1.1 413')
    expect(answer).toContain('"error"')
  })

  test('a body just under the limit is still served', async () => {
    const res = await fetch(`${base}/jobs`, {
      method: 'POST',
      body: JSON.stringify({ kind: uniqueKind(), params: { pad: 'x'.repeat(60 * 1024) } }),
    })
    expect(res.status).toBe(201)
  })
})

/** Sends raw bytes and answers what came back before the server closed or 5 s passed. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let answer = ''
    const done = () => {
      socket.destroy()
      resolve(answer)
    }
    socket.on('data', (data) => {
      answer += data.toString()
      if (answer.includes('\r\n\r\n') && /"\}?\s*$/.test(answer)) done()
    })
    socket.on('close', done)
    socket.on('error', done)
    setTimeout(done, 5000)
  })
}

describe('every other refusal is JSON with an error string', () => {
  const raw = async (method: string, path: string, init: RequestInit = {}): Promise<Answer> => {
    const res = await f.app.handle(new Request(`http://localhost${path}`, { method, ...init }))
    const text = await res.text()
    let body: unknown = null
    try {
      body = JSON.parse(text)
    } catch {
      body = { notJson: text }
    }
    return { status: res.status, body, headers: res.headers }
  }

  test('routes and methods that do not exist', async () => {
    expectRefused(await raw('GET', '/'), 404)
    expectRefused(await raw('GET', '/foreman'), 404)
    expectRefused(await raw('PATCH', '/foreman/jobs'), 404)
    expectRefused(await raw('OPTIONS', '/foreman/jobs'), 404)
    expectRefused(await raw('PUT', '/foreman/ping'), 404)
  })

  test('invalid percent-encoding in the query or the path', async () => {
    for (const path of ['/foreman/jobs?kind=%zz', '/foreman/jobs?kind=%E0%A4%A', '/foreman/runs?worker_id=%ff']) {
      const res = await raw('GET', path)
      expect(res.status).toBeGreaterThanOrEqual(400)
      expect(res.status).toBeLessThan(500)
      expectRefused(res, res.status)
    }
    const res = await raw('GET', '/foreman/jobs/%zz')
    expect(res.status).toBeGreaterThanOrEqual(400)
    expect(res.status).toBeLessThan(500)
    expectRefused(res, res.status)
  })

  test('bodies that are not a JSON object', async () => {
    const json = { 'content-type': 'application/json' }
    expectRefused(await raw('POST', '/foreman/jobs', { body: '[1,2]', headers: json }), 400)
    expectRefused(await raw('POST', '/foreman/jobs', { body: 'null', headers: json }), 400)
    expectRefused(await raw('POST', '/foreman/jobs', { body: '"kind"', headers: json }), 400)
    const multipart = { 'content-type': 'multipart/form-data; boundary=x' }
    expectRefused(await raw('POST', '/foreman/jobs', { body: '--x\r\n\r\nk\r\n--x--', headers: multipart }), 400)
    expectRefused(await raw('POST', '/foreman/jobs', { body: new Uint8Array([0xff, 0xfe, 0x00]) }), 400)
  })

  test('HEAD on a GET route answers without a body and a non-5xx status', async () => {
    const res = await f.app.handle(new Request('http://localhost/foreman/jobs', { method: 'HEAD' }))
    expect(res.status).toBeLessThan(500)
  })
})
