/**
 * GET /workers: each worker with what it holds now (its running runs, their
 * progress and lease), its latest heartbeat, and what it ended in the last hour.
 */
import { expect, test } from 'bun:test'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

let seq = 0
const uniqueWorker = (label: string) => `${label}-${Date.now().toString(36)}-${seq++}`

const workerOf = async (id: string) => {
  const res = await f.call('GET', '/workers')
  expect(res.status).toBe(200)
  const ids = (res.body as { worker_id: string }[]).map((w) => w.worker_id)
  expect(ids).toEqual([...ids].sort())
  return (res.body as { worker_id: string }[]).find((w) => w.worker_id === id) as any
}

test('a worker holding runs: each run with its job, kind, queue, lease and progress; the heartbeat once it beats', async () => {
  const worker = uniqueWorker('w-hold')
  const kind = uniqueKind('workers')
  await postOk(f, '/jobs', { kind, queue: 'wq' })
  await postOk(f, '/jobs', { kind, queue: 'wq' })
  const first = await claimOne(f, kind, worker)
  const second = await claimOne(f, kind, worker)

  const before = await workerOf(worker)
  expect(before).toMatchObject({ worker_id: worker, last_heartbeat_at: null, finished_last_hour: 0 })
  expect(before.running).toEqual(
    [first, second].map(({ job, run }) => ({
      run_id: run.id,
      job_id: job.id,
      kind,
      queue: 'wq',
      attempt: 1,
      started_at: run.started_at,
      lease_expires_at: run.lease_expires_at,
      progress_current: null,
      progress_total: null,
      progress_message: null,
    })),
  )

  await postOk(f, `/runs/${second.run.id}/heartbeat`, {
    worker_id: worker,
    progress_current: 3,
    progress_total: 10,
    progress_message: 'three of ten',
  })
  const stored = (await f.call('GET', `/runs/${second.run.id}`)).body
  const after = await workerOf(worker)
  expect(after.last_heartbeat_at).toBe(stored.updated_at)
  expect(Date.parse(after.last_heartbeat_at)).toBeGreaterThan(Date.parse(second.run.started_at))
  expect(after.running[1]).toMatchObject({
    run_id: second.run.id,
    lease_expires_at: stored.lease_expires_at,
    progress_current: 3,
    progress_total: 10,
    progress_message: 'three of ten',
  })
})

test('a worker whose runs ended in the last hour: counted by outcome, with nothing running and no heartbeat', async () => {
  const worker = uniqueWorker('w-done')
  const kind = uniqueKind('workers-done')
  for (let i = 0; i < 3; i++) await postOk(f, '/jobs', { kind })
  const ok = await claimOne(f, kind, worker)
  await postOk(f, `/runs/${ok.run.id}/complete`, { worker_id: worker })
  const bad = await claimOne(f, kind, worker)
  await postOk(f, `/runs/${bad.run.id}/fail`, { worker_id: worker, error: 'no' })
  const more = await claimOne(f, kind, worker)
  await postOk(f, `/runs/${more.run.id}/complete`, { worker_id: worker })

  expect(await workerOf(worker)).toEqual({
    worker_id: worker,
    running: [],
    last_heartbeat_at: null,
    finished_last_hour: 3,
    succeeded_last_hour: 2,
    failed_last_hour: 1,
  })
})

test('a worker with neither running runs nor runs ended in the last hour is not listed', async () => {
  const worker = uniqueWorker('w-old')
  const kind = uniqueKind('workers-old')
  await postOk(f, '/jobs', { kind })
  const { run } = await claimOne(f, kind, worker)
  await postOk(f, `/runs/${run.id}/complete`, { worker_id: worker })
  expect(await workerOf(worker)).toBeDefined()
  // The same run, ended two hours ago.
  await f.sql`update ${f.sql(f.tables.runs)} set finished_at = now() - interval '2 hours' where id = ${run.id}`
  expect(await workerOf(worker)).toBeUndefined()
})
