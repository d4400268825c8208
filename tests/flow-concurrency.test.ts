/**
 * Flow control under real concurrency (issue 12): two Foreman instances on the
 * same tables, each served over HTTP, with many claimers at once. It proves that
 * - `max_active_per_key` holds across instances and every claim style (POST
 *   /claim, /claims, the hand-off of POST /runs/complete, the TS Worker): no
 *   key ever has more jobs active than its limit, by the database's clock at
 *   each change (see startAudit) and by what the claimers themselves held;
 * - `rate_per_key` holds: no 1-second window holds more than `limit` claims of
 *   a key (from the runs' start times), while the rate is actually reached;
 * - keys are served fairly: a key with a huge backlog enqueued first does not
 *   hold back keys with a few jobs each;
 * - a long-poll claimer on one instance wakes (through NOTIFY) when a run of a
 *   key at its limit ends on the other instance.
 * The single-instance rules, one at a time, are in flow-claim.test.ts.
 */
import { afterAll, expect, test } from 'bun:test'
import { type Claimed, ForemanClient, Worker } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

// Registered before the fixtures so that it runs before they close (hooks run in order).
afterAll(() => stopAudit())
const a = await startFixture()
// Instance B: another Foreman on A's tables. Its safety poll is off (in effect),
// so only a NOTIFY from A can wake its waiting claimers before their deadline.
const b = await startFixture({ eventsPollSec: 3600 }, { prefix: a.tables.prefix, keepTables: true })
const instances = [a, b]
const clients = [new ForemanClient({ baseUrl: a.serve() }), new ForemanClient({ baseUrl: b.serve() })] as const
const clientOf = (i: number) => clients[i % 2] as ForemanClient

const sql = a.sql
const jobsT = a.tables.jobs
const runsT = a.tables.runs

async function setLimits(kind: string, body: Record<string, unknown>) {
  const res = await a.call('PUT', `/limits/${encodeURIComponent(kind)}`, body)
  expect(res.status).toBe(200)
}

/** Enqueues one job of `kind` per key in `keys` (in this order), 1,000 per batch call. */
async function enqueueKeys(kind: string, keys: string[]) {
  for (let i = 0; i < keys.length; i += 1000) {
    const jobs = keys.slice(i, i + 1000).map((concurrency_key) => ({ kind, concurrency_key }))
    const res = await a.call('POST', '/jobs/batch', { jobs })
    expect(res.status).toBe(200)
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j] as T, items[i] as T]
  }
  return items
}

