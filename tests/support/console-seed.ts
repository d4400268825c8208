/**
 * A Foreman that looks lived in, for the console's README screenshot: four kinds
 * in four queues, an hour of finished work (a few failures), a backlog, jobs due
 * later, two workers with runs in progress and a paused queue. Everything goes
 * through the API; only the finished work is then moved back in time (one
 * statement), since an hour of history cannot be waited for.
 */
import { expect } from 'bun:test'
import type { Fixture } from './harness'

const KINDS = [
  { kind: 'send-email', queue: 'default', count: 260, failEvery: 40 },
  { kind: 'resize-image', queue: 'media', count: 150, failEvery: 0 },
  { kind: 'sync-crm', queue: 'integrations', count: 90, failEvery: 6 },
  { kind: 'generate-report', queue: 'reports', count: 24, failEvery: 0 },
]

async function ok(f: Fixture, method: string, path: string, body?: unknown) {
  const res = await f.call(method, path, body)
  expect(res.status).toBeLessThan(300)
  return res.body
}

/** Enqueues, claims and finishes every kind's jobs, with a failure every `failEvery`. */
async function finishedWork(f: Fixture): Promise<void> {
  for (const { kind, queue, count, failEvery } of KINDS) {
    const jobs = Array.from({ length: count }, (_, i) => ({ kind, queue, params: { n: i, customer: 1000 + (i % 37) } }))
    await ok(f, 'POST', '/jobs/batch', { jobs })
    const worker = `${kind.split('-')[0]}-worker-1`
    for (let left = count; left > 0; left -= 100) {
      const claimed = await ok(f, 'POST', '/claims', { kinds: [kind], worker_id: worker, max_jobs: 100 })
      const runs = claimed.map((c: { run: { id: string } }) => c.run.id) as string[]
      const failing = failEvery ? runs.filter((_, i) => i % failEvery === failEvery - 1) : []
      for (const id of failing) {
        await ok(f, 'POST', `/runs/${id}/fail`, {
          worker_id: worker,
          error: 'upstream answered 503 Service Unavailable',
        })
      }
      const completing = runs.filter((id) => !failing.includes(id)).map((run_id) => ({ run_id, result: { ok: true } }))
      if (completing.length) await ok(f, 'POST', '/runs/complete', { worker_id: worker, runs: completing })
    }
  }
  // Spread the finished work over the last hour, busier lately; a job and its runs move together.
  const { jobs, runs } = f.tables
  await f.sql`
    with shift as (
      select id, make_interval(secs => 60 + 3480 * power(random(), 1.4)) as back
      from ${f.sql(jobs)} where status in ('succeeded', 'failed')
    ), moved_runs as (
      update ${f.sql(runs)} r set started_at = r.started_at - s.back, finished_at = r.finished_at - s.back,
        created_at = r.created_at - s.back, updated_at = r.updated_at - s.back
      from shift s where r.job_id = s.id
    )
    update ${f.sql(jobs)} j set enqueued_at = j.enqueued_at - s.back - make_interval(secs => 20 * random()),
      started_at = j.started_at - s.back, completed_at = j.completed_at - s.back, updated_at = j.updated_at - s.back
    from shift s where j.id = s.id`
}

/** Seeds `f` (a fresh fixture): finished history, a backlog, runs in progress, a paused queue. */
export async function seedRealisticActivity(f: Fixture): Promise<void> {
  await finishedWork(f)
  const backlog = Array.from({ length: 42 }, (_, i) => ({ kind: 'send-email', params: { to: `user${i}@example.com` } }))
  await ok(f, 'POST', '/jobs/batch', { jobs: backlog })
  const later = new Date(Date.now() + 20 * 60_000).toISOString()
  await ok(f, 'POST', '/jobs/batch', {
    jobs: Array.from({ length: 6 }, () => ({ kind: 'generate-report', queue: 'reports', scheduled_at: later })),
  })
  await ok(f, 'POST', '/jobs/batch', {
    jobs: Array.from({ length: 3 }, () => ({ kind: 'generate-report', queue: 'reports' })),
  })
  await f.sql`update ${f.sql(f.tables.jobs)} set enqueued_at = now() - interval '4 minutes' where status = 'pending'`
  await ok(f, 'POST', '/queues/reports/pause')
  await ok(f, 'POST', '/jobs/batch', {
    jobs: Array.from({ length: 3 }, (_, i) => ({ kind: 'resize-image', queue: 'media', params: { image: i } })),
  })
  for (const [i, worker] of ['media-worker-1', 'media-worker-2', 'media-worker-2'].entries()) {
    const { run } = await ok(f, 'POST', '/claim', { kinds: ['resize-image'], worker_id: worker })
    const body = {
      worker_id: worker,
      progress_current: [34, 80, 5][i],
      progress_total: 120,
      progress_message: 'resizing',
    }
    await ok(f, 'POST', `/runs/${run.id}/heartbeat`, body)
  }
  await ok(f, 'POST', '/schedules', {
    kind: 'generate-report',
    queue: 'reports',
    cron_expr: '0 6 * * 1-5',
    timezone: 'Europe/Berlin',
  })
}
