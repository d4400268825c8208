/**
 * Fast loading of a realistic backlog, for the plan test (tests/hot-plans.test.ts)
 * and the benchmark (bench/backlog.ts): INSERT … SELECT from generate_series, jobs
 * and their runs in one statement per chunk, rows shaped as the app's own
 * statements leave them (checkLoaderFidelity compares the two).
 *
 * Time line, oldest first (a FIFO queue whose backlog has grown for a day):
 *   finished   enqueued 8 d … 27 h ago, claimed 20 h later, completed seconds after
 *              (so every completion is more than an hour old);
 *   backoff    kind c only, enqueued 27 h … 26 h ago (the head of c's queue), failed
 *              2 h … 65 min ago with an explicit 4 h backoff: due in 2 … 3 h;
 *   active     enqueued just before 26 h ago, claimed 10 … 20 min ago, heartbeated since;
 *   pending    enqueued 26 h … 2 h ago, kinds a, b, c;
 *   tomorrow   enqueued 2 h … 65 min ago, scheduled a day ahead;
 *   wpending   the working set's pending jobs, enqueued 90 … 65 min ago;
 *   rare       5 succeeded jobs of kind `rare`, 9 days old.
 * Nothing but the working set's running runs changed in the last hour, so a replay
 * "from an hour ago" reads the same changes on empty and loaded tables.
 *
 * Ids look like the app's: `job_`/`run_` + a ULID-shaped 26 characters (10 of
 * time, Crockford base 32, then 3 of group and 13 of sequence), so they sort by
 * enqueue time and before any id minted now.
 */
import type { Sql } from '../../src/db/client'
import { dropTables, migrate } from '../../src/db/migrate'
import { type Tables, tablesFor } from '../../src/db/tables'
import { newJobId, newRunId } from '../../src/ids'
import { jobCancel, jobInsert } from '../../src/jobs/sql'
import { runComplete, runFail, runHeartbeat } from '../../src/runs/held-run-sql'
import { runClaim } from '../../src/runs/sql'

/** The near-empty working set both prefixes get: what the statements act on. */
export interface WorkingSet {
  /** Pending jobs per kind (a, b, c). */
  pendingPerKind: number
  /** Active jobs with running runs, fresh leases. */
  active: number
  /** Active jobs whose lease has expired (the reaper's). */
  expired: number
}

/** The backlog only the loaded prefix gets. */
export interface Backlog {
  finished: number
  /** Pending across kinds a, b, c. */
  pending: number
  /** Kind c, waiting out a retry backoff, at the head of c's queue. */
  backoff: number
  tomorrow: number
}

/** The benchmark's sizes (issue 9). */
export const BENCH_BACKLOG: Backlog = { finished: 1_000_000, pending: 300_000, backoff: 100_000, tomorrow: 10_000 }
/** The benchmark's working set. */
export const BENCH_WORKING_SET: WorkingSet = { pendingPerKind: 200, active: 200, expired: 20 }

/** The worker that holds the loaded running runs. */
export const LOADER_WORKER = 'loader-worker'
const RESULT = '{"ok": true}'
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const CHUNK = 100_000

/** SQL text: the bigint `expr` as `width` Crockford base-32 digits, most significant first. */
function b32Sql(expr: string, width: number): string {
  return Array.from(
    { length: width },
    (_, i) => `substr('${CROCKFORD}', ((${expr} >> ${5 * (width - 1 - i)}) & 31)::int + 1, 1)`,
  ).join(' || ')
}

/** `n` as `width` Crockford base-32 digits. */
function b32(n: number, width: number): string {
  let out = ''
  for (let i = 0; i < width; i++) out = CROCKFORD[Math.floor(n / 32 ** i) % 32] + out
  return out
}

const ms = (ts: string) => `(extract(epoch from ${ts}) * 1000)::bigint`

/** Spreads n = lo … hi evenly from `fromAgo` to `toAgo` seconds before now (oldest first). */
const spread = (fromAgo: number, toAgo: number, count: number) =>
  `now() - make_interval(secs => ${fromAgo} - (n - 1) * ${(fromAgo - toAgo) / Math.max(1, count)}::float8)`

const H = 3600
const KIND3 = `(array['a', 'b', 'c'])[n % 3 + 1]`