async function succeeded(kind: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from ${sql(jobsT)} where kind = ${kind} and status = 'succeeded'`
  return row?.n ?? 0
}

/** A query's rows as a plain array (what toEqual([]) compares with). */
const plain = async <T>(rows: Promise<readonly T[]>): Promise<T[]> => [...(await rows)]

/** Resolves once `done()` holds (checked every `everyMs`); throws after `ms`. */
async function until(what: string, done: () => Promise<boolean>, ms: number, everyMs = 50) {
  const deadline = performance.now() + ms
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(everyMs)
  }
}

/** foreman_jobs_throttled_total of `kind` and `reason`, summed over both instances. */
async function throttled(kind: string, reason: string): Promise<number> {
  let total = 0
  for (const f of instances) {
    const text = await (await f.app.handle(new Request('http://localhost/foreman/metrics'))).text()
    const prefix = `foreman_jobs_throttled_total{kind="${kind}",reason="${reason}"} `
    const line = text.split('\n').find((l) => l.startsWith(prefix))
    total += line ? Number(line.slice(prefix.length)) : 0
  }
  return total
}

/** Claimers that loop until stopped; an error is noted, and the loop goes on after a pause. */
class Claimers {
  stopped = false
  readonly errors: unknown[] = []
  private readonly loops: Promise<void>[] = []
  private readonly workers: Worker[] = []

  loop(body: () => Promise<void>): void {
    this.loops.push(
      (async () => {
        while (!this.stopped) {
          try {
            await body()
          } catch (error) {
            this.errors.push(error)
            await Bun.sleep(50)
          }
        }
      })(),
    )
  }

  worker(worker: Worker): void {
    this.workers.push(worker.start())
  }

  /** Stops claiming; waits for every loop to complete what it holds. */
  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all([...this.loops, ...this.workers.map((w) => w.stop(5000))])
  }
}

const claimBody = (kind: string, workerId: string) => ({
  kinds: [kind],
  worker_id: workerId,
  wait_seconds: 1,
  lease_seconds: 60,
})

/**
 * A trigger on the jobs table (test-only) that notes, by the database's clock
 * at the moment of the change, each job becoming active and leaving active.
 *
 * Why not the runs' started_at and finished_at: started_at is the claim
 * transaction's now(), the instant of its BEGIN, and the limited claim locks its
 * key's slot row and counts the running jobs only after that, in later
 * statements; a claimer that waits for a slot row another claimer holds starts
 * its run, on paper, before the run it replaces ended (see the last test).
 *
 * Here the change that makes a job active runs in the claim's last statement,
 * after that statement took the snapshot that saw the slot free, and the change
 * that frees a slot runs before its commit, hence before that snapshot: a slot
 * handed on shows as an end strictly before the next start. An overlap past the
 * limit that really happened shows as one too (each end is noted just before
 * its commit).
 */
const audit = `${a.tables.prefix}flow_audit`
async function startAudit() {
  await sql.unsafe(
    `create table ${audit} (kind text, key text, job_id text, became text, was text, at timestamptz not null)`,
  )
  await sql.unsafe(`create function ${audit}_note() returns trigger language plpgsql as $$ begin
    insert into ${audit} values (new.kind, new.concurrency_key, new.id, new.status, old.status, clock_timestamp());
    return null; end $$`)
  await sql.unsafe(`create trigger ${audit}_on after update of status on ${jobsT} for each row
    when (old.status is distinct from new.status and (old.status = 'active' or new.status = 'active'))
    execute function ${audit}_note()`)
}
async function stopAudit() {
  await sql.unsafe(`drop function if exists ${audit}_note() cascade`)
  await sql.unsafe(`drop table if exists ${audit}`)
}

/**
 * Where more than `limit` jobs of one key of `kind` were active at once, from
 * the audit (a sweep line per key; at equal instants an end counts before a
 * start). One row per offending key: the most at once and when.
 */
async function auditOverlaps(kind: string, limit: number) {
  return plain(sql<{ key: string; most: number; at: string }[]>`
    with ev as (
      select key, at, case when became = 'active' then 1 else -1 end as d from ${sql(audit)} where kind = ${kind}
    ), swept as (
      select key, at, sum(d) over (partition by key order by at, d rows unbounded preceding) as active from ev
    )
    select distinct on (key) key, active::int as most, at::text as at
    from swept where active > ${limit}
    order by key, active desc, at`)
}

/** The same sweep over the runs' recorded started_at and finished_at. */
async function runOverlaps(kind: string, limit: number) {
  return plain(sql<{ key: string; most: number; at: string }[]>`
    with ev as (
      select j.concurrency_key as key, r.started_at as at, 1 as d
      from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id where j.kind = ${kind}
      union all
      select j.concurrency_key, r.finished_at, -1
      from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id where j.kind = ${kind}
    ), swept as (
      select key, at, sum(d) over (partition by key order by at, d rows unbounded preceding) as active from ev
    )
    select distinct on (key) key, active::int as most, at::text as at
    from swept where active > ${limit}
    order by key, active desc, at`)
}

/** How long a claimer holds a job: a few milliseconds, at random. */
const hold = () => Bun.sleep(1 + Math.random() * 4)

/** The kind of the first test, for the last one (the runs' recorded times). */
let manyClaimersKind: string | null = null

test('max_active_per_key 2: 16 claimers on 2 instances, 5,000 jobs over 50 keys, never 3 of a key at once', async () => {
  const kind = uniqueKind('conc')
  await setLimits(kind, { max_active_per_key: 2 })
  // 50 keys, uneven so that the limit binds: 10 hot keys with 300 jobs each, 40
  // with 50. Once the small keys are done, 16 claimers compete for 20 slots.
  const keys: string[] = []
  for (let k = 0; k < 50; k++) for (let i = 0; i < (k < 10 ? 300 : 50); i++) keys.push(`k${k}`)
  expect(keys).toHaveLength(5000)
  await enqueueKeys(kind, shuffle(keys))
  await startAudit()

  // What the claimers held, from a claim's answer to sending its completion:
  // within the time the database held the job active, so never more than it.
  const holding = new Map<string, number>()
  let mostHeld = 0
  const held = async (job: Claimed['job']) => {
    const key = job.concurrency_key ?? ''
    const n = (holding.get(key) ?? 0) + 1
    holding.set(key, n)
    mostHeld = Math.max(mostHeld, n)
    await hold()
    holding.set(key, (holding.get(key) ?? 1) - 1)
  }

  const claimers = new Claimers()
  const started = performance.now()
  for (let i = 0; i < 16; i++) {
    const client = clientOf(i)
    const workerId = `c${i}`
    const body = claimBody(kind, workerId)
    if (i % 4 === 0) {
      // POST /claim, one job at a time.
      claimers.loop(async () => {
        const c = await client.claim(body)
        if (!c) return
        await held(c.job)
        await client.complete(c.run.id, { worker_id: workerId, result: null })
      })
    } else if (i % 4 === 1) {
      // POST /claims, up to 3, each completed on its own.
      claimers.loop(async () => {
        const claimed = await client.claimMany({ ...body, max_jobs: 3 })
        await Promise.all(
          claimed.map(async (c) => {
            await held(c.job)
            await client.complete(c.run.id, { worker_id: workerId, result: null })
          }),
        )
      })
    } else if (i % 4 === 2) {
      // POST /claims, then the hand-off: complete and claim the next ones in one call.
      claimers.loop(async () => {
        let batch = await client.claimMany({ ...body, max_jobs: 2 })
        while (batch.length > 0) {
          await Promise.all(batch.map((c) => held(c.job)))
          const runs = batch.map((c) => ({ run_id: c.run.id, result: null }))
          const next = claimers.stopped ? 0 : 2
          const answer = await client.completeAndClaim(workerId, runs, { kinds: [kind], max_jobs: next })
          for (const r of answer.results) if (r.status !== 200) claimers.errors.push(r)
          batch = answer.claimed
        }
      })
    } else {
      // The TS Worker, 3 jobs at once: batched claims, batched completions with hand-off.
      const worker = new Worker(client, {
        workerId,
        concurrency: 3,
        waitSeconds: 1,
        leaseSeconds: 60,
        onError: (e) => claimers.errors.push(e),
      })
      claimers.worker(worker.handle(kind, (job) => held(job).then(() => null)))
    }
  }
  try {
    await until('5,000 jobs to succeed', async () => (await succeeded(kind)) === 5000, 100_000, 100)
  } finally {
    await claimers.stop()
  }
  const seconds = (performance.now() - started) / 1000

  expect(claimers.errors).toEqual([])
  expect(await succeeded(kind)).toBe(5000)
  const [runs] = await sql<{ n: number; open: number; keys: number }[]>`
    select count(*)::int as n, count(*) filter (where r.finished_at is null)::int as open,
           count(distinct j.concurrency_key)::int as keys
    from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id where j.kind = ${kind}`
  expect(runs).toMatchObject({ open: 0, keys: 50 })
  expect(runs?.n).toBeGreaterThanOrEqual(5000)

  // The limit was reached and pressed on: claims passed keys over because of it.
  const passedOver = await throttled(kind, 'max_active_per_key')
  expect(mostHeld).toBe(2)
  expect(passedOver).toBeGreaterThan(0)
  // Never more than 2 of a key active, by the database's clock. The same sweep
  // does see the pairs that were allowed, so the audit saw the runs.
  expect(await auditOverlaps(kind, 2)).toEqual([])
  expect((await auditOverlaps(kind, 1)).length).toBeGreaterThan(0)
  const [early] = await sql<{ ms: number }[]>`
    select max(extract(epoch from (au.at - r.started_at)) * 1000)::float as ms
    from ${sql(runsT)} r join ${sql(audit)} au on au.job_id = r.job_id and au.became = 'active'
    where au.kind = ${kind}`
  console.log(
    `5,000 jobs, 16 claimers: ${seconds.toFixed(1)} s; keys passed over at their limit ${passedOver} times; ` +
      `a run's started_at came up to ${early?.ms.toFixed(0)} ms before its job became active`,
  )
  manyClaimersKind = kind
}, 120_000)

