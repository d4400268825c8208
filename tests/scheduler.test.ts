/**
 * The scheduler tick (fireDueSchedules): a due schedule enqueues one job keyed
 * `sched:<id>:<fire time>` and advances past now; two instances ticking at once
 * fire each due time once; an outage fires once (cron) or keeps its cadence
 * (@every); a crash between fire and advance leaves no duplicate; a stored
 * expression that no longer parses disables only its own schedule.
 */
import { describe, expect, test } from 'bun:test'
import type { HubEvent } from '../src/events/hub'
import { enqueueFromSchedule } from '../src/schedules/service'
import { scheduleGet } from '../src/schedules/sql'
import { fireDueSchedules, startScheduler } from '../src/sweeps/scheduler'
import { uniqueKind } from './support/factories'
import { type Fixture, startFixture } from './support/harness'

const f = await startFixture()
/** Two instances on one set of tables, for the race. */
const a = await startFixture()
const b = await startFixture({}, { prefix: a.tables.prefix, keepTables: true })
/** An instance whose scheduler loop ticks every 100 ms. */
const l = await startFixture({ schedulerIntervalSec: 0.1 })

async function create(fx: Fixture, body: Record<string, unknown>) {
  const res = await fx.call('POST', '/schedules', { cron_expr: '@hourly', ...body })
  expect(res.status).toBe(201)
  return res.body as { id: string; kind: string; next_fire_at: string }
}
/** Makes a schedule due: next_fire_at = now() - `ago`; answers the stored row. */
async function makeDue(fx: Fixture, id: string, ago = '1 minute') {
  await fx.sql`
    update ${fx.sql(fx.tables.schedules)} set next_fire_at = now() - ${ago}::interval where id = ${id}`
  return row(fx, id)
}
/** The stored row (timestamps as RFC 3339 strings). */
async function row(fx: Fixture, id: string): Promise<any> {
  const [r] = await fx.sql`select * from ${fx.sql(fx.tables.schedules)} where id = ${id}`
  if (!r) throw new Error(`schedule ${id} is gone`)
  return r
}
const jobsOf = (fx: Fixture, kind: string) =>
  fx.sql`select * from ${fx.sql(fx.tables.jobs)} where kind = ${kind} order by id`
const keyOf = (r: { id: string; next_fire_at: string }) => `sched:${r.id}:${r.next_fire_at}`
const nextIsPastDbNow = async (fx: Fixture, id: string) =>
  (await fx.sql`select next_fire_at > now() as past from ${fx.sql(fx.tables.schedules)} where id = ${id}`)[0]?.past

describe('one tick', () => {
  test('a due schedule enqueues exactly one job keyed sched:<id>:<fire time>, then advances past now', async () => {
    const kind = uniqueKind('tick-due')
    const s = await create(f, { kind, params: { p: 1 }, priority: 3, max_attempts: 2, queue: 'cron' })
    const due = await makeDue(f, s.id)
    const before = Date.now()
    const outcome = await fireDueSchedules(f.deps)
    expect(outcome.ran).toBe(true)
    expect(outcome.fired).toBeGreaterThanOrEqual(1)
    const jobs = await jobsOf(f, kind)
    expect(jobs).toHaveLength(1)
    expect(jobs[0]).toMatchObject({
      idempotency_key: `sched:${s.id}:${due.next_fire_at}`,
      status: 'pending',
      params: { p: 1 },
      priority: 3,
      max_attempts: 2,
      queue: 'cron',
    })
    const after = await row(f, s.id)
    expect(after.last_job_id).toBe(jobs[0]!.id)
    expect(Date.parse(after.last_fire_at)).toBeGreaterThanOrEqual(before - 1000)
    expect(Date.parse(after.next_fire_at)).toBeGreaterThan(before)
    expect(Date.parse(after.next_fire_at) % 3_600_000).toBe(0)
    expect(await nextIsPastDbNow(f, s.id)).toBe(true)
    // Ticking again does nothing more: the schedule is no longer due.
    await fireDueSchedules(f.deps)
    expect(await jobsOf(f, kind)).toHaveLength(1)
  })

  test('a schedule that is not yet due, and a disabled one that is, do not fire', async () => {
    const early = await create(f, { kind: uniqueKind('tick-early') })
    const offKind = uniqueKind('tick-disabled')
    const off = await create(f, { kind: offKind, enabled: false })
    const offDue = await makeDue(f, off.id)
    await fireDueSchedules(f.deps)
    expect(await jobsOf(f, early.kind)).toHaveLength(0)
    expect(await jobsOf(f, offKind)).toHaveLength(0)
    expect((await row(f, early.id)).next_fire_at).toBe(early.next_fire_at)
    expect((await row(f, off.id)).next_fire_at).toBe(offDue.next_fire_at)
    expect((await row(f, off.id)).last_job_id).toBeNull()
  })

  test('fired jobs are announced on the hub as pending changes', async () => {
    const kind = uniqueKind('tick-hub')
    const s = await create(f, { kind, queue: 'hub-q' })
    await makeDue(f, s.id)
    const heard: HubEvent[] = []
    const unsubscribe = f.deps.events.hub.subscribe((event) => heard.push(event))
    try {
      await fireDueSchedules(f.deps)
    } finally {
      unsubscribe()
    }
    const [job] = await jobsOf(f, kind)
    const changes = heard.flatMap((e) => (e.type === 'changes' ? e.changes : []))
    expect(changes).toContainEqual({ id: job!.id, status: 'pending', kind, queue: 'hub-q' })
  })
})

