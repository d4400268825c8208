/**
 * Stored objects for valid ids: pending, active and finished jobs, running and
 * finished runs, schedules. Valid cases cancel, complete and delete them, so the
 * pool is topped up through the API between cases and re-read from the tables.
 */
import type { Sql } from '../../../src/db/client'
import type { Tables } from '../../../src/db/tables'
import { POOL_KIND, POOL_WORKER } from './gen-valid'
import { POOL_CATEGORIES, type PoolCategory, type PoolRef } from './values'

const WANT: Record<PoolCategory, number> = {
  jobPending: 3,
  jobActive: 2,
  jobDone: 1,
  runRunning: 2,
  runDone: 1,
  sched: 2,
}

/** The ids of each category as last read. */
export class Pool {
  private ids: Record<PoolCategory, string[]> = Object.fromEntries(POOL_CATEGORIES.map((c) => [c, []])) as never

  constructor(
    private readonly base: string,
    private readonly sql: Sql,
    private readonly tables: Tables,
  ) {}

  /** The id a reference stands for; a well-formed unknown one when the category is empty. */
  resolve = (ref: PoolRef): string => {
    const list = this.ids[ref.category]
    if (list.length > 0) return list[ref.index % list.length]!
    return ref.category.startsWith('job')
      ? 'job_00000000000000000000000000'
      : ref.category.startsWith('run')
        ? 'run_00000000000000000000000000'
        : 'sched_00000000000000000000000000'
  }

  /** Re-reads the newest ids of each category. */
  async refresh(): Promise<void> {
    const { sql, tables: t } = this
    const jobs = await sql<{ id: string; status: string }[]>`
      select id, status from ${sql(t.jobs)} order by id desc limit 300`
    const runs = await sql<{ id: string; status: string }[]>`
      select id, status from ${sql(t.runs)} order by id desc limit 300`
    const scheds = await sql<{ id: string }[]>`select id from ${sql(t.schedules)} order by id desc limit 50`
    this.ids = {
      jobPending: jobs.filter((j) => j.status === 'pending').map((j) => j.id),
      jobActive: jobs.filter((j) => j.status === 'active').map((j) => j.id),
      jobDone: jobs.filter((j) => j.status !== 'pending' && j.status !== 'active').map((j) => j.id),
      runRunning: runs.filter((r) => r.status === 'running').map((r) => r.id),
      runDone: runs.filter((r) => r.status !== 'running').map((r) => r.id),
      sched: scheds.map((s) => s.id),
    }
  }

  /** Creates what is missing through the API (valid requests), then re-reads. */
  async topUp(): Promise<void> {
    await this.refresh()
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${this.base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      const text = await res.text()
      if (res.status >= 300) throw new Error(`pool top-up: POST ${path} answered ${res.status}: ${text}`)
      return text ? JSON.parse(text) : null
    }
    // A kind of its own for claims made here, so they never take the pending jobs.
    const claimKind = `${POOL_KIND}-held`
    const missing = (c: PoolCategory) => Math.max(0, WANT[c] - this.ids[c].length)
    for (let i = 0; i < missing('jobPending'); i++) await post('/jobs', { kind: POOL_KIND, params: { i } })
    const running = Math.max(missing('jobActive'), missing('runRunning'))
    for (let i = 0; i < running; i++) {
      await post('/jobs', { kind: claimKind, max_attempts: 3 })
      await post('/claim', { kinds: [claimKind], worker_id: POOL_WORKER, lease_seconds: 86_400 })
    }
    if (missing('jobDone') > 0 || missing('runDone') > 0) {
      await post('/jobs', { kind: claimKind })
      const claimed = await post('/claim', { kinds: [claimKind], worker_id: POOL_WORKER })
      await post(`/runs/${claimed.run.id}/complete`, { worker_id: POOL_WORKER, result: { ok: true } })
    }
    for (let i = 0; i < missing('sched'); i++) {
      await post('/schedules', { kind: POOL_KIND, cron_expr: '@hourly', enabled: i % 2 === 0 })
    }
    await this.refresh()
  }

  /** Counts per category, for the report. */
  sizes(): Record<PoolCategory, number> {
    return Object.fromEntries(POOL_CATEGORIES.map((c) => [c, this.ids[c].length])) as never
  }
}
