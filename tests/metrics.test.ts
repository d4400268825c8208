/**
 * GET /foreman/metrics: valid Prometheus text, counters that move with the job
 * lifecycle, gauges read from the tables at scrape time, and one registry per app.
 */
import { describe, expect, test } from 'bun:test'
import { dropTables } from '../src/db/migrate'
import { reapExpiredLeases } from '../src/sweeps/reaper'
import { pruneHistory } from '../src/sweeps/retention'
import { fireDueSchedules } from '../src/sweeps/scheduler'
import { claimOne, enqueueJob, postOk, uniqueKind } from './support/factories'
import { type Fixture, startFixture } from './support/harness'

const f = await startFixture()

/** One sample: name, labels, value. */
interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The exposition text: TYPE/HELP per family and every sample line. */
interface Scrape {
  text: string
  contentType: string | null
  types: Map<string, string>
  helps: Set<string>
  samples: Sample[]
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Scrapes a fixture and parses the text, failing on any line that is not valid exposition format. */
async function scrape(fx: Fixture = f): Promise<Scrape> {
  const res = await fx.app.handle(new Request('http://localhost/foreman/metrics'))
  expect(res.status).toBe(200)
  const text = await res.text()
  const out: Scrape = {
    text,
    contentType: res.headers.get('content-type'),
    types: new Map(),
    helps: new Set(),
    samples: [],
  }
  for (const line of text.split('\n')) {
    if (line === '') continue
    const meta = /^# (TYPE|HELP) (\S+) (.+)$/.exec(line)
    if (meta) {
      if (meta[1] === 'TYPE') out.types.set(meta[2]!, meta[3]!)
      else out.helps.add(meta[2]!)
      continue
    }
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`not exposition format: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k!] = v!
    out.samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** The value of one series (0 when absent: counters start there). */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  const hit = s.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  return hit?.value ?? 0
}

/** Runs `act` and answers how much each listed series moved. */
async function delta(series: [string, Record<string, string>?][], act: () => Promise<unknown>): Promise<number[]> {
  const before = await scrape()
  await act()
  const after = await scrape()
  return series.map(([name, labels]) => value(after, name, labels) - value(before, name, labels))
}

describe('exposition format', () => {
  test('answers text/plain version 0.0.4 with TYPE and HELP for every foreman_ family', async () => {
    await enqueueJob(f)
    const s = await scrape()
    expect(s.contentType).toContain('text/plain')
    expect(s.contentType).toContain('version=0.0.4')
    expect(s.types.size).toBeGreaterThan(20)
    for (const [name, type] of s.types) {
      expect(name).toMatch(/^foreman_[a-z0-9_]+$/)
      expect(s.helps.has(name)).toBe(true)
      if (type === 'counter') expect(name).toEndWith('_total')
      if (type === 'histogram') expect(name).toEndWith('_seconds')
    }
    for (const sample of s.samples) {
      const family = sample.name.replace(/_(bucket|sum|count)$/, '')
      expect(s.types.has(sample.name) || s.types.get(family) === 'histogram').toBe(true)
    }
  })

  test('is documented in OpenAPI under operations', async () => {
    const doc = (await f.call('GET', '/docs/json')).body
    const op = doc.paths['/foreman/metrics'].get
    expect(op.summary).toBe('Prometheus metrics')
    expect(op.tags).toEqual(['operations'])
  })
})

describe('counters move with the lifecycle', () => {
  test('enqueue counts created, and deduped for a repeated idempotency key', async () => {
    const kind = uniqueKind('enq')
    const body = { kind, queue: 'mail', idempotency_key: 'k-1' }
    const [created, deduped] = await delta(
      [
        ['foreman_jobs_enqueued_total', { kind, queue: 'mail', outcome: 'created' }],
        ['foreman_jobs_enqueued_total', { kind, queue: 'mail', outcome: 'deduped' }],
      ],
      async () => {
        expect((await f.call('POST', '/jobs', body)).status).toBe(201)
        expect((await f.call('POST', '/jobs', body)).status).toBe(409)
        expect((await f.call('POST', '/jobs', body)).status).toBe(409)
      },
    )
    expect([created, deduped]).toEqual([1, 2])
  })

  test('claim, heartbeat and complete: claimed, claim wait, heartbeats, terminal job and run, durations', async () => {
    const kind = uniqueKind('ok')
    await enqueueJob(f, { kind })
    const moved = await delta(
      [
        ['foreman_jobs_claimed_total', { kind, queue: 'default' }],
        ['foreman_claim_wait_seconds_count', { kind }],
        ['foreman_heartbeats_total', { kind }],
        ['foreman_jobs_terminal_total', { kind, status: 'succeeded' }],
        ['foreman_runs_terminal_total', { kind, status: 'succeeded' }],
        ['foreman_job_lifetime_seconds_count', { kind, status: 'succeeded' }],
        ['foreman_run_duration_seconds_count', { kind, status: 'succeeded' }],
      ],
      async () => {
        const { run } = await claimOne(f, kind)
        await postOk(f, `/runs/${run.id}/heartbeat`, { worker_id: 'worker-1', progress_current: 1 })
        await postOk(f, `/jobs/${run.job_id}/heartbeat`, { worker_id: 'worker-1', progress_current: 2 })
        await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'worker-1', result: { ok: true } })
      },
    )
    expect(moved).toEqual([1, 1, 2, 1, 1, 1, 1])
  })

  test('a retryable failure ends the run but not the job; the final failure ends both; claim wait counts once', async () => {
    const kind = uniqueKind('fail')
    await enqueueJob(f, { kind, max_attempts: 2 })
    const moved = await delta(
      [
        ['foreman_jobs_claimed_total', { kind }],
        ['foreman_claim_wait_seconds_count', { kind }],
        ['foreman_runs_terminal_total', { kind, status: 'failed' }],
        ['foreman_jobs_terminal_total', { kind, status: 'failed' }],
      ],
      async () => {
        const first = await claimOne(f, kind)
        await postOk(f, `/runs/${first.run.id}/fail`, { worker_id: 'worker-1', retryable: true, backoff_seconds: 0 })
        const second = await claimOne(f, kind)
        await postOk(f, `/runs/${second.run.id}/fail`, { worker_id: 'worker-1', error: 'boom' })
      },
    )
    expect(moved).toEqual([2, 1, 2, 1])
  })

  test('cancel of a pending job is terminal once; a repeat cancel counts nothing', async () => {
    const kind = uniqueKind('cancel')
    const job = await enqueueJob(f, { kind })
    const [cancelled] = await delta([['foreman_jobs_terminal_total', { kind, status: 'cancelled' }]], async () => {
      await postOk(f, `/jobs/${job.id}/cancel`, {})
      await postOk(f, `/jobs/${job.id}/cancel`, {})
    })
    expect(cancelled).toBe(1)
  })

  test('the reaper counts its sweep, the reaped run, and the job it ended', async () => {
    const kind = uniqueKind('reap')
    await enqueueJob(f, { kind })
    const { run } = await claimOne(f, kind)
    await f.sql`update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 minute' where id = ${run.id}`
    const overdue = value(await scrape(), 'foreman_overdue_lease_age_seconds')
    expect(overdue).toBeGreaterThan(30)
    const moved = await delta(
      [
        ['foreman_reaper_sweeps_total', { outcome: 'success' }],
        ['foreman_reaper_reaped_total'],
        ['foreman_runs_terminal_total', { kind, status: 'abandoned' }],
        ['foreman_jobs_terminal_total', { kind, status: 'failed' }],
      ],
      () => reapExpiredLeases(f.deps),
    )
    expect(moved).toEqual([1, 1, 1, 1])
    expect(value(await scrape(), 'foreman_overdue_lease_age_seconds')).toBe(0)
  })