describe('two instances on one database', () => {
  test('loops of 20 ticks racing on both instances fire each of 30 due schedules exactly once per due time, 3 rounds', async () => {
    const kind = uniqueKind('race-sched')
    const schedules: { id: string }[] = []
    for (let i = 0; i < 30; i++) {
      const cron_expr = ['@hourly', '@every 1h', '*/30 * * * *'][i % 3]
      schedules.push(await create(i % 2 ? a : b, { kind, cron_expr, params: { i } }))
    }
    const ids = schedules.map((s) => s.id)
    const ROUNDS = 3
    for (let round = 1; round <= ROUNDS; round++) {
      // A distinct fire time per round, so each round is a new due time.
      await a.sql`
        update ${a.sql(a.tables.schedules)} set next_fire_at = now() - ${`${round} minutes`}::interval
        where id = any(${ids}::text[])`
      const dueTimes = new Map((await Promise.all(ids.map((id) => row(a, id)))).map((r) => [r.id, keyOf(r)]))
      const ticks = async (fx: Fixture) => {
        let fired = 0
        for (let i = 0; i < 20; i++) fired += (await fireDueSchedules(fx.deps)).fired
        return fired
      }
      // Two loops of 20 ticks on each instance, all at once.
      const fired = await Promise.all([ticks(a), ticks(b), ticks(a), ticks(b)])
      expect(fired.reduce((x, y) => x + y, 0)).toBe(30)
      const counts = await a.sql<{ key: string; n: number }[]>`
        select idempotency_key as key, count(*)::int as n from ${a.sql(a.tables.jobs)}
        where kind = ${kind} group by idempotency_key`
      expect(counts.filter((c) => c.n !== 1)).toEqual([])
      const keys = new Set(counts.map((c) => c.key))
      expect(keys.size).toBe(30 * round)
      for (const key of dueTimes.values()) expect(keys.has(key)).toBe(true)
      for (const id of ids) expect(await nextIsPastDbNow(a, id)).toBe(true)
    }
    const perSchedule = await a.sql<{ n: number }[]>`
      select count(*)::int as n from ${a.sql(a.tables.jobs)} where kind = ${kind}
      group by split_part(idempotency_key, ':', 2)`
    expect(perSchedule).toHaveLength(30)
    expect(perSchedule.every((p) => p.n === ROUNDS)).toBe(true)
  })
})

