/** The producer side: enqueue, idempotency, reads, lists, cancel, and what claim picks. */
import { describe, expect, test } from 'bun:test'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

const JOB_ID = /^job_[0-9A-HJKMNP-TV-Z]{26}$/
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
const WELL_FORMED_UNKNOWN = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

const claim = (body: Record<string, unknown>) => f.call('POST', '/claim', { worker_id: 'w-jobs', ...body })
const ids = (rows: { id: string }[]) => rows.map((r) => r.id)

describe('POST /jobs (enqueue)', () => {
  test('applies the documented defaults and answers 201 with a pending job', async () => {
    const kind = uniqueKind('defaults')
    const res = await f.call('POST', '/jobs', { kind })
    expect(res.status).toBe(201)
    const job = res.body
    expect(job.id).toMatch(JOB_ID)
    expect(job).toMatchObject({
      kind,
      queue: 'default',
      service: '',
      params: {},
      priority: 0,
      max_attempts: 1,
      status: 'pending',
      cancel_requested: false,
      attempt_count: 0,
    })
    expect(job.idempotency_key ?? null).toBeNull()
    expect(job.scheduled_at ?? null).toBeNull()
    expect(job.result ?? null).toBeNull()
    expect(job.started_at ?? null).toBeNull()
    expect(job.completed_at ?? null).toBeNull()
    expect(job.enqueued_at).toMatch(ISO)
    expect(job.updated_at).toMatch(ISO)
  })

  test('stores every given field and GET answers the same job', async () => {
    const kind = uniqueKind('fields')
    const body = {
      kind,
      queue: 'q-fields',
      service: 'billing',
      idempotency_key: `key-${kind}`,
      params: { nested: { list: [1, 'two', null, true] }, n: 3.5 },
      priority: 7,
      max_attempts: 4,
      scheduled_at: '2030-01-02T05:04:05+02:00',
    }
    const created = await f.call('POST', '/jobs', body)
    expect(created.status).toBe(201)
    const { scheduled_at, ...rest } = body
    expect(created.body).toMatchObject(rest)
    expect(Date.parse(created.body.scheduled_at)).toBe(Date.parse(scheduled_at))
    expect(created.body.scheduled_at).toMatch(ISO)
    const got = await f.call('GET', `/jobs/${created.body.id}`)
    expect(got.status).toBe(200)
    expect(got.body).toEqual(created.body)
  })

  test('scheduled_at comes back as the same instant for any four-digit year', async () => {
    for (const stamp of ['0050-06-01T00:00:00.000Z', '1999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.000Z']) {
      const job = await enqueueJob(f, { scheduled_at: stamp })
      expect(job.scheduled_at).toBe(stamp)
    }
  })

  test('ids of consecutive enqueues are distinct and sort in creation order', async () => {
    const a = await enqueueJob(f)
    const b = await enqueueJob(f)
    expect(a.id).not.toBe(b.id)
    expect(a.id < b.id).toBe(true)
  })
})

describe('idempotency', () => {
  test('a second enqueue with the same kind and key answers 409 with the existing job', async () => {
    const kind = uniqueKind('idem')
    const first = await f.call('POST', '/jobs', { kind, idempotency_key: 'k1', params: { v: 1 } })
    expect(first.status).toBe(201)
    const second = await f.call('POST', '/jobs', { kind, idempotency_key: 'k1', params: { v: 2 } })
    expect(second.status).toBe(409)
    expect(typeof second.body.error).toBe('string')
    expect(second.body.job).toEqual(first.body)
    const listed = await f.call('GET', `/jobs?kind=${kind}`)
    expect(ids(listed.body)).toEqual([first.body.id])
  })

  test('the same key under a different kind is a different job (201)', async () => {
    const key = `shared-${uniqueKind()}`
    const a = await f.call('POST', '/jobs', { kind: uniqueKind('idem-a'), idempotency_key: key })
    const b = await f.call('POST', '/jobs', { kind: uniqueKind('idem-b'), idempotency_key: key })
    expect(a.status).toBe(201)
    expect(b.status).toBe(201)
    expect(b.body.id).not.toBe(a.body.id)
  })

  test('concurrent identical enqueues create exactly one job', async () => {
    const kind = uniqueKind('idem-race')
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => f.call('POST', '/jobs', { kind, idempotency_key: 'race' })),
    )
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1)
    expect(answers.filter((a) => a.status === 409)).toHaveLength(9)
    const winner = answers.find((a) => a.status === 201)!.body.id
    for (const a of answers) expect(a.status === 201 ? a.body.id : a.body.job.id).toBe(winner)
  })
})

