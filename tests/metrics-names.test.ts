/**
 * Dashboards and alerts written for the original Go service keep working: every
 * metric it registered is served under its name with exactly its label names,
 * labelled counters start at 0 for the label values known at start (the kinds the
 * database already holds included), and a kind first seen later starts all its
 * siblings at once. Every other family served is one of our documented additions.
 */
import { describe, expect, test } from 'bun:test'
import { metricsKnownLabels } from '../src/metrics/sql'
import { loadBacklog, loadWorkingSet } from './support/backlog'
import { vacuumAnalyze } from './support/backlog-stats'
import { createExplainer } from './support/explain'
import { claimOne, enqueueJob, postOk, uniqueKind } from './support/factories'
import { type Fixture, startFixture } from './support/harness'

/** The original service's metrics: name → type and label names. */
const ORIGINAL: Record<string, { type: string; labels: string[] }> = {
  foreman_jobs_enqueued_total: { type: 'counter', labels: ['kind', 'queue', 'outcome'] },
  foreman_jobs_claimed_total: { type: 'counter', labels: ['kind', 'queue'] },
  foreman_jobs_terminal_total: { type: 'counter', labels: ['kind', 'status'] },
  foreman_runs_terminal_total: { type: 'counter', labels: ['kind', 'status'] },
  foreman_heartbeats_total: { type: 'counter', labels: ['kind'] },
  foreman_schedules_fired_total: { type: 'counter', labels: [] },
  foreman_reaper_sweeps_total: { type: 'counter', labels: ['outcome'] },
  foreman_reaper_reaped_total: { type: 'counter', labels: [] },
  foreman_retention_deleted_total: { type: 'counter', labels: [] },
  foreman_history_moved_total: { type: 'counter', labels: [] },
  foreman_job_lifetime_seconds: { type: 'histogram', labels: ['kind', 'status'] },
  foreman_run_duration_seconds: { type: 'histogram', labels: ['kind', 'status'] },
  foreman_claim_wait_seconds: { type: 'histogram', labels: ['kind'] },
  foreman_jobs_count: { type: 'gauge', labels: ['status'] },
  foreman_runs_count: { type: 'gauge', labels: ['status'] },
  foreman_schedules_count: { type: 'gauge', labels: ['enabled'] },
  foreman_oldest_pending_age_seconds: { type: 'gauge', labels: [] },
  foreman_overdue_lease_age_seconds: { type: 'gauge', labels: [] },
  foreman_schedules_due_count: { type: 'gauge', labels: [] },
}

/** Ours, beside the originals (README's metrics section lists them). */
const ADDITIONS = [
  'foreman_http_request_duration_seconds',
  'foreman_event_streams_open',
  'foreman_event_streams_shed_total',
  'foreman_metrics_table_read_success',
  'foreman_queue_depth',
  'foreman_queue_oldest_pending_age_seconds',
  'foreman_table_dead_tuples',
  'foreman_table_live_tuples',
  'foreman_table_last_autovacuum_timestamp_seconds',
  'foreman_table_last_autoanalyze_timestamp_seconds',
  'foreman_db_oldest_transaction_age_seconds',
  'foreman_jobs_throttled_total',
  'foreman_flow_key_pending',
]

/** Names we served before taking the original ones back. */
const RETIRED = [
  'foreman_jobs',
  'foreman_runs',
  'foreman_schedules',
  'foreman_schedules_due',
  'foreman_oldest_pending_job_age_seconds',
  'foreman_lease_overdue_seconds',
  'foreman_runs_ended_total',
  'foreman_schedule_fires_total',
  'foreman_runs_reaped_total',
  'foreman_retention_deleted_jobs_total',
]

/** One sample line. */
interface Sample {
  name: string
  family: string
  labels: Record<string, string>
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Scrapes `f` and answers the families' types and every sample. */
async function scrape(f: Fixture): Promise<{ types: Map<string, string>; samples: Sample[] }> {
  const res = await f.app.handle(new Request('http://localhost/foreman/metrics'))
  expect(res.status).toBe(200)
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of (await res.text()).split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) types.set(type[1]!, type[2]!)
    const m = SAMPLE.exec(line)
    if (!m || line.startsWith('#')) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k!] = v!
    const name = m[1]!
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    samples.push({ name, family, labels, value: Number(m[3]) })
  }
  return { types, samples }
}