describe('outages', () => {
  test('an hourly schedule three days overdue fires once, and next_fire_at is the next hour after now', async () => {
    const kind = uniqueKind('outage-cron')
    const s = await create(f, { kind, cron_expr: '0 * * * *' })
    const due = await makeDue(f, s.id, '3 days')
    const before = Date.now()
    await fireDueSchedules(f.deps)
    const after = Date.now()
    const jobs = await jobsOf(f, kind)
    expect(jobs).toHaveLength(1)
    expect(jobs[0]!.idempotency_key).toBe(keyOf(due))
    const next = Date.parse((await row(f, s.id)).next_fire_at)
    expect(next % 3_600_000).toBe(0)
    expect(next).toBeGreaterThan(before)
    expect(next).toBeLessThanOrEqual(after + 3_600_000)
    // No backlog: another tick finds nothing due.
    await fireDueSchedules(f.deps)
    expect(await jobsOf(f, kind)).toHaveLength(1)
  })

  test('@every keeps its cadence through a long outage: one job, next = old + k·d, the first after now', async () => {
    const kind = uniqueKind('outage-every')
    const s = await create(f, { kind, cron_expr: '@every 7m' })
    const due = await makeDue(f, s.id, '3 days 17 seconds')
    const before = Date.now()
    await fireDueSchedules(f.deps)
    const after = Date.now()
    expect(await jobsOf(f, kind)).toHaveLength(1)
    const old = Date.parse(due.next_fire_at)
    const next = Date.parse((await row(f, s.id)).next_fire_at)
    expect((next - old) % 420_000).toBe(0)
    expect(next).toBeGreaterThan(before)
    expect(next - 420_000).toBeLessThanOrEqual(after)
  })
})

describe('crash safety', () => {
  test('a crash between fire and advance (rolled back) leaves no job; the next tick fires exactly one', async () => {
    const kind = uniqueKind('crash-rollback')
    const s = await create(f, { kind })
    const due = await makeDue(f, s.id)
    const crash = f.sql.begin(async (tx) => {
      const schedule = await scheduleGet(tx, f.tables, s.id, true)
      const { job } = await enqueueFromSchedule(tx, f.deps, schedule!, keyOf(due))
      const [seen] = await tx`select count(*)::int as n from ${tx(f.tables.jobs)} where id = ${job.id}`
      expect(seen?.n).toBe(1)
      throw new Error('crashed before advancing next_fire_at')
    })
    await expect(crash).rejects.toThrow('crashed before advancing')
    expect(await jobsOf(f, kind)).toHaveLength(0)
    expect((await row(f, s.id)).next_fire_at).toBe(due.next_fire_at)
    await fireDueSchedules(f.deps)
    await fireDueSchedules(f.deps)
    const jobs = await jobsOf(f, kind)
    expect(jobs).toHaveLength(1)
    expect(jobs[0]!.idempotency_key).toBe(keyOf(due))
    expect((await row(f, s.id)).last_job_id).toBe(jobs[0]!.id)
  })

  test('a tick whose transaction rolls back at commit announces nothing and counts nothing', async () => {
    const kind = uniqueKind('crash-commit')
    const s = await create(f, { kind })
    await makeDue(f, s.id)
    // Fails the tick's COMMIT, after every fire in it has succeeded: a deferred
    // trigger on the schedule update the fire makes.
    const fn = f.sql(`${f.tables.prefix}fail_commit`)
    await f.sql`create function ${fn}() returns trigger language plpgsql as $$
      begin raise exception 'forced failure at commit'; end $$`
    await f.sql`create constraint trigger ${fn} after update on ${f.sql(f.tables.schedules)}
      deferrable initially deferred for each row execute function ${fn}()`
    const fires = async () => (await f.deps.metrics.schedulesFired.get()).values.reduce((n, v) => n + v.value, 0)
    const firesBefore = await fires()
    const heard: HubEvent[] = []
    const unsubscribe = f.deps.events.hub.subscribe((event) => heard.push(event))
    try {
      await expect(fireDueSchedules(f.deps)).rejects.toThrow('forced failure at commit')
    } finally {
      unsubscribe()
      await f.sql`drop trigger ${fn} on ${f.sql(f.tables.schedules)}`
      await f.sql`drop function ${fn}()`
    }
    expect(await jobsOf(f, kind)).toHaveLength(0)
    expect(heard.flatMap((e) => (e.type === 'changes' ? e.changes : []))).toEqual([])
    expect(await fires()).toBe(firesBefore)
    // The schedule is still due: the next tick fires it, and announces that.
    await fireDueSchedules(f.deps)
    expect(await jobsOf(f, kind)).toHaveLength(1)
  })

  test('repeating a fire whose key already exists creates no second job, and still advances', async () => {
    const kind = uniqueKind('crash-repeat')
    const s = await create(f, { kind })
    const due = await makeDue(f, s.id)
    const schedule = await scheduleGet(f.sql, f.tables, s.id)
    const { job: existing } = await enqueueFromSchedule(f.sql, f.deps, schedule!, keyOf(due))
    const outcome = await fireDueSchedules(f.deps)
    expect(outcome.failed).toBe(0)
    const jobs = await jobsOf(f, kind)
    expect(jobs.map((j) => j.id)).toEqual([existing.id])
    const after = await row(f, s.id)
    expect(after.last_job_id).toBe(existing.id)
    expect(Date.parse(after.next_fire_at)).toBeGreaterThan(Date.parse(due.next_fire_at))
    expect(await nextIsPastDbNow(f, s.id)).toBe(true)
  })
})