test('rate_per_key 5 per second: 10 busy workers on 2 instances, no 1-second window holds 6 claims of a key', async () => {
  const kind = uniqueKind('rate')
  await setLimits(kind, { rate_per_key: { limit: 5, per_seconds: 1 } })
  // 4 keys with more jobs than the rate lets through in the run (about 20 each).
  const keys = ['r0', 'r1', 'r2', 'r3'].flatMap((key) => Array.from({ length: 60 }, () => key))
  await enqueueKeys(kind, shuffle(keys))

  const claimers = new Claimers()
  for (let i = 0; i < 10; i++) {
    const client = clientOf(i)
    const workerId = `r${i}`
    const body = claimBody(kind, workerId)
    claimers.loop(async () => {
      const claimed = i % 2 === 0 ? await client.claimMany({ ...body, max_jobs: 2 }) : [await client.claim(body)]
      for (const c of claimed) {
        if (!c) continue
        await hold()
        await client.complete(c.run.id, { worker_id: workerId, result: null })
      }
    })
  }
  await Bun.sleep(3200)
  await claimers.stop()
  expect(claimers.errors).toEqual([])

  // For each key, claim times in order: the 6th claim after any claim comes at
  // least a second after it.
  const crowded = await plain(sql<{ key: string; at: string; sixth: string }[]>`
    select key, at::text, sixth::text from (
      select j.concurrency_key as key, r.started_at as at,
             lead(r.started_at, 5) over (partition by j.concurrency_key order by r.started_at) as sixth
      from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id where j.kind = ${kind}
    ) x where sixth - at < interval '1 second'`)
  expect(crowded).toEqual([])

  // The rate was reached: every key got its 5 claims in the first second and
  // kept getting them, over two seconds and more.
  const perKey = await sql<{ key: string; n: number; span: number; first_second: number }[]>`
    with c as (
      select j.concurrency_key as key, r.started_at as at
      from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id where j.kind = ${kind}
    )
    select key, count(*)::int as n, extract(epoch from max(at) - min(at))::float as span,
           count(*) filter (where at < (select min(at) from c) + interval '1 second')::int as first_second
    from c group by key order by key`
  expect(perKey.map((k) => k.key)).toEqual(['r0', 'r1', 'r2', 'r3'])
  for (const k of perKey) {
    expect(k.first_second).toBe(5)
    expect(k.n).toBeGreaterThanOrEqual(15)
    expect(k.span).toBeGreaterThanOrEqual(2)
  }
  console.log(`rate 5/s per key, 10 workers: claims per key ${perKey.map((k) => `${k.key}=${k.n}`).join(' ')}`)
}, 60_000)

