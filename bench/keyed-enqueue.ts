/**
 * What claiming a forever key in job_keys (issue 14) costs a keyed enqueue:
 * jobInsert as it is against the statement it replaced (kept below, word for
 * word), in alternating rounds of ROUND fresh keys each on one connection, so
 * both meet the same table sizes and cache. Reports the Postgres backend's CPU
 * (utime + stime from /proc, when the server is local) and the wall time per
 * statement, and each side's median. `bun bench/keyed-enqueue.ts [rounds] [per-round]`
 *
 * Measured here (embedded Postgres, 10 rounds of 3,000): backend CPU 307 → 347 µs
 * per statement (×1.13), wall 622 → 691 µs (×1.11). The difference is the key's
 * own row and index entry in job_keys; the partial unique index on jobs, kept as
 * a second guard, is still written too.
 */
import { readFileSync } from 'node:fs'
import { createSql, type Queryable } from '../src/db/client'
import { dropTables, migrate } from '../src/db/migrate'
import { type Tables, tablesFor } from '../src/db/tables'
import { newJobId } from '../src/ids'
import { jobColumns } from '../src/jobs/columns'
import { type JobInsert, jobInsert } from '../src/jobs/sql'
import { benchDatabase } from './support'

const ROUNDS = Number(process.argv[2] ?? 8)
const ROUND = Number(process.argv[3] ?? 3000)

/** The keyed insert before job_keys (migrations/008's statement), for comparison only. */
async function jobInsertBefore(sql: Queryable, t: Tables, j: JobInsert) {
  const rows = await sql`
    with inserted as (
      insert into ${sql(t.jobs)}
        (id, kind, queue, service, idempotency_key, concurrency_key, params, priority, max_attempts, scheduled_at)
      values (${j.id}, ${j.kind}, ${j.queue}, ${j.service}, ${j.idempotencyKey}, ${j.concurrencyKey},
              ${sql.json(j.params as never)}, ${j.priority}, ${j.maxAttempts}, ${j.scheduledAt}::timestamptz)
      on conflict (kind, idempotency_key) where idempotency_key is not null and unique_while_active is null do nothing
      returning ${jobColumns(sql)}
    )
    select true as created, * from inserted
    union all
    select false as created, ${jobColumns(sql)} from ${sql(t.jobs)}
    where kind = ${j.kind} and idempotency_key = ${j.idempotencyKey} and unique_while_active is null
      and not exists (select 1 from inserted)`
  return rows[0] ?? null
}

/** utime + stime of a local process in µs, or null when it is not ours to read. */
function cpuUs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 10_000
  } catch {
    return null
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const db = await benchDatabase()
const sql = createSql({ url: db.url, max: 1 })
const tables = tablesFor(`bench_keys_${process.pid}_`)
await migrate(sql, tables)
const [{ pid } = { pid: 0 }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`
const insertOf = (kind: string, key: string): JobInsert => ({
  id: newJobId(),
  kind,
  queue: 'default',
  service: '',
  idempotencyKey: key,
  concurrencyKey: null,
  params: { n: 1 },
  priority: 0,
  maxAttempts: 1,
  scheduledAt: null,
  flowControlled: false,
})

const sides = { before: jobInsertBefore, after: jobInsert } as const
const results: Record<keyof typeof sides, { cpu: number[]; wall: number[] }> = {
  before: { cpu: [], wall: [] },
  after: { cpu: [], wall: [] },
}
// A warm-up round each, not counted: prepared statements, first pages.
for (let round = -1; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)
  for (const side of order) {
    const kind = `bench-${side}-${round}`
    const cpu0 = cpuUs(pid)
    const t0 = performance.now()
    for (let i = 0; i < ROUND; i++) await sides[side](sql, tables, insertOf(kind, `key-${i}`))
    const wall = ((performance.now() - t0) * 1000) / ROUND
    const cpu1 = cpuUs(pid)
    if (round < 0) continue
    results[side].wall.push(wall)
    if (cpu0 !== null && cpu1 !== null) results[side].cpu.push((cpu1 - cpu0) / ROUND)
  }
}
for (const side of ['before', 'after'] as const) {
  const r = results[side]
  console.log(
    `${side}: backend CPU µs/statement ${r.cpu.map((x) => x.toFixed(0)).join(' ')} (median ${median(r.cpu).toFixed(0)}); ` +
      `wall µs ${r.wall.map((x) => x.toFixed(0)).join(' ')} (median ${median(r.wall).toFixed(0)})`,
  )
}
const ratio = (f: (s: { cpu: number[]; wall: number[] }) => number[]) =>
  (median(f(results.after)) / median(f(results.before))).toFixed(2)
console.log(`after/before: backend CPU ×${ratio((r) => r.cpu)}, wall ×${ratio((r) => r.wall)}`)
await dropTables(sql, tables)
await sql.end()
await db.stop()
