/**
 * The producer and the canceller of a scenario. Every job carries an
 * idempotency key, so an enqueue whose answer was lost (server killed, database
 * restarting) is simply sent again: a repeat answers the job it already made.
 */
import { ForemanClient } from '../../../src/client/client'
import { onCleanup, sleep } from './processes'
import { answerOf, type Recorder } from './record'

/** What to enqueue. */
export interface ProducePlan {
  /** Origins to enqueue through (round robin: several instances share the work). */
  origins: string[]
  kind: string
  count: number
  /** Unique per scenario run: keys are `<keyPrefix>-<n>`. */
  keyPrefix: string
  /** Jobs per POST /jobs/batch. */
  batch: number
  /** Spread the enqueues over about this long (0: as fast as they go). */
  overMs: number
  /** Attempts of each job: random minAttempts (default 1)..maxAttempts. */
  maxAttempts: number
  minAttempts?: number
}

/** Enqueues `plan.count` jobs, recording each job once; resolves when all are stored. */
export async function produce(plan: ProducePlan, recorder: Recorder): Promise<void> {
  const clients = plan.origins.map((origin) => new ForemanClient({ baseUrl: origin, timeoutMs: 15_000, retries: 0 }))
  const batches = Math.ceil(plan.count / plan.batch)
  const started = Date.now()
  let abandoned = false
  onCleanup(() => {
    abandoned = true
  })
  for (let b = 0; b < batches && !abandoned; b++) {
    const jobs = []
    for (let n = b * plan.batch; n < Math.min(plan.count, (b + 1) * plan.batch); n++) {
      const min = plan.minAttempts ?? 1
      const max_attempts = min + Math.floor(Math.random() * (plan.maxAttempts - min + 1))
      jobs.push({ kind: plan.kind, idempotency_key: `${plan.keyPrefix}-${n}`, max_attempts, params: { n } })
    }
    for (let attempt = 0; ; attempt++) {
      const client = clients[(b + attempt) % clients.length]!
      try {
        const answers = await client.enqueueMany(jobs)
        const t = Date.now()
        for (const { created, job } of answers) {
          recorder.add({ op: 'enqueue', t, job: job.id, key: job.idempotency_key!, created })
        }
        break
      } catch (error) {
        const answer = answerOf(error)
        if (typeof answer === 'number' && answer < 500) throw error
        if (attempt > 600 || abandoned) throw new Error(`enqueue kept failing: ${String(error)}`)
        await sleep(200)
      }
    }
    if (plan.overMs > 0) {
      const due = started + ((b + 1) / batches) * plan.overMs
      if (due > Date.now()) await sleep(due - Date.now())
    }
  }
}

/** Cancels a random enqueued job every `everyMs` until `signal` aborts, recording each answer. */
export async function cancelRandomly(
  origins: string[],
  recorder: Recorder,
  everyMs: number,
  signal: AbortSignal,
): Promise<void> {
  const clients = origins.map((origin) => new ForemanClient({ baseUrl: origin, timeoutMs: 15_000, retries: 0 }))
  let abandoned = false
  onCleanup(() => {
    abandoned = true
  })
  for (let i = 0; !signal.aborted && !abandoned; i++) {
    await sleep(everyMs)
    // Half the time one of the most recent jobs (likely pending or active), else any
    // (likely finished, or waiting out a retry's backoff).
    const all = recorder.of('enqueue')
    const enqueued = i % 2 === 0 ? all.slice(-300) : all
    const target = enqueued[Math.floor(Math.random() * enqueued.length)]
    if (!target) continue
    try {
      const job = await clients[i % clients.length]!.cancel(target.job)
      const status = job.cancel_requested && job.status === 'active' ? 'cancel_requested' : job.status
      recorder.add({ op: 'cancel', t: Date.now(), job: target.job, answer: 200, status })
    } catch (error) {
      recorder.add({ op: 'cancel', t: Date.now(), job: target.job, answer: answerOf(error) })
    }
  }
}