describe('GET /jobs/:id', () => {
  test('answers 404 for a well-formed id that matches nothing and 400 for a malformed one', async () => {
    const missing = await f.call('GET', `/jobs/${WELL_FORMED_UNKNOWN}`)
    expect(missing.status).toBe(404)
    expect(typeof missing.body.error).toBe('string')
    const malformed = await f.call('GET', '/jobs/not-a-job-id')
    expect(malformed.status).toBe(400)
    expect(malformed.body.error).toContain('id')
  })

  test('include=current_run is null without a running run and the running run once claimed', async () => {
    const kind = uniqueKind('current')
    const job = await enqueueJob(f, { kind })
    const before = await f.call('GET', `/jobs/${job.id}?include=current_run`)
    expect(before.status).toBe(200)
    expect(before.body.current_run).toBeNull()
    const { run } = await claimOne(f, kind)
    const after = await f.call('GET', `/jobs/${job.id}?include=current_run`)
    expect(after.body.status).toBe('active')
    expect(after.body.current_run).toEqual(run)
    const listed = await f.call('GET', `/jobs?kind=${kind}&include=current_run`)
    expect(listed.body[0].current_run).toEqual(run)
  })
})

describe('GET /jobs (list)', () => {
  test('answers newest first', async () => {
    const kind = uniqueKind('order')
    const made = [await enqueueJob(f, { kind }), await enqueueJob(f, { kind }), await enqueueJob(f, { kind })]
    const res = await f.call('GET', `/jobs?kind=${kind}`)
    expect(res.status).toBe(200)
    expect(ids(res.body)).toEqual(ids(made).reverse())
  })

  test('filters by status, kind, service and queue', async () => {
    const kind = uniqueKind('filters')
    const other = uniqueKind('filters-other')
    const service = `svc-${kind}`
    const queue = `queue-${kind}`
    const plain = await enqueueJob(f, { kind })
    const withService = await enqueueJob(f, { kind, service })
    const inQueue = await enqueueJob(f, { kind, queue })
    const elsewhere = await enqueueJob(f, { kind: other, service, queue })
    await f.call('POST', `/jobs/${plain.id}/cancel`)

    const byKind = await f.call('GET', `/jobs?kind=${kind}`)
    expect(ids(byKind.body).sort()).toEqual([plain.id, withService.id, inQueue.id].sort())
    const byStatus = await f.call('GET', `/jobs?kind=${kind}&status=cancelled`)
    expect(ids(byStatus.body)).toEqual([plain.id])
    const pending = await f.call('GET', `/jobs?kind=${kind}&status=pending`)
    expect(ids(pending.body)).toEqual([inQueue.id, withService.id])
    const byService = await f.call('GET', `/jobs?service=${service}`)
    expect(ids(byService.body)).toEqual([elsewhere.id, withService.id])
    const byQueue = await f.call('GET', `/jobs?queue=${queue}&kind=${kind}`)
    expect(ids(byQueue.body)).toEqual([inQueue.id])
  })

  test('limit caps the page and cursor pages through every job exactly once', async () => {
    const kind = uniqueKind('paging')
    const made: string[] = []
    for (let i = 0; i < 7; i++) made.push((await enqueueJob(f, { kind })).id)
    const seen: string[] = []
    const sizes: number[] = []
    let cursor = ''
    for (let page = 0; page < 5; page++) {
      const res = await f.call('GET', `/jobs?kind=${kind}&limit=3${cursor ? `&cursor=${cursor}` : ''}`)
      expect(res.status).toBe(200)
      sizes.push(res.body.length)
      if (res.body.length === 0) break
      seen.push(...ids(res.body))
      cursor = res.body[res.body.length - 1].id
    }
    expect(sizes).toEqual([3, 3, 1, 0])
    expect(seen).toEqual([...made].reverse())
    expect(new Set(seen).size).toBe(7)
  })

  test('limit above 200 is refused with 400 (200 itself is fine)', async () => {
    expect((await f.call('GET', '/jobs?limit=201')).status).toBe(400)
    expect((await f.call('GET', '/jobs?limit=200')).status).toBe(200)
  })
})

