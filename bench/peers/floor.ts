/**
 * The raw-SQL floor: postgres.js on Bun against one table with a single partial
 * index and no run rows. Enqueue is one insert, claim is an UPDATE of rows picked
 * with FOR UPDATE SKIP LOCKED, complete deletes. No leases, retries, history or
 * HTTP: what a queue costs when it does nothing else.
 *
 *   bun bench/peers/floor.ts <scenario>   (the driver, run.ts, sets the environment)
 */
import postgres from 'postgres'
import { childArgs, forEachConcurrent, runChild, throughput, timed, watch } from './common'

const args = childArgs()
const { sizes } = args
const base = { system: 'floor', variant: args.variant, scenario: args.scenario }

await runChild(base, async () => {
  if (args.scenario === 'latency') return { ...base, status: 'skipped', note: 'no worker to wake: not measured' }
  const sql = postgres(args.dbUrl, { max: sizes.concurrency, onnotice: () => {} })
  const table = `floor_${args.tag}`
  const t = sql(table)
  await sql`create table ${t} (
    id bigint generated always as identity primary key,
    kind text not null,
    payload jsonb not null,
    status smallint not null default 0,
    run_at timestamptz not null default now(),
    locked_at timestamptz
  )`
  await sql`create index ${sql(`${table}_pending`)} on ${t} (kind, id) where status = 0`

  const enqueueOne = (i: number) =>
    sql`insert into ${t} (kind, payload) values ('bench', ${sql.json({ n: i })}) returning id`
  const enqueueMany = (from: number, count: number) => {
    const payloads = Array.from({ length: count }, (_, k) => ({ n: from + k }))
    return sql`insert into ${t} (kind, payload)
      select 'bench', p from jsonb_array_elements(${sql.json(payloads)}) p returning id`
  }
  const claim = (limit: number) => sql<{ id: string; payload: unknown }[]>`
    update ${t} set status = 1, locked_at = now()
    where id in (
      select id from ${t} where status = 0 and kind = 'bench' order by id limit ${limit} for update skip locked
    )
    returning id, payload`
  const fill = async (jobs: number) => {
    const calls = Math.ceil(jobs / sizes.bulkSize)
    await forEachConcurrent(calls, 4, (c) =>
      enqueueMany(c * sizes.bulkSize, Math.min(sizes.bulkSize, jobs - c * sizes.bulkSize)),
    )
  }

  try {
    switch (args.scenario) {
      case 'enqueue_single': {
        await forEachConcurrent(sizes.warmup, sizes.concurrency, enqueueOne)
        const done = watch(['self'])
        const sec = await forEachConcurrent(sizes.enqueueSingle, sizes.concurrency, enqueueOne)
        return throughput({ ...base, measured: 'bench process (postgres.js)' }, sizes.enqueueSingle, sec, done()[0]!)
      }
      case 'enqueue_bulk': {
        await enqueueMany(0, sizes.bulkSize)
        const done = watch(['self'])
        const sec = await forEachConcurrent(sizes.bulkCalls, sizes.concurrency, (c) =>
          enqueueMany(c * sizes.bulkSize, sizes.bulkSize),
        )
        const jobs = sizes.bulkCalls * sizes.bulkSize
        return throughput({ ...base, measured: 'bench process (postgres.js)' }, jobs, sec, done()[0]!)
      }
      case 'process_single':
      case 'process_batched': {
        const batched = args.scenario === 'process_batched'
        const jobs = batched ? sizes.processBatched : sizes.processSingle
        const limit = batched ? sizes.batch : 1
        await fill(jobs)
        let processed = 0
        const done = watch(['self'])
        const sec = await timed(sizes.concurrency, async () => {
          const rows = await claim(limit)
          if (rows.length === 0) return false
          await sql`delete from ${t} where id = any(${rows.map((r) => r.id)}::bigint[])`
          processed += rows.length
          return true
        })
        if (processed !== jobs) throw new Error(`processed ${processed} of ${jobs}`)
        return throughput({ ...base, measured: 'bench process (postgres.js)' }, jobs, sec, done()[0]!)
      }
    }
    throw new Error(`unhandled scenario ${args.scenario}`)
  } finally {
    await sql`drop table if exists ${t}`
    await sql.end({ timeout: 5 })
  }
})
