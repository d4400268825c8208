/**
 * Concurrency rules, exercised through a real socket: many claimers never share a
 * job, concurrent identical enqueues create one job, and a reaper sweep racing a
 * completion never reopens (or double-finishes) the run.
 */
import { describe, expect, test } from 'bun:test'
import { newJobId } from '../src/ids'
import { reapExpiredLeases } from '../src/sweeps/reaper'
import { postTimed, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const base = f.serve()

describe('concurrent claimers', () => {
  test('16 claimers over HTTP claim each of 1,000 jobs exactly once, each with one running run', async () => {
    const kind = uniqueKind('race-claim')
    const ids = Array.from({ length: 1000 }, () => newJobId())
    await f.sql`
      insert into ${f.sql(f.tables.jobs)} (id, kind)
      select id, ${kind} from unnest(${ids}::text[]) as ids(id)`

    const claims: { jobId: string; runId: string; worker: string }[] = []
    const unexpected: number[] = []
    const claimer = async (worker: string) => {
      for (;;) {
        const res = await postTimed(base, '/claim', { kinds: [kind], worker_id: worker, lease_seconds: 300 })
        if (res.status === 204) return
        if (res.status !== 200) {
          unexpected.push(res.status)
          return
        }
        expect(res.body.job.kind).toBe(kind)
        expect(res.body.run.job_id).toBe(res.body.job.id)
        claims.push({ jobId: res.body.job.id, runId: res.body.run.id, worker })
      }
    }
    await Promise.all(Array.from({ length: 16 }, (_, i) => claimer(`claimer-${i}`)))

    expect(unexpected).toEqual([])
    expect(claims.length).toBe(1000)
    expect(new Set(claims.map((c) => c.jobId)).size).toBe(1000)
    expect(new Set(claims.map((c) => c.runId)).size).toBe(1000)
    expect([...new Set(claims.map((c) => c.jobId))].sort()).toEqual([...ids].sort())

    const jobs = await f.sql<{ status: string; attempt_count: number; n: number }[]>`
      select status, attempt_count, count(*)::int as n from ${f.sql(f.tables.jobs)}
      where kind = ${kind} group by status, attempt_count`
    expect([...jobs]).toEqual([{ status: 'active', attempt_count: 1, n: 1000 }])

    const runs = await f.sql<{ job_id: string; running: number; total: number; worker_id: string }[]>`
      select r.job_id, count(*) filter (where r.status = 'running')::int as running, count(*)::int as total,
             min(r.worker_id) as worker_id
      from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where j.kind = ${kind} group by r.job_id`
    expect(runs.length).toBe(1000)
    expect(runs.filter((r) => r.running !== 1 || r.total !== 1)).toEqual([])
    // The run in the database belongs to the worker whose claim answered it.
    const claimedBy = new Map(claims.map((c) => [c.jobId, c.worker]))
    expect(runs.filter((r) => claimedBy.get(r.job_id) !== r.worker_id)).toEqual([])
  })
})

describe('concurrent enqueues', () => {
  test('32 identical enqueues with one idempotency key: one 201, 31 409s, all naming the same job, one row', async () => {
    const kind = uniqueKind('race-enqueue')
    const body = { kind, idempotency_key: 'same-key', params: { n: 1 } }
    const answers = await Promise.all(Array.from({ length: 32 }, () => postTimed(base, '/jobs', body)))

    const created = answers.filter((a) => a.status === 201)
    const duplicates = answers.filter((a) => a.status === 409)
    expect(answers.map((a) => a.status).sort()).toEqual([201, ...Array(31).fill(409)])
    expect(created.length).toBe(1)
    expect(duplicates.length).toBe(31)

    const id = created[0]?.body.id
    expect(id).toMatch(/^job_[0-9A-HJKMNP-TV-Z]{26}$/)
    for (const dup of duplicates) {
      expect(typeof dup.body.error).toBe('string')
      expect(dup.body.job.id).toBe(id)
      expect(dup.body.job.idempotency_key).toBe('same-key')
    }

    const rows = await f.sql`select id from ${f.sql(f.tables.jobs)} where kind = ${kind}`
    expect(rows.map((r) => r.id)).toEqual([id])
  })
})

describe('reaper racing completion', () => {
  test('an expired run is either completed or abandoned, never both, and its job agrees with it', async () => {
    const iterations = 50
    const outcomes = { completed: 0, reaped: 0 }
    for (let i = 0; i < iterations; i++) {
      const kind = uniqueKind('race-reap')
      const enq = await postTimed(base, '/jobs', { kind, max_attempts: 2 })
      expect(enq.status).toBe(201)
      const claim = await postTimed(base, '/claim', { kinds: [kind], worker_id: 'racer', lease_seconds: 1 })
      expect(claim.status).toBe(200)
      const { job, run } = claim.body
      await f.sql`
        update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 millisecond'
        where id = ${run.id}`

      // Alternate the two addressing forms of complete.
      const path = i % 2 === 0 ? `/runs/${run.id}/complete` : `/jobs/${job.id}/complete`
      // Stagger the sweep by 0-2 ms so both sides get to win some iterations.
      const [sweep, done] = await Promise.all([
        Bun.sleep(i % 3).then(() => reapExpiredLeases(f.deps)),
        postTimed(base, path, { worker_id: 'racer', result: { i } }),
      ])

      const [r] = await f.sql`select * from ${f.sql(f.tables.runs)} where id = ${run.id}`
      const [j] = await f.sql`select * from ${f.sql(f.tables.jobs)} where id = ${job.id}`
      const [count] = await f.sql`select count(*)::int as n from ${f.sql(f.tables.runs)} where job_id = ${job.id}`
      expect(count?.n).toBe(1)
      expect([200, 409]).toContain(done.status)
      // Exactly one side won.
      expect(sweep.reaped + (done.status === 200 ? 1 : 0)).toBe(1)
      if (done.status === 200) {
        outcomes.completed++
        expect(done.body.status).toBe('succeeded')
        expect(r?.status).toBe('succeeded')
        expect(r?.error).toBeNull()
        expect(r?.result).toEqual({ i })
        expect(j?.status).toBe('succeeded')
        expect(j?.result).toEqual({ i })
        expect(j?.completed_at).not.toBeNull()
      } else {
        outcomes.reaped++
        expect(typeof done.body.error).toBe('string')
        expect(r?.status).toBe('abandoned')
        expect(r?.error).toBe('lease expired')
        expect(r?.result).toBeNull()
        expect(j?.status).toBe('pending')
        expect(j?.completed_at).toBeNull()
      }
      expect(r?.lease_expires_at).toBeNull()
      expect(r?.finished_at).not.toBeNull()
    }
    expect(outcomes.completed + outcomes.reaped).toBe(iterations)

    // Across every iteration: no run finished in one way while its job says another.
    const mismatched = await f.sql`
      select r.id, r.status as run_status, j.status as job_status
      from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where j.kind like 'race-reap-%'
        and not ((r.status = 'succeeded' and j.status = 'succeeded')
              or (r.status = 'abandoned' and j.status = 'pending'))`
    expect([...mismatched]).toEqual([])
  })
})
