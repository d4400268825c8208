/**
 * The loaded backlog's rows, group by group, as SQL over generate_series, and the
 * statement that inserts a range of one group (jobs and their runs together).
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
import type { Tables } from '../../src/db/tables'

/** The worker that holds the loaded running runs. */
export const LOADER_WORKER = 'loader-worker'
/** The result of every succeeded job, loaded or made by the statements. */
export const RESULT = '{"ok": true}'
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** SQL text: the bigint `expr` as `width` Crockford base-32 digits, most significant first. */
function b32Sql(expr: string, width: number): string {
  return Array.from(
    { length: width },
    (_, i) => `substr('${CROCKFORD}', ((${expr} >> ${5 * (width - 1 - i)}) & 31)::int + 1, 1)`,
  ).join(' || ')
}

/** `n` as `width` Crockford base-32 digits. */
export function b32(n: number, width: number): string {
  let out = ''
  for (let i = 0; i < width; i++) out = CROCKFORD[Math.floor(n / 32 ** i) % 32] + out
  return out
}

const ms = (ts: string) => `(extract(epoch from ${ts}) * 1000)::bigint`

/** Spreads n = lo … hi evenly from `fromAgo` to `toAgo` seconds before now (oldest first). */
const spread = (fromAgo: number, toAgo: number, count: number) =>
  `now() - make_interval(secs => ${fromAgo} - (n - 1) * ${(fromAgo - toAgo) / Math.max(1, count)}::float8)`

/** An hour in seconds. */
export const H = 3600
const KIND3 = `(array['a', 'b', 'c'])[n % 3 + 1]`

/**
 * One group of loaded jobs: SQL expressions over `n` (its sequence) and `enq` (its
 * enqueue time) for the job's columns, and over `j.*` (the inserted job) for its
 * one run's; no `run`, no run. Columns not named keep their defaults, as after an
 * enqueue.
 */
export interface Group {
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

/** Every group by name: when its jobs were enqueued, and their columns and their run's. */
export const GROUPS = {
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
export async function insertRange(sql: Sql, t: Tables, g: Group, count: number, lo: number, hi: number): Promise<void> {
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
