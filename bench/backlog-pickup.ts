/**
 * Pickup latency on a set of tables (bench/backlog.ts runs it on the empty and the
 * loaded set): a claimer long-polls for a kind with nothing pending, a job of that
 * kind is enqueued, and the time from the enqueue call to the claimer's answer is
 * taken. Under a backlog this rides on the claim and the next-due lookup, which
 * must stay as fast as on empty tables; the server runs in this process, so read
 * loaded against empty, not the absolute figures.
 */
import { percentile, post, round, startInstance } from './support'

/** p50 and p99 of `samples` pickups, after 20 untimed ones. */
export async function pickupLatency(url: string, prefix: string, samples = 200) {
  const foreman = await startInstance(url, prefix)
  const kind = 'pickup'
  try {
    const latencies: number[] = []
    for (let i = 0; i < samples + 20; i++) {
      const waiting = post(`${foreman.base}/claim`, { kinds: [kind], worker_id: 'pickup', wait_seconds: 10 })
      // Let the claim reach its wait (an empty claim, then the next-due lookup).
      await Bun.sleep(3)
      const started = performance.now()
      const enqueued = await post(`${foreman.base}/jobs`, { kind })
      await enqueued.text()
      const res = await waiting
      if (res.status !== 200) throw new Error(`the waiting claim answered ${res.status}`)
      const { run } = (await res.json()) as { run: { id: string } }
      if (i >= 20) latencies.push(performance.now() - started)
      const done = await post(`${foreman.base}/runs/${run.id}/complete`, { worker_id: 'pickup' })
      await done.text()
    }
    return { p50_ms: round(percentile(latencies, 50)), p99_ms: round(percentile(latencies, 99)), samples }
  } finally {
    await foreman.close(false)
  }
}