describe('GET /jobs/:id/runs', () => {
  test('is an empty list for a job never claimed and 404 for an unknown job', async () => {
    const job = await enqueueJob(f)
    const res = await f.call('GET', `/jobs/${job.id}/runs`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual([])
    const missing = await f.call('GET', `/jobs/${WELL_FORMED_UNKNOWN}/runs`)
    expect(missing.status).toBe(404)
    expect(missing.body.error).toBeString()
  })

  test('lists attempts oldest first', async () => {
    const kind = uniqueKind('runs-order')
    const job = await enqueueJob(f, { kind, max_attempts: 2 })
    const first = await claimOne(f, kind)
    await f.call('POST', `/runs/${first.run.id}/fail`, { worker_id: 'worker-1', retryable: true, backoff_seconds: 0 })
    const second = await claimOne(f, kind)
    const res = await f.call('GET', `/jobs/${job.id}/runs`)
    expect(ids(res.body)).toEqual([first.run.id, second.run.id])
    expect(res.body.map((r: any) => r.attempt)).toEqual([1, 2])
  })
})

describe('POST /jobs/:id/cancel', () => {
  test('a pending job is cancelled at once with completed_at set', async () => {
    const job = await enqueueJob(f)
    const res = await f.call('POST', `/jobs/${job.id}/cancel`)
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('cancelled')
    expect(res.body.completed_at).toMatch(ISO)
    expect((await f.call('GET', `/jobs/${job.id}`)).body.status).toBe('cancelled')
  })

  test('a cancelled job is never claimed', async () => {
    const kind = uniqueKind('cancel-claim')
    const job = await enqueueJob(f, { kind })
    await f.call('POST', `/jobs/${job.id}/cancel`)
    expect((await claim({ kinds: [kind] })).status).toBe(204)
  })

  test('an active job stays active with cancel_requested true', async () => {
    const kind = uniqueKind('cancel-active')
    const job = await enqueueJob(f, { kind })
    await claimOne(f, kind)
    const res = await f.call('POST', `/jobs/${job.id}/cancel`)
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('active')
    expect(res.body.cancel_requested).toBe(true)
    expect(res.body.completed_at ?? null).toBeNull()
  })

  test('a terminal job is answered unchanged', async () => {
    const kind = uniqueKind('cancel-done')
    const job = await enqueueJob(f, { kind })
    const { run } = await claimOne(f, kind)
    const done = await f.call('POST', `/runs/${run.id}/complete`, { worker_id: 'worker-1', result: { ok: 1 } })
    expect(done.status).toBe(200)
    const res = await f.call('POST', `/jobs/${job.id}/cancel`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual(done.body)
  })

  test('an unknown job is 404', async () => {
    const res = await f.call('POST', `/jobs/${WELL_FORMED_UNKNOWN}/cancel`)
    expect(res.status).toBe(404)
    expect(res.body.error).toBeString()
  })
})

describe('what claim picks', () => {
  test('a job scheduled in the future is claimable only once it is due', async () => {
    const kind = uniqueKind('scheduled')
    const due = Date.now() + 1500
    const job = await enqueueJob(f, { kind, scheduled_at: new Date(due).toISOString() })
    expect((await claim({ kinds: [kind] })).status).toBe(204)
    let res = await claim({ kinds: [kind] })
    while (res.status === 204 && Date.now() < due + 5000) {
      await Bun.sleep(100)
      res = await claim({ kinds: [kind] })
    }
    expect(res.status).toBe(200)
    expect(res.body.job.id).toBe(job.id)
    // Same host clock: the claim cannot have happened before the due time.
    expect(Date.now()).toBeGreaterThanOrEqual(due - 50)
  })

  test('higher priority is claimed first, then the oldest', async () => {
    const kind = uniqueKind('priority')
    const low = await enqueueJob(f, { kind, priority: 0 })
    const highOld = await enqueueJob(f, { kind, priority: 5 })
    const highNew = await enqueueJob(f, { kind, priority: 5 })
    const negative = await enqueueJob(f, { kind, priority: -1 })
    const order: string[] = []
    for (let i = 0; i < 4; i++) order.push((await claimOne(f, kind)).job.id)
    expect(order).toEqual([highOld.id, highNew.id, low.id, negative.id])
    expect((await claim({ kinds: [kind] })).status).toBe(204)
  })

  test('queues restricts the claim to those queues', async () => {
    const kind = uniqueKind('queues')
    const inA = await enqueueJob(f, { kind, queue: 'qa' })
    const inB = await enqueueJob(f, { kind, queue: 'qb' })
    expect((await claim({ kinds: [kind], queues: ['qc'] })).status).toBe(204)
    const fromB = await claim({ kinds: [kind], queues: ['qb'] })
    expect(fromB.status).toBe(200)
    expect(fromB.body.job.id).toBe(inB.id)
    expect((await claim({ kinds: [kind], queues: ['qb'] })).status).toBe(204)
    const any = await claim({ kinds: [kind] })
    expect(any.body.job.id).toBe(inA.id)
  })

  test('claim only sees the requested kinds', async () => {
    const kind = uniqueKind('kinds')
    await enqueueJob(f, { kind })
    expect((await claim({ kinds: [uniqueKind('nobody')] })).status).toBe(204)
    expect((await claim({ kinds: [uniqueKind('nobody'), kind] })).status).toBe(200)
  })
})
