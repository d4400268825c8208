/**
 * Driving a server over HTTP: loops of requests with a warm-up and a time limit,
 * and the untimed fill of the queue before a process scenario.
 */
import { measured, type Reading } from './cpu'
import { LIMITS } from './options'
import type { Outcome } from './sample'

/**
 * Waits for `promise` at most `ms`; answers whether it settled in time. The timer
 * is cleared either way: a pending one would keep the process alive after the run.
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<false>((ok) => {
    timer = setTimeout(() => ok(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A phase's signal: aborted at its time limit, or by the first loop that fails so
 * the other loops stop too instead of running on.
 */
function phase(ms: number): { signal: AbortSignal; fail: (why: unknown) => void; done: () => void } {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${ms / 1000} s`)), ms)
  return {
    signal: controller.signal,
    fail: (why) => controller.abort(why),
    done: () => clearTimeout(timer),
  }
}

/** POSTs JSON. */
export const post = (url: string, body: unknown, signal: AbortSignal) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  })

/** Throws with the body when `res` is not `status`. */
export async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) throw new Error(`${what} answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
}

/**
 * Runs `loops` copies of `step` until each answers 0 (jobs done per call
 * otherwise). The timed phase starts with the reading taken once `warmup` jobs
 * are done, so the first requests (JIT, pool connections, prepared statements)
 * are left out, and ends when the last loop does.
 */
export async function drive(
  loops: number,
  warmup: number,
  read: () => Reading,
  step: (loop: number, signal: AbortSignal) => Promise<number>,
): Promise<Outcome> {
  const p = phase(LIMITS.scenarioMs)
  let done = 0
  let start: { reading: Reading; done: number } | undefined = warmup === 0 ? { reading: read(), done: 0 } : undefined
  try {
    await Promise.all(
      Array.from({ length: loops }, async (_, k) => {
        try {
          for (;;) {
            const n = await step(k, p.signal)
            if (n === 0) return
            done += n
            if (!start && done >= warmup) start = { reading: read(), done }
          }
        } catch (error) {
          p.fail(error)
          throw p.signal.reason ?? error
        }
      }),
    )
  } finally {
    p.done()
  }
  const end = read()
  if (!start) throw new Error(`only ${done} jobs, fewer than the warm-up of ${warmup}`)
  return measured(start.reading, end, done - start.done)
}

/** Calls `fn(i)` for i in [0, count) with `inFlight` at once. */
async function forEach(count: number, inFlight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(count, inFlight) }, async () => {
      for (let i = next++; i < count; i = next++) await fn(i)
    }),
  )
}

/**
 * Fills the queue with `count` jobs of `kind`, untimed: POST /jobs/batch (1,000
 * a call) when the server answers it with 200, else single enqueues 32 at a time
 * (the baseline may have no bulk route).
 */
export async function fill(base: string, kind: string, count: number): Promise<'batch' | 'single'> {
  const p = phase(LIMITS.fillMs)
  const job = (n: number) => ({ kind, params: { n } })
  const batchOf = (from: number) => ({
    jobs: Array.from({ length: Math.min(1000, count - from) }, (_, k) => job(from + k)),
  })
  try {
    const first = await post(`${base}/jobs/batch`, batchOf(0), p.signal)
    await first.text()
    if (first.status === 200) {
      // Four calls in flight: enough to fill quickly without starving the server's pool.
      await forEach(Math.ceil(count / 1000) - 1, 4, async (c) => {
        const res = await post(`${base}/jobs/batch`, batchOf((c + 1) * 1000), p.signal)
        await expectStatus(res, 200, 'POST /jobs/batch')
        await res.text()
      })
      return 'batch'
    }
    await forEach(count, 32, async (n) => {
      const res = await post(`${base}/jobs`, job(n), p.signal)
      await expectStatus(res, 201, 'POST /jobs')
      await res.text()
    })
    return 'single'
  } finally {
    p.done()
  }
}
