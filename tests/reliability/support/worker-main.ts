/**
 * A worker as its own process, so a scenario can kill -9 it mid-job. Reads its
 * plan from FOREMAN_FAULT_WORKER (JSON) and appends its records to the file
 * named there. `mode: 'loop'` runs the recording worker of worker-loop.ts;
 * `mode: 'worker'` runs the client's own Worker class (heartbeats, batched
 * completes and shutdown are then the product's), recording from its handlers.
 * SIGTERM stops it cleanly.
 */
import { ForemanClient } from '../../../src/client/client'
import { RetryError } from '../../../src/client/errors'
import { Worker } from '../../../src/client/worker'
import { fileSink } from './record'
import { runWorker, type WorkerPlan } from './worker-loop'

/** What the parent passes in FOREMAN_FAULT_WORKER. */
export interface WorkerProcessPlan extends WorkerPlan {
  mode: 'loop' | 'worker'
  recordFile: string
  /** Worker-class mode: jobs run at once. */
  concurrency: number
}

const plan = JSON.parse(process.env.FOREMAN_FAULT_WORKER ?? '{}') as WorkerProcessPlan
const { sink, close } = fileSink(plan.recordFile)
const stop = new AbortController()
const pick = ([min, max]: [number, number]) => min + Math.floor(Math.random() * (max - min + 1))

let done: Promise<void>
if (plan.mode === 'loop') {
  done = runWorker(plan, sink, stop.signal)
} else {
  const client = new ForemanClient({ baseUrl: plan.origin, timeoutMs: plan.timeoutMs })
  const worker = new Worker(client, {
    workerId: plan.workerId,
    concurrency: plan.concurrency,
    leaseSeconds: plan.leaseSec[0],
    waitSeconds: plan.waitSeconds,
  })
  for (const kind of plan.kinds) {
    worker.handle(kind, async (job, ctx) => {
      const ids = { worker: plan.workerId, job: job.id, run: ctx.run.id }
      const t = Date.now()
      sink({ op: 'claim', t, ...ids, attempt: ctx.run.attempt, lease: ctx.run.lease_expires_at ?? '' })
      sink({ op: 'start', t, ...ids })
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pick(plan.handlerMs))
        ctx.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer)
            resolve()
          },
          { once: true },
        )
      })
      if (ctx.signal.aborted) {
        sink({ op: 'lost', t: Date.now(), ...ids })
        throw ctx.signal.reason
      }
      sink({ op: 'finish', t: Date.now(), ...ids })
      if (Math.random() < plan.failRate) throw new RetryError('injected failure', 0)
      return { run: ctx.run.id, worker: plan.workerId }
    })
  }
  worker.start()
  done = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(worker.stop(5000))))
}

process.on('SIGTERM', () => stop.abort())
await done
close()
process.exit(0)