  test('retention counts the jobs it deletes', async () => {
    const r = await startFixture()
    const job = await enqueueJob(r)
    await postOk(r, `/jobs/${job.id}/cancel`, {})
    await r.sql`update ${r.sql(r.tables.jobs)} set completed_at = now() - interval '3 days' where id = ${job.id}`
    await pruneHistory(r.deps, 1)
    expect(value(await scrape(r), 'foreman_retention_deleted_total')).toBe(1)
  })

  test('schedule fires count manual and timed fires alike', async () => {
    const kind = uniqueKind('sched')
    const schedule = await postOk(f, '/schedules', { kind, cron_expr: '@hourly' })
    const moved = await delta(
      [['foreman_schedules_fired_total'], ['foreman_jobs_enqueued_total', { kind, outcome: 'created' }]],
      async () => {
        await postOk(f, `/schedules/${schedule.id}/fire`, {})
        await f.sql`update ${f.sql(f.tables.schedules)} set next_fire_at = now() - interval '1 minute' where id = ${schedule.id}`
        expect(value(await scrape(), 'foreman_schedules_due_count')).toBeGreaterThanOrEqual(1)
        await fireDueSchedules(f.deps)
      },
    )
    expect(moved).toEqual([2, 2])
  })
})

describe('gauges read from the tables at scrape time', () => {
  test('jobs and runs by status, queue depth and oldest pending age per kind and queue', async () => {
    const g = await startFixture()
    const kind = uniqueKind('depth')
    const old = await enqueueJob(g, { kind, queue: 'q1' })
    await enqueueJob(g, { kind, queue: 'q1' })
    await enqueueJob(g, { kind, queue: 'q2' })
    await enqueueJob(g, { kind, queue: 'q2', scheduled_at: new Date(Date.now() + 3_600_000).toISOString() })
    await g.sql`update ${g.sql(g.tables.jobs)} set enqueued_at = now() - interval '1 hour' where id = ${old.id}`
    await claimOne(g, kind, 'worker-1', { queues: ['q2'] })
    const s = await scrape(g)
    expect(value(s, 'foreman_metrics_table_read_success')).toBe(1)
    expect(value(s, 'foreman_jobs_count', { status: 'pending' })).toBe(3)
    expect(value(s, 'foreman_jobs_count', { status: 'active' })).toBe(1)
    expect(value(s, 'foreman_jobs_count', { status: 'succeeded' })).toBe(0)
    expect(value(s, 'foreman_runs_count', { status: 'running' })).toBe(1)
    // The job scheduled an hour ahead is pending but not yet claimable: not in the depth.
    expect(value(s, 'foreman_queue_depth', { kind, queue: 'q1' })).toBe(2)
    expect(value(s, 'foreman_queue_depth', { kind, queue: 'q2' })).toBe(0)
    expect(value(s, 'foreman_queue_oldest_pending_age_seconds', { kind, queue: 'q1' })).toBeGreaterThan(3500)
    expect(value(s, 'foreman_oldest_pending_age_seconds')).toBeGreaterThan(3500)
    expect(value(s, 'foreman_schedules_count', { enabled: 'true' })).toBe(0)
  })

  test('table health: dead tuples per table and the oldest open transaction', async () => {
    let release!: () => void
    const held = f.sql.begin(async (tx) => {
      await tx`select 1`
      await new Promise<void>((resolve) => {
        release = resolve
      })
    })
    try {
      const s = await scrape()
      expect(s.samples.some((x) => x.name === 'foreman_table_dead_tuples' && x.labels.table === f.tables.jobs)).toBe(
        true,
      )
      expect(s.samples.some((x) => x.name === 'foreman_table_live_tuples' && x.labels.table === f.tables.runs)).toBe(
        true,
      )
      expect(value(s, 'foreman_db_oldest_transaction_age_seconds')).toBeGreaterThan(0)
    } finally {
      release()
      await held
    }
  })
})