/** The label names of a sample as its family declares them (a bucket's `le` is the histogram's own). */
const labelNames = (s: Sample) =>
  Object.keys(s.labels)
    .filter((k) => !(s.name.endsWith('_bucket') && k === 'le'))
    .sort()

/** The value of the one series `name{labels}` (exact label set), or undefined when it is not served. */
function series(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort())
  return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value
}

/** Expects every counter series of `kind` (on `queue`) to be served, at `value`. */
function expectKindCounters(samples: Sample[], kind: string, queue: string, value = 0) {
  const at = (name: string, labels: Record<string, string>) => [name, labels, series(samples, name, labels)]
  const expected = (name: string, labels: Record<string, string>) => [name, labels, value]
  const names: [string, Record<string, string>][] = [
    ['foreman_jobs_enqueued_total', { kind, queue, outcome: 'created' }],
    ['foreman_jobs_enqueued_total', { kind, queue, outcome: 'deduped' }],
    ['foreman_jobs_claimed_total', { kind, queue }],
    ...['succeeded', 'failed', 'cancelled'].map((status): [string, Record<string, string>] => [
      'foreman_jobs_terminal_total',
      { kind, status },
    ]),
    ...['succeeded', 'failed', 'abandoned'].map((status): [string, Record<string, string>] => [
      'foreman_runs_terminal_total',
      { kind, status },
    ]),
    ['foreman_heartbeats_total', { kind }],
  ]
  expect(names.map(([n, l]) => at(n, l))).toEqual(names.map(([n, l]) => expected(n, l)))
}

// One Foreman makes history; a second one starts on the same tables, as after a restart.
const before = await startFixture()
const oldKind = uniqueKind('before-start')
const scheduledKind = uniqueKind('scheduled')
await enqueueJob(before, { kind: oldKind, queue: 'reports' })
await postOk(before, '/schedules', { kind: scheduledKind, queue: 'nightly', cron_expr: '@daily' })
const fresh = await startFixture({}, { prefix: before.tables.prefix, keepTables: true })
const first = await scrape(fresh)

