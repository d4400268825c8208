/**
 * The live layer's costs and latencies, two Foreman instances on one database:
 *  1. enqueue throughput with cross-instance events off (in-process only) and on
 *     (coalesced NOTIFY), alternating rounds in one process;
 *  2. pickup latency: enqueue → a waiting long-poll claimer's answer, on the same
 *     instance and across instances (p50/p99 over N jobs);
 *  3. change → SSE event latency (heartbeats), same instance and across;
 *  4. 1,000 concurrent SSE subscribers: memory and database connections, and the
 *     time for one change to each of their jobs to reach all of them.
 *
 *   BUN_CONFIG_MAX_HTTP_REQUESTS=4096 bun bench/events.ts [jobs=500] [enqueue-only]
 *   (or: npm run bench:events). Bun's fetch holds 256 connections per process by
 *   default; 1,000 open streams need more.
 */
import { benchDatabase, percentile, post, readSse, round, startInstance, timed } from './support'

const JOBS = Number(process.argv[2] ?? 500)
const db = await benchDatabase()
const stamp = Date.now().toString(36)
const report: Record<string, unknown> = {
  machine: `${navigator.hardwareConcurrency} cores, shared; figures vary run to run`,
}

// 1. Enqueue throughput: events off (in-process only), on (coalesced NOTIFY, no
// other instance listening), and on with a second instance listening IN THIS
// PROCESS (its decoding and dispatch then share the same two cores).
{
  const off = await startInstance(db.url, `bench_off_${stamp}_`, false)
  const on = await startInstance(db.url, `bench_on_${stamp}_`, true)
  const onHeard = await startInstance(db.url, `bench_onl_${stamp}_`, true)
  const listener = await startInstance(db.url, `bench_onl_${stamp}_`, true)
  let heard = 0
  listener.events.hub.subscribe((e) => {
    if (e.type === 'changes') heard += e.changes.length
  })
  const enqueueRate = async (base: string) => {
    let left = 2000
    const sec = await timed(16, async () => {
      if (left-- <= 0) return false
      const res = await post(`${base}/jobs`, { kind: 'throughput' })
      await res.text()
      return true
    })
    return 2000 / sec
  }
  const configs = { off, on, on_with_listener_in_process: onHeard }
  const rates = Object.fromEntries(Object.keys(configs).map((k) => [k, [] as number[]])) as Record<
    keyof typeof configs,
    number[]
  >
  // Warm each up (JIT, prepared statements on each pool), then alternate rounds.
  for (const instance of Object.values(configs)) await enqueueRate(instance.base)
  for (let round = 0; round < 5; round++) {
    for (const [name, instance] of Object.entries(configs))
      rates[name as keyof typeof configs].push(await enqueueRate(instance.base))
  }
  await Bun.sleep(500)
  const median = (xs: number[]) => Math.round(percentile(xs, 50))
  report.enqueue = {
    jobs_per_sec_median_of_5: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)])),
    on_vs_off_ratio: round(median(rates.on) / median(rates.off), 3),
    on_with_listener_vs_off_ratio: round(median(rates.on_with_listener_in_process) / median(rates.off), 3),
    rounds: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, v.map(Math.round)])),
    notify_payloads_sent: on.events.hub.stats().notifies + onHeard.events.hub.stats().notifies,
    changes_published: on.events.hub.stats().published + onHeard.events.hub.stats().published,
    changes_heard_by_listener: heard,
  }
  await listener.close(false)
  await Promise.all([off.close(true), on.close(true), onHeard.close(true)])
}
if (process.argv[3] === 'enqueue-only') {
  console.log(JSON.stringify(report, null, 2))
  process.exit(0)
}

