/**
 * While the database cannot be reached, requests answer 503 `database unavailable`
 * with Retry-After (not 500: it is not a bug in Foreman, and clients retry a 503),
 * and never say where the database is. The client rides out such 503s on calls
 * that are safe to repeat, waiting as Retry-After asks when its timeout allows.
 */
import { describe, expect, test } from 'bun:test'
import pino from 'pino'
import { buildApp } from '../src/app'
import { ForemanClient } from '../src/client'
import { createSql } from '../src/db/client'
import { toErrorResponse } from '../src/errors'
import { startFixture } from './support/harness'

const f = await startFixture()
const JOB = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'
const RUN = 'run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

/** A port nothing listens on: bound by us, then released. */
function closedPort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}

describe('the server during a database outage', () => {
  test('every kind of request answers 503 database unavailable with Retry-After, naming no host or port', async () => {
    const port = closedPort()
    const role = 'outage_secret_role'
    const sql = createSql({ url: `postgres://${role}:hunter2@127.0.0.1:${port}/outage_db`, max: 2 })
    const lines: Record<string, unknown>[] = []
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
    const app = buildApp({ ...f.deps, sql, readSql: sql, log })
    try {
      for (const [method, path, body] of [
        ['POST', '/jobs', { kind: 'outage' }],
        ['POST', '/jobs/batch', { jobs: [{ kind: 'outage' }] }],
        ['GET', '/jobs', undefined],
        ['GET', `/jobs/${JOB}`, undefined],
        ['POST', '/claim', { kinds: ['outage'], worker_id: 'w' }],
        ['POST', `/runs/${RUN}/heartbeat`, { worker_id: 'w' }],
        ['POST', `/runs/${RUN}/complete`, { worker_id: 'w' }],
        ['GET', '/schedules', undefined],
      ] as const) {
        const init: RequestInit = { method }
        if (body) init.body = JSON.stringify(body)
        const res = await app.handle(new Request(`http://localhost/foreman${path}`, init))
        const text = await res.text()
        expect({ method, path, status: res.status, body: JSON.parse(text) }).toEqual({
          method,
          path,
          status: 503,
          body: { error: 'database unavailable' },
        })
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
        for (const secret of ['127.0.0.1', String(port), role, 'hunter2', 'outage_db'])
          expect(text).not.toContain(secret)
      }
      await Bun.sleep(20)
      // The detail (which host, which error) is in the log, as a warning, not an error.
      const logged = lines.filter((l) => l.msg === 'request failed')
      expect(logged.length).toBeGreaterThan(0)
      expect(logged.every((l) => l.level === 40)).toBe(true)
      expect(JSON.stringify(logged)).toContain(String(port))
    } finally {
      await sql.end({ timeout: 1 })
    }
  })

  test('connection-level errors by code and SQLSTATE map to 503; others stay as they were', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'CONNECTION_CLOSED',
      'CONNECTION_ENDED',
      'CONNECT_TIMEOUT',
      'CONNECTION_DESTROYED',
      '08006',
      '08001',
      '57P01',
      '57P02',
      '57P03',
    ]) {
      const error = Object.assign(new Error(`write ${code} 10.0.0.7:5432`), { code })
      const answer = toErrorResponse(error)
      expect({ code, status: answer.status, body: answer.body }).toEqual({
        code,
        status: 503,
        body: { error: 'database unavailable' },
      })
      expect(Number(answer.headers?.['retry-after'])).toBeGreaterThan(0)
    }
    expect(toErrorResponse(Object.assign(new Error('x'), { code: '23505' })).status).toBe(500)
    expect(toErrorResponse(Object.assign(new Error('x'), { code: '22P02' })).status).toBe(400)
    expect(toErrorResponse(new Error('boom')).status).toBe(500)
  })
})

describe('the client and a 503 with Retry-After', () => {
  /** A fetch that answers 503 (Retry-After: `after`) `times` times, then 200 `[]`; counts calls. */
  function unavailable(times: number, after: string) {
    const calls: number[] = []
    const fetch = (async () => {
      calls.push(Date.now())
      if (calls.length <= times) {
        return new Response('{"error":"database unavailable"}', { status: 503, headers: { 'retry-after': after } })
      }
      return Response.json([])
    }) as unknown as typeof globalThis.fetch
    return { fetch, calls }
  }

  test('an idempotent call waits as Retry-After asks, then retries', async () => {
    const { fetch, calls } = unavailable(1, '1')
    const client = new ForemanClient({ baseUrl: 'http://foreman.invalid', fetch, retryDelayMs: 1 })
    expect(await client.listJobs()).toEqual([])
    expect(calls.length).toBe(2)
    expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(900)
  })

  test('a Retry-After past the timeout is not waited out: the 503 is thrown at once', async () => {
    const { fetch, calls } = unavailable(5, '120')
    const client = new ForemanClient({ baseUrl: 'http://foreman.invalid', fetch, retryDelayMs: 1, timeoutMs: 2000 })
    const began = Date.now()
    const error = await client.listJobs().catch((e) => e)
    expect(error).toMatchObject({ name: 'ForemanError', status: 503, message: 'database unavailable' })
    expect(calls.length).toBe(1)
    expect(Date.now() - began).toBeLessThan(10_000)
  })

  test('a call that is not safe to repeat (complete) is not retried on 503', async () => {
    const { fetch, calls } = unavailable(1, '1')
    const client = new ForemanClient({ baseUrl: 'http://foreman.invalid', fetch, retryDelayMs: 1 })
    const error = await client.complete(RUN, { worker_id: 'w' }).catch((e) => e)
    expect(error).toMatchObject({ status: 503 })
    expect(calls.length).toBe(1)
  })
})
