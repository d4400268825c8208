/**
 * ForemanClient against a real server: every method, the 409 and 204 answers that
 * are not errors, ForemanError on the rest, bearer auth, SSE as an async iterator,
 * retries of idempotent calls on 503 and on a refused connection. (Dependencies,
 * refs, debounce and retry cascade against the server: client-orchestration.test.ts.)
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient, ForemanError, parseSse } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })

describe('ForemanClient: jobs and runs', () => {
  test('ping, healthz and readyz', async () => {
    expect((await foreman.ping()).message).toMatch(/^Foreman v.+ is online!$/)
    expect(await foreman.healthz()).toEqual({ status: 'ok' })
    expect(await foreman.readyz()).toEqual({ status: 'ready' })
  })

  test('enqueue answers created; a duplicate key answers the existing job, not an error', async () => {
    const kind = uniqueKind('client-enqueue')
    const first = await foreman.enqueue({ kind, idempotency_key: 'k1', params: { n: 1 } })
    expect(first.created).toBe(true)
    expect(first.job).toMatchObject({ kind, status: 'pending', params: { n: 1 } })
    const again = await foreman.enqueue({ kind, idempotency_key: 'k1', params: { n: 2 } })
    expect(again).toEqual({ created: false, job: first.job })
  })

  test('get, list with filters and cursor, cancel', async () => {
    const kind = uniqueKind('client-list')
    const a = (await foreman.enqueue({ kind })).job
    const b = (await foreman.enqueue({ kind })).job
    expect((await foreman.getJob(a.id)).id).toBe(a.id)
    expect((await foreman.getJob(a.id, { includeRun: true })).current_run).toBeNull()
    expect((await foreman.listJobs({ kind })).map((j) => j.id)).toEqual([b.id, a.id])
    expect((await foreman.listJobs({ kind, cursor: b.id })).map((j) => j.id)).toEqual([a.id])
    expect((await foreman.listJobs({ kind, limit: 1 })).length).toBe(1)
    expect((await foreman.cancel(a.id)).status).toBe('cancelled')
    expect((await foreman.listJobs({ kind, status: 'cancelled' })).map((j) => j.id)).toEqual([a.id])
  })

  test('claim, heartbeat, complete; claim answers null when nothing is claimable', async () => {
    const kind = uniqueKind('client-claim')
    expect(await foreman.claim({ kinds: [kind], worker_id: 'w1' })).toBeNull()
    const { job } = await foreman.enqueue({ kind })
    const claimed = await foreman.claim({ kinds: [kind], worker_id: 'w1', lease_seconds: 30 })
    expect(claimed?.job.id).toBe(job.id)
    const runId = claimed!.run.id
    const beat = await foreman.heartbeat(runId, { worker_id: 'w1', progress_current: 2, progress_total: 5 })
    expect(beat).toMatchObject({ id: runId, progress_current: 2, progress_total: 5, cancel_requested: false })
    const done = await foreman.complete(runId, { worker_id: 'w1', result: { ok: true } })
    expect(done).toMatchObject({ status: 'succeeded', result: { ok: true } })
    expect((await foreman.getRun(runId)).status).toBe('succeeded')
    expect((await foreman.listJobRuns(job.id)).map((r) => r.id)).toEqual([runId])
    expect((await foreman.listRuns({ job_id: job.id, worker_id: 'w1' })).map((r) => r.id)).toEqual([runId])
  })

  test('claimMany takes a batch ([] when none); completeMany answers per run in input order', async () => {
    const kind = uniqueKind('client-batch')
    for (let i = 0; i < 3; i++) await foreman.enqueue({ kind, params: { i } })
    const batch = await foreman.claimMany({ kinds: [kind], worker_id: 'cb', max_jobs: 5 })
    expect(batch).toHaveLength(3)
    expect(await foreman.claimMany({ kinds: [kind], worker_id: 'cb', max_jobs: 5 })).toEqual([])
    const [a, b, c] = batch
    const results = await foreman.completeMany('cb', [
      { run_id: a!.run.id, result: 'a' },
      { run_id: b!.run.id },
      { run_id: 'run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D' },
    ])
    expect(results.map((r) => r.status)).toEqual([200, 200, 404])
    expect(results[0]?.job).toMatchObject({ id: a!.job.id, status: 'succeeded', result: 'a' })
    const again = await foreman.completeMany('other', [{ run_id: c!.run.id }, { run_id: a!.run.id }])
    expect(again.map((r) => r.status)).toEqual([409, 409])
    await expect(foreman.completeMany('cb', [])).rejects.toMatchObject({ status: 400 })
  })

  test('a long-poll claim picks up a job enqueued while it waits', async () => {
    const kind = uniqueKind('client-wait')
    const waiting = foreman.claim({ kinds: [kind], worker_id: 'w1', wait_seconds: 10 })
    await Bun.sleep(100)
    const { job } = await foreman.enqueue({ kind })
    expect((await waiting)?.job.id).toBe(job.id)
  })

  test('fail with an explicit backoff goes back to pending; the same call again is a ForemanError 409', async () => {
    const kind = uniqueKind('client-fail')
    await foreman.enqueue({ kind, max_attempts: 2 })
    const claimed = await foreman.claim({ kinds: [kind], worker_id: 'w1' })
    const body = { worker_id: 'w1', error: 'boom', retryable: true, backoff_seconds: 60 }
    const after = await foreman.fail(claimed!.run.id, body)
    expect(after).toMatchObject({ status: 'pending', attempt_count: 1 })
    const refused = await foreman.fail(claimed!.run.id, body).catch((e) => e)
    expect(refused).toBeInstanceOf(ForemanError)
    expect(refused.status).toBe(409)
  })

  test('expires_in_seconds and timeout_seconds come back as expires_at and timeout_seconds; error is null', async () => {
    const kind = uniqueKind('client-lifecycle')
    const before = Date.now()
    const { job } = await foreman.enqueue({ kind, expires_in_seconds: 600, timeout_seconds: 45 })
    expect(job).toMatchObject({ status: 'pending', timeout_seconds: 45, error: null })
    const expiresIn = (Date.parse(job.expires_at!) - before) / 1000
    expect(expiresIn).toBeGreaterThan(595)
    expect(expiresIn).toBeLessThan(605)
    expect(await foreman.getJob(job.id)).toMatchObject({ expires_at: job.expires_at, timeout_seconds: 45 })
    // Without them: both null, and no `dependencies` for a job that has none.
    const plain = (await foreman.enqueue({ kind })).job
    expect(plain).toMatchObject({ expires_at: null, timeout_seconds: null, error: null })
    expect((await foreman.getJob(plain.id)).dependencies).toBeUndefined()
  })

  test('waiting is a status listJobs filters by', async () => {
    const kind = uniqueKind('client-waiting')
    await foreman.enqueue({ kind })
    expect(await foreman.listJobs({ kind, status: 'waiting' })).toEqual([])
    const refused = await foreman.listJobs({ kind, status: 'sleeping' as never }).catch((e) => e)
    expect(refused).toMatchObject({ name: 'ForemanError', status: 400 })
  })

  test('enqueueGraph answers each item as enqueueMany does, and refs {} when no item has a ref', async () => {
    const kind = uniqueKind('client-graph-plain')
    const graph = await foreman.enqueueGraph([
      { kind, idempotency_key: 'g1' },
      { kind, timeout_seconds: 5 },
    ])
    expect(graph.refs).toEqual({})
    expect(graph.jobs.map((j) => j.created)).toEqual([true, true])
    expect(graph.jobs[1]?.job).toMatchObject({ kind, status: 'pending', timeout_seconds: 5 })
    const again = await foreman.enqueueMany([{ kind, idempotency_key: 'g1' }])
    expect(again).toEqual([{ created: false, job: graph.jobs[0]!.job }])
  })

  test('bad input and unknown ids throw ForemanError with the status and the server message', async () => {
    const bad = await foreman.enqueue({ kind: '' }).catch((e) => e)
    expect(bad).toBeInstanceOf(ForemanError)
    expect(bad.status).toBe(400)
    expect(bad.message).toStartWith('kind')
    const missing = await foreman.getJob('job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D').catch((e) => e)
    expect(missing).toMatchObject({ status: 404 })
  })
})

describe('ForemanClient: schedules, metrics, events', () => {
  test('schedule create, list, get, replace, fire, delete', async () => {
    const kind = uniqueKind('client-sched')
    const created = await foreman.createSchedule({ kind, cron_expr: '@hourly', params: { a: 1 } })
    expect(created).toMatchObject({ kind, cron_expr: '@hourly', enabled: true })
    expect((await foreman.listSchedules({ kind })).map((s) => s.id)).toEqual([created.id])
    expect((await foreman.getSchedule(created.id)).id).toBe(created.id)
    const replaced = await foreman.replaceSchedule(created.id, { kind, cron_expr: '@daily', enabled: false })
    expect(replaced).toMatchObject({ cron_expr: '@daily', enabled: false })
    const fired = await foreman.fireSchedule(created.id)
    expect(fired).toMatchObject({ kind, status: 'pending' })
    expect(await foreman.deleteSchedule(created.id)).toEqual({ id: created.id })
    expect(await foreman.getSchedule(created.id).catch((e) => e.status)).toBe(404)
  })

  test('metrics answers Prometheus text', async () => {
    expect(await foreman.metrics()).toContain('# TYPE')
  })

  test('events for one job: the job at once, each change, then the iterator ends', async () => {
    const kind = uniqueKind('client-events')
    const { job } = await foreman.enqueue({ kind })
    const seen: string[] = []
    const reading = (async () => {
      for await (const event of foreman.events({ jobId: job.id })) {
        if (event.type === 'job') seen.push(event.job.status)
        if (seen.length === 1) {
          const claimed = await foreman.claim({ kinds: [kind], worker_id: 'w1' })
          await foreman.complete(claimed!.run.id, { worker_id: 'w1' })
        }
      }
    })()
    await reading
    expect(seen[0]).toBe('pending')
    expect(seen.at(-1)).toBe('succeeded')
  })

  test('events for all jobs filter by kind, carry ids, and resume after lastEventId', async () => {
    const kind = uniqueKind('client-all')
    const before = new Date(Date.now() - 1000).toISOString()
    await foreman.enqueue({ kind: uniqueKind('client-other') })
    const first = (await foreman.enqueue({ kind })).job
    let lastId = ''
    for await (const event of foreman.events({ kind, since: before })) {
      expect(event.type === 'job' && event.job.id).toBe(first.id)
      lastId = event.id
      break
    }
    expect(lastId).not.toBe('')
    const second = (await foreman.enqueue({ kind })).job
    // Delivery is at least once: the resume may repeat the first job before the second.
    const resumed: string[] = []
    for await (const event of foreman.events({ kind, lastEventId: lastId })) {
      if (event.type === 'job') resumed.push(event.job.id)
      if (event.type === 'job' && event.job.id === second.id) break
    }
    expect(resumed.at(-1)).toBe(second.id)
    expect(new Set(resumed)).toEqual(new Set(resumed.filter((id) => id === first.id || id === second.id)))
  })

  test('events for an unknown job throw a ForemanError 404 before streaming', async () => {
    const stream = foreman.events({ jobId: 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D' })
    expect(await stream.next().catch((e) => e.status)).toBe(404)
  })
})

describe('ForemanClient: transport', () => {
  test('sends the bearer token; without it the call is a ForemanError 401', async () => {
    const secured = await startFixture({ apiTokens: ['client-token-1234'] })
    const base = secured.serve()
    const ok = new ForemanClient({ baseUrl: base, token: 'client-token-1234' })
    expect(await ok.listJobs()).toEqual([])
    const anonymous = await new ForemanClient({ baseUrl: base }).listJobs().catch((e) => e)
    expect(anonymous).toMatchObject({ name: 'ForemanError', status: 401 })
  })

  test('takes the origin or the /foreman base alike', () => {
    expect(new ForemanClient({ baseUrl: 'http://h:7011/' }).baseUrl).toBe('http://h:7011/foreman')
    expect(new ForemanClient({ baseUrl: 'http://h:7011/foreman' }).baseUrl).toBe('http://h:7011/foreman')
  })

  test('idempotent calls retry a 503; claim does not', async () => {
    let calls = 0
    const flaky = (async (input: RequestInfo | URL, init?: RequestInit) => {
      calls++
      if (calls === 1) return new Response('{"error":"draining"}', { status: 503 })
      return fetch(input, init)
    }) as typeof fetch
    const client = new ForemanClient({ baseUrl: f.serve(), fetch: flaky, retryDelayMs: 1 })
    expect(Array.isArray(await client.listJobs())).toBe(true)
    expect(calls).toBe(2)
    calls = 0
    const refused = await client.claim({ kinds: ['x'], worker_id: 'w' }).catch((e) => e)
    expect(refused).toMatchObject({ status: 503, message: 'draining' })
    expect(calls).toBe(1)
  })

  test('a refused connection is retried for idempotent calls, then thrown', async () => {
    let calls = 0
    const counting = ((input: RequestInfo | URL, init?: RequestInit) => {
      calls++
      return fetch(input, init)
    }) as typeof fetch
    const server = Bun.serve({ port: 0, fetch: () => new Response() })
    const port = server.port
    server.stop(true)
    const client = new ForemanClient({
      baseUrl: `http://127.0.0.1:${port}`,
      fetch: counting,
      retries: 2,
      retryDelayMs: 1,
    })
    expect(await client.ping().catch((e) => e)).toBeInstanceOf(Error)
    expect(calls).toBe(3)
  })

  test('a request that outlives timeoutMs is aborted with a TimeoutError', async () => {
    const slow = Bun.serve({ port: 0, fetch: () => Bun.sleep(2000).then(() => new Response('{}')) })
    const client = new ForemanClient({ baseUrl: `http://127.0.0.1:${slow.port}`, timeoutMs: 100, retries: 0 })
    expect(await client.ping().catch((e) => e.name)).toBe('TimeoutError')
    slow.stop(true)
  })

  test('a 200 with debounced: true answers the moved job, not created; retry cascade goes in the query', async () => {
    const { job } = await foreman.enqueue({ kind: uniqueKind('client-debounce-shape') })
    const urls: string[] = []
    // The server side of debounce is not needed to check how the client reads its answer.
    const stub = (async (input: RequestInfo | URL) => {
      urls.push(String(input))
      return Response.json({ ...job, debounced: true }, { status: 200 })
    }) as typeof fetch
    const client = new ForemanClient({ baseUrl: f.serve(), fetch: stub })
    const moved = await client.enqueue({ kind: job.kind, idempotency_key: 'k', debounce_seconds: 5 })
    expect(moved).toEqual({ created: false, debounced: true, job })
    await client.retry(job.id, { cascade: true })
    await client.retry(job.id)
    expect(urls.slice(1).map((u) => new URL(u).search)).toEqual(['?cascade=true', ''])
  })

  test('parseSse handles CRLF, comments, multi-line data and sticky ids', async () => {
    const text = 'retry: 10\r\n\r\n: hi\nid: 7\nevent: job\ndata: a\ndata: b\n\ndata: c\n\n'
    const out = []
    for await (const m of parseSse(new Response(text).body!)) out.push(m)
    expect(out).toEqual([
      { event: 'job', data: 'a\nb', id: '7' },
      { event: 'message', data: 'c', id: '7' },
    ])
  })
})
