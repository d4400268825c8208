/** POST /runs/complete with `claim`: finished runs go back and the next jobs come out in one statement. */
import { describe, expect, test } from 'bun:test'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture({ defaultLeaseSec: 45 })
const W = 'handoff-worker'

/** Completes `runIds` for W and claims up to `max` jobs of `kinds` in the same call. */
const handOff = (runIds: string[], claim: Record<string, unknown>) =>
  f.call('POST', '/runs/complete', {
    worker_id: W,
    runs: runIds.map((run_id) => ({ run_id, result: { ok: 1 } })),
    claim,
  })

describe('complete and claim in one call', () => {
  test('completes the runs and answers the next jobs, active and held by the same worker', async () => {
    const kind = uniqueKind('handoff')
    const first = await enqueueJob(f, { kind })
    const next = [await enqueueJob(f, { kind }), await enqueueJob(f, { kind, priority: 2 })]
    const held = await claimOne(f, kind, W)
    expect(held.job.id).toBe(next[1].id)
    const res = await handOff([held.run.id], { kinds: [kind], max_jobs: 5 })
    expect(res.status).toBe(200)
    expect(res.body.results).toEqual([expect.objectContaining({ run_id: held.run.id, status: 200 })])
    expect(res.body.results[0].job.status).toBe('succeeded')
    // Best first: the older of the two left.
    expect(res.body.claimed.map((c: any) => c.job.id)).toEqual([first.id, next[0].id])
    for (const { job, run } of res.body.claimed) {
      expect(job.status).toBe('active')
      expect(job.attempt_count).toBe(1)
      expect(run).toMatchObject({ job_id: job.id, worker_id: W, status: 'running', attempt: 1 })
      expect(Date.parse(run.lease_expires_at) - Date.parse(run.started_at)).toBeCloseTo(45_000, -3)
      expect(job.enqueued_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    }
    const stored = await f.call('GET', `/jobs/${first.id}?include=current_run`)
    expect(stored.body.current_run.id).toBe(res.body.claimed[0].run.id)
  })

  test('takes no more than max_jobs, only of the kinds and queues asked, and [] when none is due', async () => {
    const [kind, other] = [uniqueKind('handoff-k'), uniqueKind('handoff-o')]
    await enqueueJob(f, { kind: other })
    await enqueueJob(f, { kind, queue: 'elsewhere' })
    for (let i = 0; i < 3; i++) await enqueueJob(f, { kind, queue: 'here' })
    await enqueueJob(f, { kind, queue: 'here', scheduled_at: new Date(Date.now() + 60_000).toISOString() })
    const held = await claimOne(f, kind, W, { queues: ['here'] })
    const first = await handOff([held.run.id], { kinds: [kind], queues: ['here'], max_jobs: 1 })
    expect(first.body.claimed).toHaveLength(1)
    const second = await handOff([first.body.claimed[0].run.id], { kinds: [kind], queues: ['here'], max_jobs: 10 })
    expect(second.body.claimed).toHaveLength(1)
    const last = await handOff([second.body.claimed[0].run.id], { kinds: [kind], queues: ['here'], max_jobs: 10 })
    expect(last.body.results[0].status).toBe(200)
    expect(last.body.claimed).toEqual([])
  })

  test('a batch of completions hands each run back and claims a batch, each job once', async () => {
    const kind = uniqueKind('handoff-batch')
    for (let i = 0; i < 7; i++) await enqueueJob(f, { kind })
    const first = await f.call('POST', '/claims', { kinds: [kind], worker_id: W, max_jobs: 3 })
    const held = first.body.map((c: any) => c.run.id)
    const res = await handOff(held, { kinds: [kind], max_jobs: 3 })
    expect(res.body.results.map((r: any) => [r.run_id, r.status])).toEqual(held.map((id: string) => [id, 200]))
    expect(res.body.claimed).toHaveLength(3)
    const next = await handOff(
      res.body.claimed.map((c: any) => c.run.id),
      { kinds: [kind], max_jobs: 3 },
    )
    expect(next.body.claimed).toHaveLength(1)
    const ids = [...first.body, ...res.body.claimed, ...next.body.claimed].map((c: any) => c.job.id)
    expect(new Set(ids).size).toBe(7)
  })

  test('max_jobs 0 claims nothing; without claim the answer has no claimed field', async () => {
    const kind = uniqueKind('handoff-zero')
    await enqueueJob(f, { kind })
    await enqueueJob(f, { kind })
    const held = await claimOne(f, kind, W)
    const res = await handOff([held.run.id], { kinds: [kind], max_jobs: 0 })
    expect(res.body.claimed).toEqual([])
    const again = await claimOne(f, kind, W)
    const plain = await f.call('POST', '/runs/complete', { worker_id: W, runs: [{ run_id: again.run.id }] })
    expect(plain.body.claimed).toBeUndefined()
  })

  test('a refused completion is reported per item and the claim still happens', async () => {
    const kind = uniqueKind('handoff-refused')
    await enqueueJob(f, { kind })
    await enqueueJob(f, { kind })
    const theirs = await claimOne(f, kind, 'someone-else')
    const res = await handOff([theirs.run.id], { kinds: [kind], max_jobs: 1 })
    expect(res.body.results[0].status).toBe(409)
    expect(res.body.claimed).toHaveLength(1)
    const stillTheirs = await f.call('GET', `/runs/${theirs.run.id}`)
    expect(stillTheirs.body.status).toBe('running')
  })

  test('a bad claim is a 400 naming the field, and nothing is completed', async () => {
    const kind = uniqueKind('handoff-bad')
    await enqueueJob(f, { kind })
    const held = await claimOne(f, kind, W)
    for (const [claim, field] of [
      [{ kinds: [], max_jobs: 1 }, 'claim.kinds'],
      [{ kinds: [kind], max_jobs: 101 }, 'claim.max_jobs'],
      [{ kinds: [kind] }, 'claim.max_jobs'],
      [{ kinds: [kind], max_jobs: 1, lease_seconds: 0 }, 'claim.lease_seconds'],
    ] as const) {
      const res = await handOff([held.run.id], claim)
      expect(res.status).toBe(400)
      expect(res.body.error).toContain(field)
    }
    expect((await f.call('GET', `/runs/${held.run.id}`)).body.status).toBe('running')
  })

  test('claimed jobs are announced on the live hub and counted as claims', async () => {
    const kind = uniqueKind('handoff-events')
    await enqueueJob(f, { kind })
    const next = await enqueueJob(f, { kind })
    const held = await claimOne(f, kind, W)
    const heard: string[] = []
    const unsubscribe = f.deps.events.hub.subscribe((e) => {
      if (e.type === 'changes') for (const c of e.changes) if (c.id === next.id) heard.push(c.status)
    })
    const claims = async () =>
      (await f.deps.metrics.jobsClaimed.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0
    const before = await claims()
    await handOff([held.run.id], { kinds: [kind], max_jobs: 1 })
    unsubscribe()
    expect(heard).toContain('active')
    expect((await claims()) - before).toBe(1)
  })
})