/**
 * One group of loaded jobs: SQL expressions over `n` (its sequence) and `enq` (its
 * enqueue time) for the job's columns, and over `j.*` (the inserted job) for its
 * one run's; no `run`, no run. Columns not named keep their defaults, as after an
 * enqueue.
 */
interface Group {
  name: string
  code: number
  enqueued: (count: number) => string
  job: Record<string, string>
  run?: Record<string, string>
}

const claimedJob = (started: string) => ({ attempt_count: '1', started_at: started })
const finishedRun = {
  attempt: '1',
  worker_id: `'${LOADER_WORKER}'`,
  status: `case when j.status = 'succeeded' then 'succeeded' else 'failed' end`,
  result: `case when j.status = 'succeeded' then '${RESULT}'::jsonb end`,
  error: `case j.status when 'failed' then 'boom' when 'cancelled' then 'cancelled' end`,
  started_at: 'j.started_at',
  created_at: 'j.started_at',
  finished_at: 'j.completed_at',
  updated_at: 'j.completed_at',
}
/** Terminal by n: 90% succeeded, 7% failed, 3% cancelled (while running). */
const finishedJob = (kind: string) => {
  const status = `case when n % 100 < 90 then 'succeeded' when n % 100 < 97 then 'failed' else 'cancelled' end`
  const done = `enq + interval '20 hours' + make_interval(secs => n % 60 + 1)`
  return {
    kind,
    status,
    cancel_requested: `n % 100 >= 97`,
    ...claimedJob(`enq + interval '20 hours'`),
    result: `case when n % 100 < 90 then '${RESULT}'::jsonb end`,
    completed_at: done,
    updated_at: done,
  }
}

const GROUPS = {
  finished: {
    name: 'finished',
    code: 1,
    enqueued: (count) => spread(8 * 24 * H, 27 * H, count),
    job: finishedJob(KIND3),
    run: finishedRun,
  },
  rare: {
    name: 'rare',
    code: 2,
    enqueued: (count) => spread(9 * 24 * H, 9 * 24 * H - 300, count),
    job: finishedJob(`'rare'`),
    run: finishedRun,
  },
  backoff: {
    name: 'backoff',
    code: 3,
    enqueued: (count) => spread(27 * H, 26 * H + 600, count),
    job: {
      kind: `'c'`,
      ...claimedJob(`enq + interval '1 minute'`),
      // Failed between 2 h and 65 min ago (n spreads it), with a 4 h backoff.
      updated_at: `now() - make_interval(secs => ${2 * H} - (n % 3300))`,
      scheduled_at: `now() - make_interval(secs => ${2 * H} - (n % 3300)) + interval '4 hours'`,
    },
    run: {
      attempt: '1',
      worker_id: `'${LOADER_WORKER}'`,
      status: `'failed'`,
      error: `'boom'`,
      started_at: 'j.started_at',
      created_at: 'j.started_at',
      finished_at: 'j.updated_at',
      updated_at: 'j.updated_at',
    },
  },
  active: {
    name: 'active',
    code: 4,
    enqueued: (count) => spread(26 * H + 600, 26 * H + 60, count),
    job: {
      kind: KIND3,
      status: `'active'`,
      ...claimedJob(`now() - interval '10 minutes'`),
      updated_at: `now() - interval '10 minutes'`,
    },
    run: {
      attempt: '1',
      worker_id: `'${LOADER_WORKER}'`,
      status: `'running'`,
      started_at: 'j.started_at',
      created_at: 'j.started_at',
      // Heartbeated a minute ago with a lease that outlasts any benchmark.
      updated_at: `now() - interval '1 minute'`,
      lease_expires_at: `now() - interval '1 minute' + interval '2 hours'`,
    },
  },
  expired: {
    name: 'expired',
    code: 5,
    enqueued: (count) => spread(26 * H + 60, 26 * H + 30, count),
    job: {
      kind: KIND3,
      status: `'active'`,
      ...claimedJob(`now() - interval '20 minutes'`),
      updated_at: `now() - interval '20 minutes'`,
    },
    run: {
      attempt: '1',
      worker_id: `'${LOADER_WORKER}'`,
      status: `'running'`,
      started_at: 'j.started_at',
      created_at: 'j.started_at',
      // Last heartbeat 10 minutes ago with a 5-minute lease.
      updated_at: `now() - interval '10 minutes'`,
      lease_expires_at: `now() - interval '5 minutes'`,
    },
  },
  pending: {
    name: 'pending',
    code: 6,
    enqueued: (count) => spread(26 * H, 2 * H, count),
    job: { kind: KIND3, updated_at: 'enq' },
  },
  tomorrow: {
    name: 'tomorrow',
    code: 7,
    enqueued: (count) => spread(2 * H, 3900, count),
    job: { kind: KIND3, updated_at: 'enq', scheduled_at: `now() + interval '1 day' + make_interval(secs => n % 3600)` },
  },
  wpending: {
    name: 'wpending',
    code: 8,
    enqueued: (count) => spread(5400, 3900, count),
    job: { kind: KIND3, updated_at: 'enq' },
  },
} satisfies Record<string, Group>

