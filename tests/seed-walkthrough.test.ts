/**
 * The seed README's curl walkthrough, run verbatim with curl against a real
 * server. Only `localhost:7011` and `<id>` are substituted; the heartbeat,
 * complete and fail calls keep the seed's `-d` without a Content-Type header
 * (curl then labels the JSON body application/x-www-form-urlencoded). Each
 * command gets `-sS -w '\n%{http_code}'` appended, which only changes what curl
 * prints, so the test can read the status. The SSE command is not covered here.
 */
import { describe, expect, test } from 'bun:test'
import { secondsUntil } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const host = new URL(f.serve()).host

/** The seed's commands, copied from its README. */
const SEED = {
  ping: `curl localhost:7011/foreman/ping`,
  enqueue: String.raw`curl -X POST localhost:7011/foreman/jobs \
-H 'Content-Type: application/json' \
-d '{"kind":"send-email","params":{"to":"x@y.com"},"max_attempts":3,"idempotency_key":"email-42"}'`,
  claim: String.raw`curl -X POST localhost:7011/foreman/claim \
-H 'Content-Type: application/json' \
-d '{"kinds":["send-email"],"worker_id":"worker-1","lease_seconds":60}'`,
  heartbeat: String.raw`curl -X POST localhost:7011/foreman/jobs/<id>/heartbeat \
-d '{"worker_id":"worker-1","progress_current":12,"progress_total":100,"lease_seconds":60}'`,
  complete: String.raw`curl -X POST localhost:7011/foreman/jobs/<id>/complete \
-d '{"worker_id":"worker-1","result":{"sent":true}}'`,
  fail: String.raw`curl -X POST localhost:7011/foreman/jobs/<id>/fail \
-d '{"worker_id":"worker-1","error":"smtp timeout","retryable":true,"backoff_seconds":30}'`,
  cancel: `curl -X POST localhost:7011/foreman/jobs/<id>/cancel`,
  runs: `curl localhost:7011/foreman/jobs/<id>/runs`,
  events: `curl -N localhost:7011/foreman/events/<id>`,
}

/** Runs one seed command through bash and curl; answers the status and parsed body. */
async function seed(command: string, id = ''): Promise<{ status: number; body: any }> {
  const line = `${command.replaceAll('localhost:7011', host).replaceAll('<id>', id)} -sS -w '\\n%{http_code}'`
  const proc = Bun.spawn(['bash', '-c', line], { stdout: 'pipe', stderr: 'pipe' })
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  expect({ code, err }).toEqual({ code: 0, err: '' })
  const cut = out.lastIndexOf('\n')
  const text = out.slice(0, cut)
  return { status: Number(out.slice(cut + 1)), body: text ? JSON.parse(text) : null }
}

const ULID_JOB = /^job_[0-9A-HJKMNP-TV-Z]{26}$/
let jobId = ''

