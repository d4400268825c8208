/**
 * Claim+complete throughput over HTTP: N jobs, W concurrent workers, each looping
 * claim → complete until the queue is empty. Baseline in the same process: the
 * same W workers hammering GET /ping, the HTTP floor that the job loop can
 * approach but not beat (a job costs two requests and two statements).
 *
 *   bun bench/claim-complete.ts [jobs=2000] [workers=16]
 *
 * Client and server share one process and the machine's cores, so read the
 * figures as ratios, not absolutes.
 */
import { benchDatabase, post, startInstance, timed } from './support'

const JOBS = Number(process.argv[2] ?? 2000)
const WORKERS = Number(process.argv[3] ?? 16)

const db = await benchDatabase()
const foreman = await startInstance(db.url, `bench_${Date.now().toString(36)}_`)
const { base } = foreman

try {
  const pingUntil = (count: number) => {
    let left = count
    return async () => {
      await (await fetch(`${base}/ping`)).text()
      return --left > 0
    }
  }
  // Warm-up: JIT, prepared statements, pool connections.
  await timed(WORKERS, pingUntil(200))
  const pingSec = await timed(WORKERS, pingUntil(JOBS * 2))
  const pingRate = (JOBS * 2) / pingSec

  let toEnqueue = JOBS
  const enqueueSec = await timed(WORKERS, async () => {
    if (toEnqueue-- <= 0) return false
    const res = await post(`${base}/jobs`, { kind: 'bench', params: { n: toEnqueue } })
    if (res.status !== 201) throw new Error(`enqueue answered ${res.status}`)
    await res.text()
    return true
  })

  let done = 0
  const loopSec = await timed(WORKERS, async () => {
    const claim = await post(`${base}/claim`, { kinds: ['bench'], worker_id: 'bench', lease_seconds: 60 })
    if (claim.status === 204) return false
    const { run } = (await claim.json()) as { run: { id: string } }
    const complete = await post(`${base}/runs/${run.id}/complete`, { worker_id: 'bench', result: { ok: true } })
    if (complete.status !== 200) throw new Error(`complete answered ${complete.status}`)
    await complete.text()
    done++
    return true
  })
  if (done !== JOBS) throw new Error(`completed ${done} of ${JOBS}`)

  const jobsPerSec = JOBS / loopSec
  console.log(
    JSON.stringify(
      {
        jobs: JOBS,
        workers: WORKERS,
        ping_req_per_sec: Math.round(pingRate),
        enqueue_jobs_per_sec: Math.round(JOBS / enqueueSec),
        claim_complete_jobs_per_sec: Math.round(jobsPerSec),
        // Each job is two requests: 1.0 would mean the database cost nothing.
        requests_vs_ping_ratio: Number(((jobsPerSec * 2) / pingRate).toFixed(3)),
      },
      null,
      2,
    ),
  )
} finally {
  await foreman.close(true)
  await db.stop()
}
