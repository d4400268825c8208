/**
 * POST /jobs/batch: many jobs in one statement, answered in input order, with the
 * idempotency rules of POST /jobs (stored keys, keys repeated in the batch, and
 * concurrent batches sharing keys); one bad item refuses the whole batch.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient } from '../src/client'
import type { HubEvent } from '../src/events/hub'
import { newJobId } from '../src/ids'
import { jobInsertMany } from '../src/jobs/insert-sql'
import { enqueueJob, jobInsertOf, postTimed, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture({ eventsPollSec: 3600 })

type Outcome = { created: boolean; job: any }

/** Posts a batch and expects 200; answers the outcomes. */
async function batch(jobs: Record<string, unknown>[]): Promise<Outcome[]> {
  const res = await f.call('POST', '/jobs/batch', { jobs })
  expect(res.status).toBe(200)
  expect(res.body.jobs).toHaveLength(jobs.length)
  return res.body.jobs
}

/** How many jobs of `kinds` are stored. */
async function stored(...kinds: string[]): Promise<number> {
  const [row] = await f.sql<{ n: number }[]>`
    select count(*)::int as n from ${f.sql(f.tables.jobs)} where kind in ${f.sql(kinds)}`
  return row?.n ?? 0
}

/** A 400 whose error starts with `field: `, and nothing of `kind` stored. */
async function expectRefused(jobs: unknown, field: string, kind: string) {
  const res = await f.call('POST', '/jobs/batch', { jobs })
  expect(res.status).toBe(400)
  expect(res.body.error).toStartWith(`${field}: `)
  expect(await stored(kind)).toBe(0)
  return res
}

/** Random CJK characters (3 bytes each in UTF-8): incompressible, so they reach the index as is. */
const randomCjk = (chars: number) =>
  Array.from({ length: chars }, () => String.fromCharCode(0x4e00 + Math.floor(Math.random() * 0x5000))).join('')

/**
 * Inserts a job with `key` in a transaction left open until `commit` (which
 * answers the job), claiming the key in job_keys as every keyed enqueue does.
 */
async function holdInsert(kind: string, key: string) {
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let inserted!: (job: { id: string }) => void
  const insertedJob = new Promise<{ id: string }>((resolve) => {
    inserted = resolve
  })
  const tx = f.sql.begin(async (tx) => {
    const id = newJobId()
    await tx`insert into ${tx(f.tables.jobKeys)} (kind, idempotency_key, job_id) values (${kind}, ${key}, ${id})`
    const [job] = await tx<{ id: string }[]>`
      insert into ${tx(f.tables.jobs)} (id, kind, idempotency_key) values (${id}, ${kind}, ${key}) returning id`
    inserted(job!)
    await released
  })
  const job = await insertedJob
  return {
    async commit() {
      release()
      await tx
      return job
    },
  }
}

