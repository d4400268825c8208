/**
 * The scale test's HTTP workers, one claim style each, and the ledger they all
 * write: every claim they were answered (job and attempt) and every completion
 * the server confirmed, so a double claim or a second completion shows on the
 * client side as well as in the tables.
 */
import { type Claimed, type ForemanClient, RetryError, Worker } from '../../src/client'

/** How a worker asks for work. */
export type ClaimStyle = 'single' | 'long-poll' | 'batch' | 'hand-off' | 'ts-worker'
export const CLAIM_STYLES: ClaimStyle[] = ['single', 'long-poll', 'batch', 'hand-off', 'ts-worker']

/** What every worker saw and did. */
export class Ledger {
  /** Claims answered, by `<job id>#<attempt>`. */
  readonly claims = new Map<string, number>()
  /** Jobs whose completion the server confirmed (HTTP styles; the TS Worker reports in batches of its own). */
  readonly completed = new Map<string, number>()
  readonly errors: unknown[] = []
  planned = 0

  claimed(c: Claimed): void {
    const key = `${c.job.id}#${c.run.attempt}`
    this.claims.set(key, (this.claims.get(key) ?? 0) + 1)
  }

  done(jobId: string): void {
    this.completed.set(jobId, (this.completed.get(jobId) ?? 0) + 1)
  }

  /** Keys seen more than once. */
  repeats(map: Map<string, number>): string[] {
    return [...map].filter(([, n]) => n > 1).map(([key]) => key)
  }
}

/** A job marked `fail_once` fails its first attempt (retryably) and succeeds on the next. */
export const failsNow = (c: Claimed) =>
  (c.job.params as { fail_once?: boolean })?.fail_once === true && c.run.attempt === 1

/** Retry after 1 s: the retry waits out a backoff, as real ones do. */
const BACKOFF_SEC = 1

/** One running worker. */
export interface RunningWorker {
  stop(): Promise<void>
}

/** Starts a worker of `style` on `client`, claiming `kinds`. */
export function startWorker(
  style: ClaimStyle,
  client: ForemanClient,
  workerId: string,
  kinds: string[],
  ledger: Ledger,
): RunningWorker {
  if (style === 'ts-worker') return startTsWorker(client, workerId, kinds, ledger)
  let stopped = false
  const body = { kinds, worker_id: workerId, lease_seconds: 60 }
  const wait = { ...body, wait_seconds: 1 }

  const fail = async (c: Claimed) => {
    ledger.planned++
    await client.fail(c.run.id, {
      worker_id: workerId,
      error: 'planned failure',
      retryable: true,
      backoff_seconds: BACKOFF_SEC,
    })
  }
  /** Fails the planned failures of a batch; answers the rest. */
  const failPlanned = async (batch: Claimed[]) => {
    for (const c of batch) ledger.claimed(c)
    await Promise.all(batch.filter(failsNow).map(fail))
    return batch.filter((c) => !failsNow(c))
  }
  const completeMany = async (batch: Claimed[]) => {
    const outcomes = await client.completeMany(
      workerId,
      batch.map((c) => ({ run_id: c.run.id, result: { by: workerId } })),
    )
    for (const o of outcomes) o.status === 200 && o.job ? ledger.done(o.job.id) : ledger.errors.push(o)
  }

  const steps: Record<Exclude<ClaimStyle, 'ts-worker'>, () => Promise<void>> = {
    // POST /claim without waiting; an empty answer is retried shortly.
    single: async () => {
      const c = await client.claim(body)
      if (!c) return void (await Bun.sleep(20))
      await settleOne(c)
    },
    // POST /claim with wait_seconds: the server holds the request until work comes.
    'long-poll': async () => {
      const c = await client.claim(wait)
      if (c) await settleOne(c)
    },
    // POST /claims (up to 10), then POST /runs/complete for the batch.
    batch: async () => {
      const rest = await failPlanned(await client.claimMany({ ...wait, max_jobs: 10 }))
      if (rest.length > 0) await completeMany(rest)
    },
    // POST /claims, then POST /runs/complete with `claim`: complete and claim the next in one call.
    'hand-off': async () => {
      let batch = await failPlanned(await client.claimMany({ ...wait, max_jobs: 10 }))
      while (batch.length > 0) {
        const runs = batch.map((c) => ({ run_id: c.run.id, result: { by: workerId } }))
        const answer = await client.completeAndClaim(workerId, runs, { kinds, max_jobs: stopped ? 0 : 10 })
        for (const o of answer.results) o.status === 200 && o.job ? ledger.done(o.job.id) : ledger.errors.push(o)
        batch = await failPlanned(answer.claimed)
      }
    },
  }
  const settleOne = async (c: Claimed) => {
    ledger.claimed(c)
    if (failsNow(c)) return fail(c)
    const job = await client.complete(c.run.id, { worker_id: workerId, result: { by: workerId } })
    ledger.done(job.id)
  }

  const step = steps[style]
  const loop = (async () => {
    while (!stopped) {
      try {
        await step()
      } catch (error) {
        ledger.errors.push(error)
        await Bun.sleep(50)
      }
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
    },
  }
}

/** The TS client's Worker: batched claims, batched completions with hand-off, 5 jobs at once. */
function startTsWorker(client: ForemanClient, workerId: string, kinds: string[], ledger: Ledger): RunningWorker {
  const worker = new Worker(client, {
    workerId,
    concurrency: 5,
    waitSeconds: 1,
    leaseSeconds: 60,
    onError: (error) => ledger.errors.push(error),
  })
  for (const kind of kinds) {
    worker.handle(kind, (job, ctx) => {
      const c = { job, run: ctx.run } as Claimed
      ledger.claimed(c)
      if (!failsNow(c)) return { by: workerId }
      ledger.planned++
      throw new RetryError('planned failure', BACKOFF_SEC)
    })
  }
  const started = worker.start()
  return { stop: () => started.stop(5000) }
}