test('fairness: 20 keys of 10 jobs finish before a key of 10,000 enqueued first is 5% done', async () => {
  const kind = uniqueKind('fair')
  await setLimits(kind, { max_active_per_key: 1 })
  await enqueueKeys(
    kind,
    Array.from({ length: 10_000 }, () => 'big'),
  )
  const small = Array.from({ length: 20 }, (_, k) => `s${k}`)
  await enqueueKeys(
    kind,
    small.flatMap((key) => Array.from({ length: 10 }, () => key)),
  )

  const claimers = new Claimers()
  for (let i = 0; i < 4; i++) {
    const client = clientOf(i)
    const workerId = `f${i}`
    const body = claimBody(kind, workerId)
    claimers.loop(async () => {
      const c = await client.claim(body)
      if (!c) return
      await hold()
      await client.complete(c.run.id, { worker_id: workerId, result: null })
    })
  }
  const smallDone = async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from ${sql(jobsT)}
      where kind = ${kind} and concurrency_key <> 'big' and status = 'succeeded'`
    return row?.n === 200
  }
  try {
    await until('the small keys to finish', smallDone, 30_000, 20)
  } finally {
    await claimers.stop()
  }
  expect(claimers.errors).toEqual([])

  // How many of the big key's jobs had finished when the last small key's did.
  const [row] = await sql<{ big: number; big_after: number }[]>`
    with last_small as (
      select max(r.finished_at) as at from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id
      where j.kind = ${kind} and j.concurrency_key <> 'big'
    )
    select count(*) filter (where r.finished_at <= l.at)::int as big,
           count(*) filter (where r.finished_at > l.at)::int as big_after
    from ${sql(runsT)} r join ${sql(jobsT)} j on j.id = r.job_id, last_small l
    where j.kind = ${kind} and j.concurrency_key = 'big' and r.status = 'succeeded'`
  console.log(`fairness: the big key had ${row?.big} of 10,000 done when the 20 small keys were`)
  expect(row?.big).toBeGreaterThan(0)
  expect(row?.big).toBeLessThan(500)
  // Tighter than the issue asks: served in turn, the big key gets about one claim
  // per round of 21 keys (about 10 here); served whenever its one slot was free,
  // it would get about a third of the small keys' 200 (about 67).
  expect(row?.big).toBeLessThan(50)
}, 60_000)

test('a long-poll on instance B, held by a key at its limit, wakes when instance A ends the running job', async () => {
  const kind = uniqueKind('wake')
  await setLimits(kind, { max_active_per_key: 1 })
  await enqueueKeys(kind, ['k', 'k'])
  const first = await a.call('POST', '/claim', { kinds: [kind], worker_id: 'on-a' })
  expect(first.status).toBe(200)
  // B reads which kinds have limits at most a second old: let it see this one.
  await Bun.sleep(1100)

  let answeredAt = 0
  const waiting = clientOf(1)
    .claim({ kinds: [kind], worker_id: 'on-b', wait_seconds: 20 })
    .then((c) => {
      answeredAt = performance.now()
      return c
    })
  await until('B to wait', async () => b.deps.events.waiters.stats().sleeping > 0, 5000, 10)
  await Bun.sleep(300)
  expect(answeredAt).toBe(0)

  const completedAt = performance.now()
  const done = await a.call('POST', `/runs/${first.body.run.id}/complete`, { worker_id: 'on-a', result: null })
  expect(done.status).toBe(200)
  const second = await waiting
  expect(second?.job.concurrency_key).toBe('k')
  expect(second?.job.id).not.toBe(first.body.job.id)
  // Promptly: B's safety poll is off, so this was A's NOTIFY, not the 20 s deadline.
  const ms = answeredAt - completedAt
  console.log(`B's long-poll answered ${ms.toFixed(0)} ms after A's completion`)
  expect(ms).toBeLessThan(2000)
}, 30_000)

test("the runs' recorded start and end times show no more than 2 runs of a key at once either", async () => {
  // The issue's own check, on the runs of the first test. FAILS today: a limited
  // claim stamps runs.started_at with now(), its transaction's BEGIN, before it
  // locks the key's slot row (firstSlotWaited may wait there for other claimers)
  // and counts; under the first test's load a run's started_at came 300-750 ms
  // before its job became active, and the recorded times show up to 12-14 runs
  // of a key "at once" while the audit and the claimers never saw more than 2.
  // The same stamp goes into recent_claims: in activation time, 6 claims of a
  // key fell within 0.95-0.99 s in the rate test. Passes once the limited claim
  // stamps its runs (and recent_claims) with a clock read in its last statement.
  expect(manyClaimersKind).not.toBeNull()
  expect(await runOverlaps(manyClaimersKind as string, 2)).toEqual([])
})

test('a long-poll on B wakes on A ending a run even when B learned of the limits less than a second ago', async () => {
  // FAILS today (B answers at its 5 s deadline): a run end wakes waiters only for
  // kinds in the process's view of limited kinds (ClaimWaiters.heard, limited.has),
  // which a claim reloads when over a second old. B's view predates the limits,
  // so B's claim took the plain path (which skips limited kinds), went to wait, and
  // the end of A's run was not a wake for a kind B thinks unlimited. With the
  // default safety poll (5 s) B would wake at the next poll instead.
  const kind = uniqueKind('wake-new')
  // B reads the limited kinds now (its view then stays for a second) ...
  await Bun.sleep(1100)
  expect((await b.call('POST', '/claim', { kinds: [uniqueKind('other')], worker_id: 'on-b' })).status).toBe(204)
  // ... and A sets limits on a kind right after.
  await setLimits(kind, { max_active_per_key: 1 })
  await enqueueKeys(kind, ['k', 'k'])
  const first = await a.call('POST', '/claim', { kinds: [kind], worker_id: 'on-a' })
  expect(first.status).toBe(200)

  let answeredAt = 0
  const waiting = clientOf(1)
    .claim({ kinds: [kind], worker_id: 'on-b', wait_seconds: 5 })
    .then((c) => {
      answeredAt = performance.now()
      return c
    })
  await until('B to wait', async () => b.deps.events.waiters.stats().sleeping > 0, 5000, 10)
  const completedAt = performance.now()
  const done = await a.call('POST', `/runs/${first.body.run.id}/complete`, { worker_id: 'on-a', result: null })
  expect(done.status).toBe(200)
  const second = await waiting
  const ms = answeredAt - completedAt
  console.log(`B (fresh view) answered ${ms.toFixed(0)} ms after A's completion`)
  expect(second?.job.concurrency_key).toBe('k')
  expect(ms).toBeLessThan(2000)
}, 30_000)