// 2–4 on two instances sharing one prefix.
const a = await startInstance(db.url, `bench_live_${stamp}_`)
const b = await startInstance(db.url, `bench_live_${stamp}_`)
try {
  // 2. Pickup latency.
  const pickup = async (producer: string, claimer: string, label: string) => {
    const latencies: number[] = []
    for (let i = 0; i < JOBS; i++) {
      const kind = `pickup-${label}`
      const claiming = post(`${claimer}/claim`, { kinds: [kind], worker_id: 'w', wait_seconds: 30 })
      await Bun.sleep(2) // let the claimer reach its wait
      const started = performance.now()
      await (await post(`${producer}/jobs`, { kind })).text()
      const res = await claiming
      if (res.status !== 200) throw new Error(`pickup answered ${res.status}`)
      await res.text()
      latencies.push(performance.now() - started)
    }
    return { p50_ms: round(percentile(latencies, 50)), p99_ms: round(percentile(latencies, 99)) }
  }
  report.pickup_latency = {
    same_instance: await pickup(a.base, a.base, 'same'),
    across_instances: await pickup(a.base, b.base, 'across'),
  }

  // 3. Change → SSE latency.
  const sseLatency = async (actor: string, watcher: string, label: string) => {
    const kind = `sse-${label}`
    const job = (await (await post(`${actor}/jobs`, { kind })).json()) as { id: string }
    const { run } = (await (await post(`${actor}/claim`, { kinds: [kind], worker_id: 'w' })).json()) as {
      run: { id: string }
    }
    const abort = new AbortController()
    let waiting: ((progress: number) => void) | undefined
    const reading = readSse(
      `${watcher}/events/${job.id}`,
      (_event, data) => {
        const progress = (JSON.parse(data) as { current_run: { progress_current: number | null } | null }).current_run
          ?.progress_current
        if (typeof progress === 'number') waiting?.(progress)
      },
      abort.signal,
    )
    await Bun.sleep(200)
    const latencies: number[] = []
    for (let i = 1; i <= 200; i++) {
      const arrived = new Promise<void>((resolve) => {
        waiting = (progress) => progress === i && resolve()
      })
      const started = performance.now()
      await (await post(`${actor}/runs/${run.id}/heartbeat`, { worker_id: 'w', progress_current: i })).text()
      await arrived
      latencies.push(performance.now() - started)
    }
    abort.abort()
    await reading
    return { p50_ms: round(percentile(latencies, 50)), p99_ms: round(percentile(latencies, 99)) }
  }
  report.sse_latency = {
    same_instance: await sseLatency(a.base, a.base, 'same'),
    across_instances: await sseLatency(a.base, b.base, 'across'),
  }

  // 4. 1,000 concurrent subscribers.
  const connections = async () => {
    const [row] = await a.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`
    return row?.n ?? 0
  }
  const ids: string[] = []
  for (let i = 0; i < 1000; i += 50) {
    const batch = await Promise.all(
      Array.from(
        { length: 50 },
        async () => ((await (await post(`${a.base}/jobs`, { kind: 'watched' })).json()) as { id: string }).id,
      ),
    )
    ids.push(...batch)
  }
  Bun.gc(true)
  const rssBefore = process.memoryUsage().rss
  const connectionsBefore = await connections()
  const abort = new AbortController()
  let received = 0
  let allTerminal: () => void = () => {}
  const terminal = new Promise<void>((resolve) => {
    allTerminal = resolve
  })
  let terminalCount = 0
  const readers = ids.map((id) =>
    readSse(
      `${a.base}/events/${id}`,
      (_event, data) => {
        received++
        if ((JSON.parse(data) as { status: string }).status === 'cancelled' && ++terminalCount === ids.length)
          allTerminal()
      },
      abort.signal,
    ),
  )
  while (received < ids.length) await Bun.sleep(20)
  Bun.gc(true)
  const rssOpen = process.memoryUsage().rss
  const connectionsOpen = await connections()
  const started = performance.now()
  await Promise.all(ids.map((id) => post(`${b.base}/jobs/${id}/cancel`, {}).then((r) => r.text())))
  await terminal
  const fanOutMs = performance.now() - started
  abort.abort()
  await Promise.allSettled(readers)
  report.subscribers_1000 = {
    // Client and server share the process: the delta includes the 1,000 client-side fetch streams.
    rss_delta_mb_client_and_server: round((rssOpen - rssBefore) / 2 ** 20, 1),
    db_connections_before: connectionsBefore,
    db_connections_with_1000_streams: connectionsOpen,
    cancel_1000_jobs_on_other_instance_until_all_streams_saw_it_ms: Math.round(fanOutMs),
    streams_open_after_disconnect: a.events.streams.open,
  }
} finally {
  await b.close(false)
  await a.close(true)
  await db.stop()
}
console.log(JSON.stringify(report, null, 2))