describe('the seed README walkthrough, verbatim with curl', () => {
  test('ping answers the version banner', async () => {
    const res = await seed(SEED.ping)
    expect(res.status).toBe(200)
    expect(res.body.message).toMatch(/^Foreman v\d+\.\d+\.\d+ is online!$/)
  })

  test('enqueue answers 201 with the pending job as the seed describes it', async () => {
    const res = await seed(SEED.enqueue)
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      kind: 'send-email',
      params: { to: 'x@y.com' },
      max_attempts: 3,
      idempotency_key: 'email-42',
      status: 'pending',
      attempt_count: 0,
      queue: 'default',
    })
    expect(res.body.id).toMatch(ULID_JOB)
    jobId = res.body.id
  })

  test('claim answers 200 with the job (active, attempt 1) and a running run leased for 60 s', async () => {
    const res = await seed(SEED.claim)
    expect(res.status).toBe(200)
    expect(res.body.job).toMatchObject({ id: jobId, status: 'active', attempt_count: 1 })
    expect(res.body.run).toMatchObject({ job_id: jobId, attempt: 1, worker_id: 'worker-1', status: 'running' })
    const lease = secondsUntil(res.body.run.lease_expires_at)
    expect(lease).toBeGreaterThan(50)
    expect(lease).toBeLessThanOrEqual(61)
  })

  test('heartbeat (JSON sent with -d and no Content-Type) answers 200 and stores the progress', async () => {
    const res = await seed(SEED.heartbeat, jobId)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      job_id: jobId,
      status: 'running',
      progress_current: 12,
      progress_total: 100,
      cancel_requested: false,
    })
    const [run] = await f.sql`
      select progress_current, progress_total from ${f.sql(f.tables.runs)}
      where job_id = ${jobId} and status = 'running'`
    expect(run).toEqual({ progress_current: 12, progress_total: 100 })
  })

  test('fail, retryable with backoff_seconds 30, returns the job to pending about 30 s from now', async () => {
    const res = await seed(SEED.fail, jobId)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: jobId, status: 'pending', attempt_count: 1, completed_at: null })
    const delay = secondsUntil(res.body.scheduled_at)
    expect(delay).toBeGreaterThan(25)
    expect(delay).toBeLessThanOrEqual(31)
  })

  test('the retry is not claimable before its backoff ends, and is claimable (attempt 2) once due', async () => {
    expect((await seed(SEED.claim)).status).toBe(204)
    await f.sql`update ${f.sql(f.tables.jobs)} set scheduled_at = now() where id = ${jobId}`
    const res = await seed(SEED.claim)
    expect(res.status).toBe(200)
    expect(res.body.job).toMatchObject({ id: jobId, status: 'active', attempt_count: 2 })
    expect(res.body.run).toMatchObject({ attempt: 2, worker_id: 'worker-1', status: 'running' })
  })

  test('complete answers the job, succeeded with result {"sent":true}', async () => {
    const res = await seed(SEED.complete, jobId)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: jobId, status: 'succeeded', result: { sent: true } })
    expect(res.body.completed_at).toEqual(expect.any(String))
  })

  test('runs lists attempt 1 failed with "smtp timeout" and attempt 2 succeeded, oldest first', async () => {
    const res = await seed(SEED.runs, jobId)
    expect(res.status).toBe(200)
    expect(res.body.length).toBe(2)
    expect(res.body[0]).toMatchObject({ attempt: 1, worker_id: 'worker-1', status: 'failed', error: 'smtp timeout' })
    expect(res.body[1]).toMatchObject({
      attempt: 2,
      worker_id: 'worker-1',
      status: 'succeeded',
      result: { sent: true },
    })
    for (const run of res.body) {
      expect(run.job_id).toBe(jobId)
      expect(run.finished_at).toEqual(expect.any(String))
      expect(run.lease_expires_at ?? null).toBeNull()
    }
  })

  test('cancel on a pending job answers it cancelled', async () => {
    const other = await f.call('POST', '/jobs', { kind: 'send-email', params: { to: 'z@y.com' } })
    expect(other.status).toBe(201)
    const res = await seed(SEED.cancel, other.body.id)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: other.body.id, status: 'cancelled' })
    expect(res.body.completed_at).toEqual(expect.any(String))
  })

  test('cancel on the finished job leaves it succeeded', async () => {
    const res = await seed(SEED.cancel, jobId)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: jobId, status: 'succeeded', result: { sent: true } })
  })

  test('enqueueing the same kind and idempotency_key again answers 409 with the existing job', async () => {
    const res = await seed(SEED.enqueue)
    expect(res.status).toBe(409)
    expect(typeof res.body.error).toBe('string')
    expect(res.body.job).toMatchObject({ id: jobId, idempotency_key: 'email-42', status: 'succeeded' })
    const [row] = await f.sql`
      select count(*)::int as n from ${f.sql(f.tables.jobs)}
      where kind = 'send-email' and idempotency_key = 'email-42'`
    expect(row?.n).toBe(1)
  })

  test('stream state (curl -N) prints the job and ends, because the job is terminal', async () => {
    const line = `${SEED.events.replaceAll('localhost:7011', host).replaceAll('<id>', jobId)} -sS`
    const proc = Bun.spawn(['bash', '-c', line], { stdout: 'pipe', stderr: 'pipe' })
    // curl exits by itself only if the server ends the stream after the terminal event.
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited])
    expect(code).toBe(0)
    const frames = out.split('\n\n').filter((frame) => frame.includes('event: job'))
    expect(frames.length).toBe(1)
    const data = JSON.parse(/^data: (.*)$/m.exec(frames[0] ?? '')?.[1] ?? 'null')
    expect(data).toMatchObject({ id: jobId, status: 'succeeded', current_run: null })
  })
})