describe('stored expressions that no longer parse', () => {
  test('such a schedule is disabled with last_error; other due schedules in the same tick still fire', async () => {
    const badCron = await create(f, { kind: uniqueKind('stale-cron') })
    const badZone = await create(f, { kind: uniqueKind('stale-zone') })
    const good = await create(f, { kind: uniqueKind('stale-good') })
    for (const s of [badCron, badZone, good]) await makeDue(f, s.id)
    await f.sql`update ${f.sql(f.tables.schedules)} set cron_expr = 'not a cron' where id = ${badCron.id}`
    await f.sql`update ${f.sql(f.tables.schedules)} set timezone = 'Nowhere/Land' where id = ${badZone.id}`
    const outcome = await fireDueSchedules(f.deps)
    expect(outcome.disabled).toBe(2)
    expect(outcome.failed).toBe(0)
    const cron = await row(f, badCron.id)
    expect(cron.enabled).toBe(false)
    expect(cron.last_error).toContain('cron_expr')
    const zone = await row(f, badZone.id)
    expect(zone.enabled).toBe(false)
    expect(zone.last_error).toContain('timezone')
    expect(await jobsOf(f, badCron.kind)).toHaveLength(0)
    expect(await jobsOf(f, badZone.kind)).toHaveLength(0)
    expect(await jobsOf(f, good.kind)).toHaveLength(1)
    // The API shows why; a PUT with a good expression turns it back on and clears the reason.
    expect((await f.call('GET', `/schedules/${badCron.id}`)).body.last_error).toBe(cron.last_error)
    const fixed = await f.call('PUT', `/schedules/${badCron.id}`, { kind: badCron.kind, cron_expr: '@daily' })
    expect(fixed.status).toBe(200)
    expect(fixed.body).toMatchObject({ enabled: true, last_error: null })
    expect(Date.parse(fixed.body.next_fire_at)).toBeGreaterThan(Date.now())
  })
})

describe('the scheduler loop', () => {
  test('startScheduler fires a due schedule on its own, once, and stop() ends it', async () => {
    const kind = uniqueKind('loop')
    const s = await create(l, { kind })
    const due = await makeDue(l, s.id)
    const loop = startScheduler(l.deps)
    let jobs: Awaited<ReturnType<typeof jobsOf>> = await jobsOf(l, kind)
    try {
      for (let i = 0; i < 100 && jobs.length === 0; i++) {
        await Bun.sleep(50)
        jobs = await jobsOf(l, kind)
      }
      // Let it tick a few more times: the fire is not repeated.
      await Bun.sleep(350)
    } finally {
      await loop.stop()
    }
    jobs = await jobsOf(l, kind)
    expect(jobs).toHaveLength(1)
    expect(jobs[0]!.idempotency_key).toBe(keyOf(due))
    // Stopped: a schedule made due now stays unfired.
    await makeDue(l, s.id)
    await Bun.sleep(300)
    expect(await jobsOf(l, kind)).toHaveLength(1)
  })
})
