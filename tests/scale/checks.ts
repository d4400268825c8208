/**
 * What the scale run must hold, each check reading the tables (or what the
 * clients recorded) after the load: no double claim, one fire per schedule slot,
 * every stream caught up with every job of its filter, and the connections
 * within the documented formula.
 */

import { expect } from 'bun:test'
import type { Sql } from '../../src/db/client'
import type { Tables } from '../../src/db/tables'
import { jobsHotAndHistory } from '../../src/history/anywhere-sql'
import type { Fixture } from '../support/harness'
import type { AuditedState } from './audit'
import type { ConnectionPeaks } from './connections'
import { matches, type Subscriber } from './subscriber'
import type { Ledger } from './workers'

/** A job as it ended, with the version its last event carries. */
export interface FinalJob {
  id: string
  kind: string
  queue: string
  status: string
  version: string
}

/**
 * Jobs (runs) hot and in history together: the instances' history sweeps move
 * finished jobs out of the hot tables while the run goes on.
 */
export const everyJob = (sql: Sql, t: Tables) => sql`${jobsHotAndHistory(sql, t, sql.unsafe('*'))} j`
const everyRun = (sql: Sql, t: Tables) =>
  sql`(select job_id, attempt, status from ${sql(t.runs)}
       union all select job_id, attempt, status from ${sql(t.runsHistory)}) r`

/** Every job of `kinds` as it stands, stamped as the event feed stamps it. */
export async function finalJobs(sql: Sql, t: Tables, kinds: string[]): Promise<FinalJob[]> {
  return [
    ...(await sql<FinalJob[]>`
      select id, kind, queue, status,
        to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as version
      from ${everyJob(sql, t)} where kind = any(${kinds}::text[])`),
  ]
}

/**
 * No double claim: each attempt has exactly one run, each job exactly one
 * succeeded run, a job's attempts are its runs (one, or two for a planned
 * failure), and no client was answered the same attempt twice or had a
 * completion confirmed twice.
 */
export async function checkClaims(sql: Sql, t: Tables, workKinds: string[], jobs: number, ledger: Ledger) {
  const [counts] = await sql<{ n: number; succeeded: number; planned: number; off: number }[]>`
    select count(*)::int as n, count(*) filter (where status = 'succeeded')::int as succeeded,
      count(*) filter (where params->>'fail_once' = 'true')::int as planned,
      count(*) filter (where attempt_count <> case when params->>'fail_once' = 'true' then 2 else 1 end)::int as off
    from ${everyJob(sql, t)} where kind = any(${workKinds}::text[])`
  expect(counts).toEqual({ n: jobs, succeeded: jobs, planned: expect.any(Number), off: 0 })
  const [runs] = await sql<{ repeated: number; not_one_success: number; running: number; failed: number }[]>`
    with per_attempt as (
      select job_id, attempt, count(*) as n from ${everyRun(sql, t)} group by job_id, attempt
    ), per_job as (
      select job_id, count(*) filter (where status = 'succeeded') as wins from ${everyRun(sql, t)} group by job_id
    )
    select (select count(*) from per_attempt where n > 1)::int as repeated,
      (select count(*) from per_job where wins <> 1)::int as not_one_success,
      (select count(*) from ${everyRun(sql, t)} where status = 'running')::int as running,
      (select count(*) from ${everyRun(sql, t)} where status = 'failed')::int as failed`
  expect(runs).toEqual({ repeated: 0, not_one_success: 0, running: 0, failed: counts?.planned ?? -1 })
  expect(ledger.errors).toEqual([])
  expect(ledger.repeats(ledger.claims)).toEqual([])
  expect(ledger.repeats(ledger.completed)).toEqual([])
  expect(ledger.planned).toBe(counts?.planned ?? -1)
}

/** What the schedule did: fires, slots skipped between them, how late fires came, fires per instance. */
export interface ScheduleFigures {
  fired: number
  skipped: number
  /** Milliseconds from a slot to its fire (the job's enqueued_at, the tick's now()): median and most. */
  lateMedianMs: number
  lateMaxMs: number
  byInstance: number[]
}

/**
 * The fire before a skip must have come this close to a second late: the tick
 * takes as its now the later of the database's now() (the job's enqueued_at) and
 * the process clock read once that answer arrived, which a loaded event loop
 * reads later.
 */
const CLOCK_SLACK_MS = 500

/**
 * Every slot of the `@every 1s` schedule fired exactly once, by whichever
 * instance's scheduler got there: one job per slot key (`sched:<id>:<slot>`),
 * slots on the 1-second cadence, and the instances' fire counters add up to the
 * jobs (a second fire of a slot would count there, even though the key's unique
 * index keeps its job out). A slot is skipped only by the documented rule (an
 * outage fires once rather than replaying): the fire before the gap came so late
 * that the skipped slots were already due, so their time had passed.
 */