/** Waits until `n` statements containing `text` wait on a lock. */
async function waitingOnLock(text: string, n: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [row] = await f.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where wait_event_type = 'Lock' and query like ${`%${text}%`} and pid <> pg_backend_pid()`
    if ((row?.n ?? 0) >= n) return
    await Bun.sleep(10)
  }
  throw new Error(`fewer than ${n} statements containing ${text} wait on a lock`)
}

const shuffled = <T>(items: T[]) =>
  items
    .map((item) => ({ item, r: Math.random() }))
    .sort((a, b) => a.r - b.r)
    .map(({ item }) => item)

describe('POST /jobs/batch', () => {
  test('creates every job with the defaults of POST /jobs and answers them in input order', async () => {
    const kinds = [uniqueKind('bat-a'), uniqueKind('bat-b'), uniqueKind('bat-c')]
    const jobs = [
      { kind: kinds[2], params: { i: 0 } },
      { kind: kinds[0], queue: 'q1', service: 'svc', priority: 5, max_attempts: 3, params: 'text' },
      { kind: kinds[1], scheduled_at: '2030-01-02T05:04:05+02:00', params: [1, null] },
      { kind: kinds[0], idempotency_key: 'only-once', params: null },
    ]
    const answers = await batch(jobs)
    expect(answers.map((a) => a.created)).toEqual([true, true, true, true])
    expect(answers.map((a) => a.job.kind)).toEqual([kinds[2], kinds[0], kinds[1], kinds[0]])
    expect(answers[0]!.job).toMatchObject({
      queue: 'default',
      service: '',
      priority: 0,
      max_attempts: 1,
      params: { i: 0 },
    })
    expect(answers[0]!.job).toMatchObject({ status: 'pending', attempt_count: 0, cancel_requested: false })
    expect(answers[1]!.job).toMatchObject({ queue: 'q1', service: 'svc', priority: 5, max_attempts: 3, params: 'text' })
    expect(Date.parse(answers[2]!.job.scheduled_at)).toBe(Date.parse('2030-01-02T05:04:05+02:00'))
    expect(answers[2]!.job.params).toEqual([1, null])
    expect(answers[3]!.job).toMatchObject({ idempotency_key: 'only-once', params: {} })
    expect(new Set(answers.map((a) => a.job.id)).size).toBe(4)
    for (const { job } of answers) expect((await f.call('GET', `/jobs/${job.id}`)).body).toEqual(job)
  })

  test('jobs of one batch are claimed in input order (same priority)', async () => {
    const kind = uniqueKind('bat-order')
    const answers = await batch(Array.from({ length: 20 }, (_, i) => ({ kind, params: { i } })))
    const claimed: number[] = []
    for (let i = 0; i < 20; i++) {
      const res = await f.call('POST', '/claim', { kinds: [kind], worker_id: 'w-order' })
      claimed.push(res.body.job.params.i)
    }
    expect(claimed).toEqual(answers.map((_, i) => i))
  })

  test('a stored idempotency key answers the stored job, unchanged, with created false', async () => {
    const kind = uniqueKind('bat-existing')
    const existing = await enqueueJob(f, { kind, idempotency_key: 'k', params: { v: 1 } })
    const answers = await batch([
      { kind, params: { v: 'new' } },
      { kind, idempotency_key: 'k', params: { v: 2 } },
    ])
    expect(answers[0]!.created).toBe(true)
    expect(answers[1]).toEqual({ created: false, job: existing })
    expect(await stored(kind)).toBe(2)
  })

  test('a key repeated within a batch: one job, later items answer the first one not created', async () => {
    const kind = uniqueKind('bat-dup')
    const answers = await batch([
      { kind, idempotency_key: 'a', params: { n: 1 } },
      { kind, idempotency_key: 'b' },
      { kind, idempotency_key: 'a', params: { n: 2 } },
      { kind },
      { kind, idempotency_key: 'a', params: { n: 3 } },
    ])
    expect(answers.map((a) => a.created)).toEqual([true, true, false, true, false])
    expect(answers[2]!.job).toEqual(answers[0]!.job)
    expect(answers[4]!.job).toEqual(answers[0]!.job)
    expect(answers[0]!.job.params).toEqual({ n: 1 })
    expect(await stored(kind)).toBe(3)
  })

  test('a stored key repeated within a batch answers the stored job every time', async () => {
    const kind = uniqueKind('bat-dup-stored')
    const existing = await enqueueJob(f, { kind, idempotency_key: 'k' })
    const answers = await batch([
      { kind, idempotency_key: 'k' },
      { kind, idempotency_key: 'k' },
    ])
    expect(answers).toEqual([
      { created: false, job: existing },
      { created: false, job: existing },
    ])
    expect(await stored(kind)).toBe(1)
  })

  test('the statement itself answers repeated keys: no item is left for a second round trip', async () => {
    const kind = uniqueKind('bat-one-statement')
    const item = (ord: number, key: string | null) => ({ ord, ...jobInsertOf(kind, { idempotencyKey: key }) })
    const rows = await jobInsertMany(f.sql, f.tables, [item(0, 'a'), item(1, null), item(2, 'a'), item(3, 'a')])
    expect(rows.map((r) => [r.ord, r.created])).toEqual([
      [0, true],
      [1, true],
      [2, false],
      [3, false],
    ])
    expect(new Set([rows[0]!.job.id, rows[2]!.job.id, rows[3]!.job.id]).size).toBe(1)
  })

  test('the same key under different kinds is two jobs', async () => {
    const [a, b] = [uniqueKind('bat-ka'), uniqueKind('bat-kb')]
    const answers = await batch([
      { kind: a, idempotency_key: 'shared' },
      { kind: b, idempotency_key: 'shared' },
    ])
    expect(answers.map((x) => x.created)).toEqual([true, true])
    expect(answers[0]!.job.id).not.toBe(answers[1]!.job.id)
    expect(await stored(a, b)).toBe(2)
  })

  test('8 concurrent batches sharing keys, each in its own order: one job per key, every answer agrees', async () => {
    const kind = uniqueKind('bat-race')
    const keys = Array.from({ length: 500 }, (_, i) => `key-${i}`)
    const base = f.serve()
    const answers = await Promise.all(
      Array.from({ length: 8 }, async (_, b) => {
        const jobs = shuffled(keys).map((key) => ({ kind, idempotency_key: key, params: { b } }))
        jobs.push({ kind, idempotency_key: `own-${b}`, params: { b } })
        const res = await postTimed(base, '/jobs/batch', { jobs })
        expect(res.status).toBe(200)
        return (res.body.jobs as Outcome[]).map((o, i) => ({ ...o, key: jobs[i]!.idempotency_key }))
      }),
    )
    const idOf = new Map<string, string>()
    const createdCount = new Map<string, number>()
    for (const outcome of answers.flat()) {
      expect(outcome.job.idempotency_key).toBe(outcome.key)
      if (!idOf.has(outcome.key)) idOf.set(outcome.key, outcome.job.id)
      expect(outcome.job.id).toBe(idOf.get(outcome.key)!)
      if (outcome.created) createdCount.set(outcome.key, (createdCount.get(outcome.key) ?? 0) + 1)
    }
    expect(idOf.size).toBe(508)
    expect([...createdCount.values()].every((n) => n === 1)).toBe(true)
    expect(createdCount.size).toBe(508)
    expect(await stored(kind)).toBe(508)
  })
})

describe('races, made deterministic with a held insert', () => {
  test('a key committed after the batch began is re-read, not duplicated; overlapping batches cannot deadlock', async () => {
    const kind = uniqueKind('bat-held')
    // Another transaction has inserted k5 and not committed yet.
    const held = await holdInsert(kind, 'k5')
    // A takes k1, then waits on k5. B waits on k1 (taken in key order, whatever order it was listed in).
    const a = f.call('POST', '/jobs/batch', { jobs: ['k9', 'k5', 'k1'].map((key) => ({ kind, idempotency_key: key })) })
    await waitingOnLock('jsonb_to_recordset', 1)
    const b = f.call('POST', '/jobs/batch', { jobs: ['k1', 'k9'].map((key) => ({ kind, idempotency_key: key })) })
    await waitingOnLock('jsonb_to_recordset', 2)
    const heldJob = await held.commit()
    const [ra, rb] = await Promise.all([a, b])
    expect([ra.status, rb.status]).toEqual([200, 200])
    // A's snapshot predates the commit of k5, B's the commit of A: both re-read what they lost.
    expect(ra.body.jobs.map((o: Outcome) => [o.job.idempotency_key, o.created])).toEqual([
      ['k9', true],
      ['k5', false],
      ['k1', true],
    ])
    expect(ra.body.jobs[1].job.id).toBe(heldJob.id)
    expect(rb.body.jobs).toEqual([
      { created: false, job: ra.body.jobs[2].job },
      { created: false, job: ra.body.jobs[0].job },
    ])
    expect(await stored(kind)).toBe(3)
  })
})

describe('refusals: the whole batch, naming the item and field', () => {
  test('an invalid item at index 3 is a 400 naming jobs.3.kind, and nothing is stored', async () => {
    const kind = uniqueKind('bat-bad')
    const jobs: Record<string, unknown>[] = [{ kind }, { kind }, { kind }, { kind: '' }, { kind }]
    await expectRefused(jobs, 'jobs.3.kind', kind)
    const { kind: _, ...missing } = jobs[3]!
    await expectRefused([...jobs.slice(0, 3), missing, jobs[4]], 'jobs.3.kind', kind)
    await expectRefused([{ kind }, { kind, priority: '5' }], 'jobs.1.priority', kind)
    await expectRefused([{ kind }, { kind }, { kind, max_attempts: 0 }], 'jobs.2.max_attempts', kind)
  })

  test('no jobs, or more than 1,000, is a 400 naming jobs', async () => {
    const kind = uniqueKind('bat-size')
    await expectRefused([], 'jobs', kind)
    await expectRefused(
      Array.from({ length: 1001 }, () => ({ kind })),
      'jobs',
      kind,
    )
    const missing = await f.call('POST', '/jobs/batch', {})
    expect(missing.status).toBe(400)
    expect(missing.body.error).toStartWith('jobs: ')
    expect((await batch(Array.from({ length: 1000 }, () => ({ kind })))).every((a) => a.created)).toBe(true)
  })

  test('wait_seconds on an item is a 400 naming it (a batch answers at once)', async () => {
    const kind = uniqueKind('bat-wait')
    const res = await expectRefused([{ kind }, { kind }, { kind, wait_seconds: 1 }], 'jobs.2.wait_seconds', kind)
    expect(res.body.error).toContain('not accepted in a batch')
  })

  test('a NUL in params is a 4xx naming the item, and nothing is stored', async () => {
    const kind = uniqueKind('bat-nul')
    await expectRefused([{ kind }, { kind, params: { note: 'a\u0000b' } }], 'jobs.1.params.note', kind)
  })

  test('the longest kind and key fit the index (3-byte characters); a longer key is a 400 naming it', async () => {
    // 200 + 512 characters of 3 bytes (the most UTF-8 spends per UTF-16 unit) stay under
    // the ~2,700-byte btree entry limit, so the schema's caps keep "index row requires" out.
    const kind = randomCjk(200)
    const [answer] = await batch([{ kind, idempotency_key: randomCjk(512) }])
    expect(answer!.created).toBe(true)
    const other = uniqueKind('bat-long')
    await expectRefused(
      [{ kind: other }, { kind: other, idempotency_key: randomCjk(513) }],
      'jobs.1.idempotency_key',
      other,
    )
  })
})

describe('effects', () => {
  test('created jobs are published to the hub in one publish; found ones are not', async () => {
    const kind = uniqueKind('bat-events')
    const existing = await enqueueJob(f, { kind, idempotency_key: 'old' })
    const heard: HubEvent[] = []
    const unsubscribe = f.deps.events.hub.subscribe((event) => {
      if (event.type === 'changes' && event.changes.some((c) => c.kind === kind)) heard.push(event)
    })
    try {
      const answers = await batch([
        { kind },
        { kind, idempotency_key: 'old' },
        { kind, idempotency_key: 'new' },
        { kind, idempotency_key: 'new' },
      ])
      expect(heard).toHaveLength(1)
      const changes = heard[0]!.type === 'changes' ? heard[0]!.changes : []
      expect(changes.map((c) => c.id)).toEqual([answers[0]!.job.id, answers[2]!.job.id])
      expect(changes.every((c) => c.status === 'pending' && c.queue === 'default')).toBe(true)
      expect(changes.map((c) => c.id)).not.toContain(existing.id)
    } finally {
      unsubscribe()
    }
  })

  test('every item is counted in foreman_jobs_enqueued_total: created or deduped', async () => {
    const kind = uniqueKind('bat-metrics')
    await enqueueJob(f, { kind, idempotency_key: 'old' })
    await batch([
      { kind },
      { kind },
      { kind, idempotency_key: 'old' },
      { kind, idempotency_key: 'x' },
      { kind, idempotency_key: 'x' },
    ])
    const values = (await f.deps.metrics.jobsEnqueued.get()).values.filter((v) => v.labels.kind === kind)
    const count = (outcome: string) => values.find((v) => v.labels.outcome === outcome)?.value ?? 0
    expect(count('created')).toBe(1 + 3)
    expect(count('deduped')).toBe(2)
  })
})

describe('client enqueueMany', () => {
  test('round trip over a socket: outcomes in input order, a refused batch throws with the field', async () => {
    const foreman = new ForemanClient({ baseUrl: f.serve().replace(/\/foreman$/, '') })
    const kind = uniqueKind('bat-client')
    const answers = await foreman.enqueueMany([
      { kind, idempotency_key: 'one', params: { n: 1 } },
      { kind, params: { n: 2 } },
      { kind, idempotency_key: 'one' },
    ])
    expect(answers.map((a) => [a.created, a.job.params])).toEqual([
      [true, { n: 1 }],
      [true, { n: 2 }],
      [false, { n: 1 }],
    ])
    expect(answers[2]!.job.id).toBe(answers[0]!.job.id)
    expect((await foreman.getJob(answers[1]!.job.id)).kind).toBe(kind)
    const refused = await foreman.enqueueMany([{ kind }, { kind: '' }]).catch((e) => e)
    expect(refused.status).toBe(400)
    expect(refused.message).toStartWith('jobs.1.kind: ')
    expect(await stored(kind)).toBe(2)
  })
})
