/**
 * Fidelity: does the loader write what the statements write? One job of each kind
 * of row made through the app's statements and one through the loader, compared.
 */
import type { Sql } from '../../src/db/client'
import { dropTables, migrate } from '../../src/db/migrate'
import { type Tables, tablesFor } from '../../src/db/tables'
import { newJobId, newRunId } from '../../src/ids'
import { jobCancel, jobInsert } from '../../src/jobs/sql'
import { runClaim } from '../../src/runs/sql/claim'
import { runComplete, runFail, runHeartbeat } from '../../src/runs/sql/held'
import { b32, GROUPS, type Group, H, insertRange, LOADER_WORKER, RESULT } from './backlog-groups'

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
    concurrencyKey: null,
    flowControlled: false,
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