describe('a fresh process on a database with history', () => {
  test('serves every original family with its type and exactly its label names', () => {
    for (const [name, { type, labels }] of Object.entries(ORIGINAL)) {
      expect([name, first.types.get(name)]).toEqual([name, type])
      for (const s of first.samples.filter((x) => x.family === name)) {
        expect([s.name, labelNames(s)]).toEqual([s.name, [...labels].sort()])
      }
    }
  })

  test('labelled counters start at 0 for the kinds the database held before the start', () => {
    expectKindCounters(first.samples, oldKind, 'reports')
    expectKindCounters(first.samples, scheduledKind, 'nightly')
    for (const outcome of ['success', 'error']) {
      expect(series(first.samples, 'foreman_reaper_sweeps_total', { outcome })).toBe(0)
    }
    for (const name of [
      'foreman_schedules_fired_total',
      'foreman_reaper_reaped_total',
      'foreman_retention_deleted_total',
      'foreman_history_moved_total',
    ]) {
      expect([name, series(first.samples, name)]).toEqual([name, 0])
    }
  })

  test('the scrape-time gauges: every status, both enabled values, zeros when nothing is late', () => {
    const s = first.samples
    expect(
      ['pending', 'active', 'succeeded', 'failed', 'cancelled'].map((status) =>
        series(s, 'foreman_jobs_count', { status }),
      ),
    ).toEqual([1, 0, 0, 0, 0])
    expect(
      ['running', 'succeeded', 'failed', 'abandoned'].map((status) => series(s, 'foreman_runs_count', { status })),
    ).toEqual([0, 0, 0, 0])
    expect(series(s, 'foreman_schedules_count', { enabled: 'true' })).toBe(1)
    expect(series(s, 'foreman_schedules_count', { enabled: 'false' })).toBe(0)
    expect(series(s, 'foreman_schedules_due_count')).toBe(0)
    expect(series(s, 'foreman_overdue_lease_age_seconds')).toBe(0)
    expect(series(s, 'foreman_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(0)
  })

  test('every family served is an original or a documented addition; the retired names are gone', async () => {
    const readme = await Bun.file(new URL('../README.md', import.meta.url)).text()
    const section = readme.slice(
      readme.indexOf('## Metrics'),
      readme.indexOf('\n## ', readme.indexOf('## Metrics') + 1),
    )
    const served = [...first.types.keys()].sort()
    expect(served).toEqual([...Object.keys(ORIGINAL), ...ADDITIONS].sort())
    for (const name of served) expect([name, section.includes(`\`${name}\``)]).toEqual([name, true])
    for (const name of RETIRED) expect([name, first.types.has(name)]).toEqual([name, false])
  })

  test('histograms carry the original labels once observed (claim wait by kind only)', async () => {
    await enqueueJob(fresh, { kind: oldKind, queue: 'reports' })
    const { run } = await claimOne(fresh, oldKind)
    await postOk(fresh, `/runs/${run.id}/complete`, { worker_id: 'worker-1' })
    const after = await scrape(fresh)
    for (const name of ['foreman_job_lifetime_seconds', 'foreman_run_duration_seconds', 'foreman_claim_wait_seconds']) {
      const observed = after.samples.filter((s) => s.family === name)
      expect([name, observed.length > 0]).toEqual([name, true])
      for (const s of observed) expect([s.name, labelNames(s)]).toEqual([s.name, [...ORIGINAL[name]!.labels].sort()])
    }
    expect(series(after.samples, 'foreman_claim_wait_seconds_count', { kind: oldKind })).toBe(1)
  })
})

describe('kinds first seen after the start', () => {
  const f = before
  const other = fresh

  test('the first enqueue of a kind starts every sibling series at 0', async () => {
    const kind = uniqueKind('new')
    await enqueueJob(f, { kind, queue: 'fresh' })
    const { samples } = await scrape(f)
    expect(series(samples, 'foreman_jobs_enqueued_total', { kind, queue: 'fresh', outcome: 'created' })).toBe(1)
    expect(series(samples, 'foreman_jobs_enqueued_total', { kind, queue: 'fresh', outcome: 'deduped' })).toBe(0)
    expect(series(samples, 'foreman_jobs_claimed_total', { kind, queue: 'fresh' })).toBe(0)
    expect(series(samples, 'foreman_jobs_terminal_total', { kind, status: 'failed' })).toBe(0)
    expect(series(samples, 'foreman_runs_terminal_total', { kind, status: 'abandoned' })).toBe(0)
    expect(series(samples, 'foreman_heartbeats_total', { kind })).toBe(0)
  })

  test('pending work enqueued through another instance starts its counters at the next scrape', async () => {
    const kind = uniqueKind('elsewhere')
    await enqueueJob(f, { kind, queue: 'remote' })
    expectKindCounters((await scrape(other)).samples, kind, 'remote')
  })
})

test('the start-time read of known kinds is bounded by the kinds, not the rows', async () => {
  // 27,000 jobs over four kinds (one of them 5 old jobs), with a schedule's kind beside them.
  const f = await startFixture()
  await loadWorkingSet(f.sql, f.tables, { pendingPerKind: 5, active: 2, expired: 1 })
  await loadBacklog(f.sql, f.tables, { finished: 20_000, pending: 5_000, backoff: 2_000, tomorrow: 200 })
  await postOk(f, '/schedules', { kind: 'from-a-schedule', cron_expr: '@daily' })
  await vacuumAnalyze(f.sql, f.tables)
  const jobs = f.sql(f.tables.jobs)
  const truth = await f.sql<{ kind: string; queue: string }[]>`
    select distinct on (kind) kind, queue from ${jobs} order by kind, id desc`
  const known = await metricsKnownLabels(f.sql, f.tables)
  const byKind = (rows: { kind: string; queue: string }[]) => rows.map((r) => `${r.kind}/${r.queue}`).sort()
  expect(byKind(known)).toEqual(byKind([...truth, { kind: 'from-a-schedule', queue: 'default' }]))

  const explainer = createExplainer(process.env.DATABASE_URL as string)
  try {
    // Planned as Postgres chooses, no settings: the loose scan must be its own choice.
    const [plan] = (await explainer.explainCall((sql) => metricsKnownLabels(sql, f.tables))).statements
    const jobRowsRead = plan!.scans
      .filter((s) => s.relation === f.tables.jobs || s.index?.startsWith(f.tables.jobs))
      .reduce((n, s) => n + s.rowsTouched, 0)
    // Per kind: one index probe to find it (with its newest id) and one primary-key probe for its queue.
    expect({ seqScans: plan!.seqScans.filter((t) => t === f.tables.jobs), jobRowsRead }).toEqual({
      seqScans: [],
      jobRowsRead: 2 * truth.length,
    })
  } finally {
    await explainer.close()
  }
})