test('a failed table read still serves the counters, and says the table gauges are missing', async () => {
  const d = await startFixture()
  await enqueueJob(d, { kind: 'before-the-drop' })
  await dropTables(d.sql, d.tables)
  const s = await scrape(d)
  expect(value(s, 'foreman_metrics_table_read_success')).toBe(0)
  expect(s.samples.some((x) => x.name === 'foreman_jobs_count')).toBe(false)
  expect(value(s, 'foreman_jobs_enqueued_total', { kind: 'before-the-drop' })).toBe(1)
})

describe('HTTP request durations', () => {
  test('label the route template and status, never the id in the URL', async () => {
    const job = await enqueueJob(f)
    await f.call('GET', `/jobs/${job.id}`)
    await f.call('GET', '/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV')
    await f.call('GET', `/no/such/route/${job.id}`)
    const s = await scrape()
    expect(s.text).not.toContain(job.id)
    const count = (route: string, status: string) =>
      value(s, 'foreman_http_request_duration_seconds_count', { method: 'GET', route, status })
    expect(count('/foreman/jobs/:id', '200')).toBeGreaterThanOrEqual(1)
    expect(count('/foreman/jobs/:id', '404')).toBeGreaterThanOrEqual(1)
    expect(count('unmatched', '404')).toBeGreaterThanOrEqual(1)
  })
})

test('two apps keep independent registries', async () => {
  const a = await startFixture()
  const b = await startFixture()
  await enqueueJob(a, { kind: 'only-in-a' })
  expect(value(await scrape(a), 'foreman_jobs_enqueued_total', { kind: 'only-in-a', outcome: 'created' })).toBe(1)
  expect(value(await scrape(b), 'foreman_jobs_enqueued_total', { kind: 'only-in-a', outcome: 'created' })).toBe(0)
  expect(a.deps.metrics.registry).not.toBe(b.deps.metrics.registry)
})