/** Inserts rows n = lo … hi of a group of `count` (jobs and their runs), in one statement. */
async function insertRange(sql: Sql, t: Tables, g: Group, count: number, lo: number, hi: number): Promise<void> {
  const jobCols = {
    id: `'job_' || ${b32Sql(ms('enq'), 10)} || '${b32(g.code, 3)}' || ${b32Sql('n::bigint', 13)}`,
    params: `jsonb_build_object('n', n)`,
    max_attempts: '3',
    enqueued_at: 'enq',
    ...g.job,
  }
  const insertJobs = `
    insert into "${t.jobs}" (${Object.keys(jobCols).join(', ')})
    select ${Object.values(jobCols).join(', ')}
    from (select n, ${g.enqueued(count)} as enq from generate_series(${lo}, ${hi}) as n) s
    order by n`
  if (!g.run) {
    await sql.unsafe(insertJobs)
    return
  }
  const runCols = {
    // The run's own time (its claim) and the job's group and sequence: unique, ULID-shaped.
    id: `'run_' || ${b32Sql(ms('j.started_at'), 10)} || substr(j.id, 15)`,
    job_id: 'j.id',
    ...g.run,
  }
  await sql.unsafe(`
    with j as (${insertJobs} returning *)
    insert into "${t.runs}" (${Object.keys(runCols).join(', ')})
    select ${Object.values(runCols).join(', ')} from j`)
}

/** Inserts a whole group in chunks; `onChunk` hears progress. */
async function insertGroup(
  sql: Sql,
  t: Tables,
  g: Group,
  count: number,
  onChunk?: (group: string, done: number, count: number) => void,
): Promise<void> {
  for (let lo = 1; lo <= count; lo += CHUNK) {
    const hi = Math.min(count, lo + CHUNK - 1)
    await insertRange(sql, t, g, count, lo, hi)
    onChunk?.(g.name, hi, count)
  }
}

/** Loads the working set: pending per kind, active (fresh and expired), and 5 `rare` finished jobs. */
export async function loadWorkingSet(sql: Sql, t: Tables, w: WorkingSet): Promise<void> {
  await insertGroup(sql, t, GROUPS.rare, 5)
  await insertGroup(sql, t, GROUPS.active, w.active)
  await insertGroup(sql, t, GROUPS.expired, w.expired)
  await insertGroup(sql, t, GROUPS.wpending, w.pendingPerKind * 3)
}

/** Loads the backlog (finished, backoff, pending, tomorrow); `onChunk` hears progress. */
export async function loadBacklog(
  sql: Sql,
  t: Tables,
  b: Backlog,
  onChunk?: (group: string, done: number, count: number) => void,
): Promise<void> {
  await insertGroup(sql, t, GROUPS.finished, b.finished, onChunk)
  await insertGroup(sql, t, GROUPS.backoff, b.backoff, onChunk)
  await insertGroup(sql, t, GROUPS.pending, b.pending, onChunk)
  await insertGroup(sql, t, GROUPS.tomorrow, b.tomorrow, onChunk)
}

/**
 * VACUUM ANALYZE both tables, as autovacuum would have by the time a backlog this
 * old exists: statistics for the planner, and a visibility map for index-only scans.
 */
export async function vacuumAnalyze(sql: Sql, t: Tables): Promise<void> {
  await sql.unsafe(`vacuum analyze "${t.jobs}"`)
  await sql.unsafe(`vacuum analyze "${t.runs}"`)
}

/** Row counts by status, for reports. */
export async function countByStatus(sql: Sql, t: Tables): Promise<Record<string, number>> {
  const rows = await sql<{ status: string; n: number }[]>`
    select status || case when status = 'pending' and scheduled_at > now() then ' (not due)' else '' end as status,
           count(*)::int as n
    from ${sql(t.jobs)} group by 1 order by 1`
  return Object.fromEntries(rows.map((r) => [r.status, r.n]))
}