export async function checkSchedule(
  sql: Sql,
  t: Tables,
  tickKind: string,
  scheduleId: string,
  instances: Fixture[],
): Promise<ScheduleFigures> {
  const rows = await sql<{ key: string; n: number; succeeded: number; fired: string }[]>`
    select idempotency_key as key, count(*)::int as n, count(*) filter (where status = 'succeeded')::int as succeeded,
      min(enqueued_at) as fired
    from ${everyJob(sql, t)} where kind = ${tickKind} group by idempotency_key`
  expect(rows.filter((r) => r.n !== 1 || r.succeeded !== 1)).toEqual([])
  const prefix = `sched:${scheduleId}:`
  expect(rows.filter((r) => !r.key?.startsWith(prefix))).toEqual([])
  const fires = rows
    .map((r) => ({ slot: Date.parse(r.key.slice(prefix.length)), at: Date.parse(r.fired) }))
    .sort((a, b) => a.slot - b.slot)
  expect(fires.length).toBeGreaterThanOrEqual(2)
  let skipped = 0
  const unexplained: string[] = []
  fires.slice(1).forEach(({ slot }, i) => {
    const before = fires[i] as { slot: number; at: number }
    const gap = slot - before.slot
    if (gap % 1000 !== 0) unexplained.push(`${before.slot} → ${slot}: off the cadence`)
    if (gap === 1000) return
    skipped += gap / 1000 - 1
    if (before.at < slot - 1000 - CLOCK_SLACK_MS)
      unexplained.push(`${before.slot} → ${slot}: fired ${before.at - before.slot} ms late`)
  })
  expect(unexplained).toEqual([])
  const byInstance = await Promise.all(
    instances.map(async (f) => (await f.deps.metrics.schedulesFired.get()).values.reduce((s, v) => s + v.value, 0)),
  )
  expect(byInstance.reduce((a, b) => a + b, 0)).toBe(fires.length)
  const late = fires.map((f) => f.at - f.slot).sort((a, b) => a - b)
  return {
    fired: fires.length,
    skipped,
    lateMedianMs: late[late.length >> 1] ?? 0,
    lateMaxMs: late.at(-1) ?? 0,
    byInstance,
  }
}

/** How much of the audited history of its filter a stream sent (intermediate states may be coalesced). */
export interface StreamFigures {
  name: string
  events: number
  reconnects: number
  /** Events that sent a job's state it had already sent (delivery is at least once). */
  repeats: number
  /** Jobs whose final state matches the filter: all must have reached the stream. */
  finals: number
  /** Share of the audited states matching the filter that the stream sent. */
  coverage: number
}

/**
 * Every stream saw every job of its filter reach its final state (the last event
 * it sent of the job carries the job's final version), sent nothing outside its
 * filter, sent only states the row really had (each event's version and status
 * are in the audit), and never sent a job's states out of order. A feed re-read
 * sends the row as it stands, so states that lasted less than a re-read may be
 * coalesced (README, Live events: each event is the job's full state); the share
 * of the history sent is reported, not asserted.
 */
export function checkStreams(subscribers: Subscriber[], audit: AuditedState[], finals: FinalJob[]): StreamFigures[] {
  const real = new Set(audit.map((s) => `${s.job_id}|${s.version}|${s.status}`))
  return subscribers.map((sub) => {
    expect({ name: sub.name, errors: sub.errors }).toEqual({ name: sub.name, errors: [] })
    const outside: string[] = []
    const unreal: string[] = []
    const backwards: string[] = []
    let sent = 0
    for (const [id, { states }] of sub.seen) {
      states.forEach((s, i) => {
        if (!matches(sub.filter, s)) outside.push(`${id} ${s.status}`)
        if (!real.has(`${id}|${s.version}|${s.status}`)) unreal.push(`${id} ${s.version} ${s.status}`)
        if (i > 0 && s.version < (states[i - 1]?.version ?? '')) backwards.push(id)
      })
      sent += new Set(states.map((s) => s.version)).size
    }
    const wanted = finals.filter((j) => matches(sub.filter, j))
    const missed = wanted.filter((j) => sub.last(j.id) !== j.version).map((j) => `${j.id} ${j.status}`)
    const history = new Set(audit.filter((s) => matches(sub.filter, s)).map((s) => `${s.job_id}|${s.version}`)).size
    const problems = { outside: outside.slice(0, 5), unreal: unreal.slice(0, 5), backwards: backwards.slice(0, 5) }
    expect({ name: sub.name, ...problems, missed: missed.slice(0, 5), missedCount: missed.length }).toEqual({
      name: sub.name,
      outside: [],
      unreal: [],
      backwards: [],
      missed: [],
      missedCount: 0,
    })
    expect(wanted.length).toBeGreaterThan(0)
    return {
      name: sub.name,
      events: sub.events,
      reconnects: sub.reconnects,
      repeats: sub.events - sent,
      finals: wanted.length,
      coverage: history ? sent / history : 1,
    }
  })
}

/** Within the documented formula: instances × (pool + LISTEN + NOTIFY), each instance pool + 2. */
export function checkConnections(peaks: ConnectionPeaks, instances: number, poolMax: number) {
  expect(peaks.samples).toBeGreaterThan(0)
  for (const [name, n] of Object.entries(peaks.perInstance)) {
    expect({ name, n: Math.min(n, poolMax + 2) }).toEqual({ name, n })
  }
  expect(peaks.total).toBeLessThanOrEqual(instances * (poolMax + 2))
  // The sampler saw the instances at work: more than their LISTEN and NOTIFY connections.
  expect(peaks.total).toBeGreaterThan(instances * 2)
}