// ---------------------------------------------------------------------------
// Fidelity: does the loader write what the statements write?

/** A job and its runs flattened to `job.col` / `run.col`, plus which of them are timestamps. */
interface Flat {
  values: Record<string, unknown>
  stamps: Set<string>
}

/** Microseconds since the epoch of a Postgres jsonb timestamp ("…:05.123456+00:00"). */
function micros(stamp: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(stamp)
  if (!m) return Number.NaN
  return Date.parse(`${m[1]}${m[3] || 'Z'}`) * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6))
}

async function timestampColumns(sql: Sql, table: string): Promise<string[]> {
  const rows = await sql<{ column_name: string }[]>`
    select column_name from information_schema.columns
    where table_schema = current_schema() and table_name = ${table}
      and data_type in ('timestamp with time zone', 'timestamp without time zone')`
  return rows.map((r) => r.column_name)
}

async function flatten(sql: Sql, t: Tables, jobId: string): Promise<Flat> {
  const [job] = await sql<{ row: Record<string, unknown> }[]>`
    select to_jsonb(j) as row from ${sql(t.jobs)} j where id = ${jobId}`
  const runs = await sql<{ row: Record<string, unknown> }[]>`
    select to_jsonb(r) as row from ${sql(t.runs)} r where job_id = ${jobId} order by attempt`
  const values: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(job?.row ?? {})) values[`job.${k}`] = v
  runs.forEach((r, i) => {
    for (const [k, v] of Object.entries(r.row)) values[`run${i || ''}.${k}`] = v
  })
  const stamps = new Set((await timestampColumns(sql, t.jobs)).map((c) => `job.${c}`))
  for (const c of await timestampColumns(sql, t.runs)) {
    for (let i = 0; i < runs.length; i++) stamps.add(`run${i || ''}.${c}`)
  }
  return { values, stamps }
}

/** Keys whose values are the loader's to choose (identity, payload, kind). */
const OWN_KEYS = new Set(['job.id', 'job.params', 'job.kind', 'run.id', 'run.job_id'])

/**
 * Differences between a job the statements made and one the loader made: the
 * columns present, each non-time value, whether each timestamp is set, and the
 * order of every pair of timestamps (a retry that moved enqueued_at, or a new
 * column the statements fill, shows up here).
 */
function compare(group: string, app: Flat, loader: Flat): string[] {
  const out: string[] = []
  const keys = [...new Set([...Object.keys(app.values), ...Object.keys(loader.values)])].sort()
  for (const k of keys) {
    if (OWN_KEYS.has(k)) continue
    if (!(k in app.values) || !(k in loader.values)) {
      out.push(`${group}: ${k} present in ${k in app.values ? 'app' : 'loader'} rows only`)
      continue
    }
    const a = app.values[k]
    const l = loader.values[k]
    if (app.stamps.has(k)) {
      if ((a === null) !== (l === null)) out.push(`${group}: ${k} is ${a === null ? 'null' : 'set'} in app rows`)
    } else if (JSON.stringify(a) !== JSON.stringify(l)) {
      out.push(`${group}: ${k} app=${JSON.stringify(a)} loader=${JSON.stringify(l)}`)
    }
  }
  const stamps = keys.filter((k) => app.stamps.has(k) && app.values[k] != null && loader.values[k] != null)
  const order = (f: Flat, x: string, y: string) => Math.sign(micros(String(f.values[x])) - micros(String(f.values[y])))
  for (let i = 0; i < stamps.length; i++) {
    for (let j = i + 1; j < stamps.length; j++) {
      const [x, y] = [stamps[i] as string, stamps[j] as string]
      const [a, l] = [order(app, x, y), order(loader, x, y)]
      const word = (s: number) => (s < 0 ? 'before' : s > 0 ? 'after' : 'equal to')
      if (a !== l) out.push(`${group}: ${x} is ${word(a)} ${y} in app rows, ${word(l)} in loader rows`)
    }
  }
  return out
}

/** A fresh job of `kind` enqueued through jobInsert; answers its id. */
async function enqueue(sql: Sql, t: Tables, kind: string, scheduledAt: string | null = null): Promise<string> {
  const id = newJobId()
  await jobInsert(sql, t, {
    id,
    kind,
    queue: 'default',
    service: '',
    idempotencyKey: null,
    params: {},
    priority: 0,
    maxAttempts: 3,
    scheduledAt,
  })
  return id
}

/** Claims the one pending job of `kind` as LOADER_WORKER; answers its run id. */
async function claim(sql: Sql, t: Tables, kind: string): Promise<string> {
  await Bun.sleep(3)
  const [c] = await runClaim(sql, t, { kinds: [kind], workerId: LOADER_WORKER, leaseSec: 300, runIds: [newRunId()] })
  if (!c) throw new Error(`fidelity: nothing to claim for ${kind}`)
  await Bun.sleep(3)
  return c.run.id
}

const failWith = (error: string, retryable: boolean, backoffSec: number | null) => ({
  workerId: LOADER_WORKER,
  error,
  retryable,
  backoffSec,
  result: undefined,
})

/** Makes one job of each group through the statements (enqueue, claim, complete, fail, cancel, heartbeat). */
async function appSamples(sql: Sql, t: Tables): Promise<Map<string, string>> {
  const made = new Map<string, string>()
  const kind = (g: string) => `fid-${g}`
  made.set('pending', await enqueue(sql, t, kind('pending')))
  made.set('tomorrow', await enqueue(sql, t, kind('tomorrow'), new Date(Date.now() + 86_400_000).toISOString()))
  for (const g of ['succeeded', 'failed', 'cancelled', 'backoff', 'active'] as const) {
    const id = await enqueue(sql, t, kind(g))
    const runId = await claim(sql, t, kind(g))
    const target = { runId }
    if (g === 'succeeded') await runComplete(sql, t, target, { workerId: LOADER_WORKER, result: JSON.parse(RESULT) })
    if (g === 'failed') await runFail(sql, t, target, failWith('boom', false, null))
    if (g === 'backoff') await runFail(sql, t, target, failWith('boom', true, 4 * H))
    if (g === 'active') await runHeartbeat(sql, t, target, { workerId: LOADER_WORKER, leaseSec: 300 })
    if (g === 'cancelled') {
      await jobCancel(sql, t, id)
      await Bun.sleep(3)
      await runFail(sql, t, target, failWith('cancelled', false, null))
    }
    made.set(g, id)
  }
  return made
}

/** One loader job per group the app samples cover (finished by status: n picks the status). */
async function loaderSamples(sql: Sql, t: Tables): Promise<Map<string, string>> {
  const one = async (g: Group, n: number, count = 100): Promise<string> => {
    await insertRange(sql, t, g, count, n, n)
    const [row] = await sql<{ id: string }[]>`
      select id from ${sql(t.jobs)} where substr(id, 15) = ${b32(g.code, 3) + b32(n, 13)}`
    if (!row) throw new Error(`fidelity: the loader wrote no ${g.name} job`)
    return row.id
  }
  return new Map([
    ['pending', await one(GROUPS.pending, 1)],
    ['tomorrow', await one(GROUPS.tomorrow, 1)],
    ['succeeded', await one(GROUPS.finished, 1)],
    ['failed', await one(GROUPS.finished, 95)],
    ['cancelled', await one(GROUPS.finished, 98)],
    ['backoff', await one(GROUPS.backoff, 1)],
    ['active', await one(GROUPS.active, 1)],
  ])
}

/**
 * Makes one job of each kind of row through the app's statements and one through
 * the loader, on two scratch prefixes, and answers every difference (empty: the
 * loader still writes what the statements write). Run it whenever the statements
 * or the migrations change; a difference means the loaded backlog no longer looks
 * like the app's and its plans would mislead.
 */
export async function checkLoaderFidelity(sql: Sql, prefixBase: string): Promise<string[]> {
  const appT = tablesFor(`${prefixBase}fa_`)
  const loaderT = tablesFor(`${prefixBase}fl_`)
  try {
    await migrate(sql, appT)
    await migrate(sql, loaderT)
    const app = await appSamples(sql, appT)
    const loader = await loaderSamples(sql, loaderT)
    const out: string[] = []
    for (const [group, appId] of app) {
      const loaderId = loader.get(group)
      if (!loaderId) continue
      out.push(...compare(group, await flatten(sql, appT, appId), await flatten(sql, loaderT, loaderId)))
    }
    return out
  } finally {
    await dropTables(sql, appT)
    await dropTables(sql, loaderT)
  }
}
