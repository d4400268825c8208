/**
 * Worker: claims jobs of the kinds it has handlers for, runs up to `concurrency`
 * at once, heartbeats at a third of the lease, and reports the outcome.
 */
import { Batcher } from './batcher'
import type { Claimed, CompleteOutcome, ForemanClient, HeartbeatBody, Job, Run } from './client'
import { ForemanError } from './errors'
import { type Failure, failure, sleep } from './worker-support'

/** What a handler gets besides the job. */
export interface JobContext {
  /** The run (attempt) this handler executes. */
  run: Run
  /** Fires on a cooperative cancel, when the lease is lost, and when stop() gives up on the job. */
  signal: AbortSignal
  /** Records progress; sent with the next heartbeat. */
  progress(current: number, total?: number, message?: string): void
}

/** Does one job; the value it answers becomes the job's `result`. */
export type Handler = (job: Job, ctx: JobContext) => unknown | Promise<unknown>

/** Worker settings. */
export interface WorkerOptions {
  /** Identifies this worker on runs (default `worker-<random>`). */
  workerId?: string
  /**
   * Jobs run at once (default 1). Above 1, one loop claims for all free slots at
   * once (`claimMany`) and completions are sent in batches (`completeMany`).
   */
  concurrency?: number
  /** Only these queues (default all). */
  queues?: string[]
  /** Lease per claim in seconds (default 60); heartbeats go every third of it. */
  leaseSeconds?: number
  /** Long-poll wait of each claim in seconds (default 20, at most 30). */
  waitSeconds?: number
  /** How long stop() lets in-flight jobs finish before giving them up (default 10 000 ms). */
  graceMs?: number
  /** Gives up on a job after this many seconds (aborts its signal, fails it retryably); default none. */
  jobTimeoutSeconds?: number
  /** Told about errors the loop survives (a failed claim, heartbeat or report). */
  onError?: (error: unknown, job?: Job) => void
}

/** The message a job is failed with when stop() gives it up. */
export const SHUTDOWN_MESSAGE = 'worker shutting down'

/** One job in flight. */
interface Active {
  job: Job
  run: Run
  controller: AbortController
  /** Set once the outcome is decided (reported or given up): later results are ignored. */
  settled: boolean
  done: Promise<void>
  giveUp: () => Promise<void>
}

type Progress = Pick<HeartbeatBody, 'progress_current' | 'progress_total' | 'progress_message'>

/**
 * Runs handlers by kind.
 * @example
 * const worker = new Worker(foreman, { concurrency: 4 })
 * worker.handle('send-email', async (job, ctx) => { await send(job.params, { signal: ctx.signal }); return { sent: true } })
 * worker.start()
 * process.on('SIGTERM', () => worker.stop())
 */
export class Worker {
  /** This worker's id on the runs it holds. */
  readonly workerId: string
  private readonly handlers = new Map<string, Handler>()
  private readonly active = new Set<Active>()
  private readonly options: WorkerOptions
  private claims = new AbortController()
  private loops: Promise<void>[] = []
  private running = false
  /** Gathers completions when concurrency > 1. */
  private completions: Batcher<{ run_id: string; result: unknown }, CompleteOutcome> | null = null
  /** Jobs started and not yet ended (their execute promises). */
  private readonly started = new Set<Promise<void>>()
  /** Jobs holding a slot: started, outcome not yet reported (a job frees its slot before its cleanup ends). */
  private occupied = 0
  /** Slots promised to claims still in flight (the loop's, or a completion's handoff). */
  private reserved = 0
  private slots = 1

  constructor(
    private readonly client: ForemanClient,
    options: WorkerOptions = {},
  ) {
    this.options = options
    this.workerId = options.workerId ?? `worker-${Math.random().toString(36).slice(2, 10)}`
  }

  /** Registers the handler for `kind` (before start). */
  handle(kind: string, handler: Handler): this {
    this.handlers.set(kind, handler)
    return this
  }

  /** Jobs being handled right now. */
  get inFlight(): number {
    return this.active.size
  }

  /** Starts the claim loop: it long-polls for as many jobs as there are free slots, runs them, and repeats. */
  start(): this {
    if (this.running) return this
    if (this.handlers.size === 0) throw new Error('register a handler with worker.handle(kind, fn) before start()')
    this.running = true
    this.claims = new AbortController()
    const slots = Math.max(1, this.options.concurrency ?? 1)
    this.slots = slots
    this.completions = slots > 1 ? new Batcher((runs) => this.completeAndHandOff(runs), Math.min(100, slots), 5) : null
    this.loops = [this.loop()]
    return this
  }

  /**
   * Stops claiming, lets in-flight jobs finish for `graceMs`, then aborts their
   * signals and fails them retryably at once (`worker shutting down`, backoff 0).
   */
  async stop(graceMs = this.options.graceMs ?? 10_000): Promise<void> {
    if (!this.running) return
    this.running = false
    // A claim aborted at the instant the server grants it leaves that job to the reaper.
    this.claims.abort()
    // Each loop ends once its job does (a claim granted just as we stopped included).
    const drained = Promise.all(this.loops).then(() => 'drained' as const)
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs)
    })
    if ((await Promise.race([drained, late])) === 'late') {
      await Promise.all([...this.active].map((a) => a.giveUp()))
    }
    clearTimeout(timer)
    await drained
  }

  /**
   * Claims for every free slot in one long-poll (`claim` with one slot, `claimMany`
   * with more), starts what it got, and waits for a slot when all are busy. While
   * work keeps coming, completions hand the next jobs over (completeAndHandOff) and
   * this loop mostly waits. Ends once stopped and every job it started has ended.
   */
  private async loop(): Promise<void> {
    let failures = 0
    while (this.running) {
      const free = this.freeSlots()
      if (free <= 0) {
        await Promise.race(this.started)
        continue
      }
      this.reserved += free
      try {
        const claimed = await this.claim(free)
        failures = 0
        this.startAll(claimed)
      } catch (error) {
        if (!this.running) break
        this.report(error)
        // Back off on a failing server instead of spinning: 0.5 s, 1 s … 10 s.
        await sleep(Math.min(10_000, 500 * 2 ** failures++), this.claims.signal)
      } finally {
        this.reserved -= free
      }
    }
    await Promise.all(this.started)
  }

  /** Slots neither running a job nor promised to a claim in flight. */
  private freeSlots(ending = 0): number {
    return this.slots - this.occupied + ending - this.reserved
  }

  private startAll(claimed: Claimed[]): void {
    for (const { job, run } of claimed) {
      this.occupied++
      let held = true
      const release = () => {
        if (held) this.occupied--
        held = false
      }
      const done: Promise<void> = this.execute(job, run, release)
        .catch((error) => this.report(error, job))
        .finally(() => {
          release()
          this.started.delete(done)
        })
      this.started.add(done)
    }
  }

  /**
   * Completes `runs` (jobs whose handlers have returned) and, while the worker
   * runs, claims in the same call one job for each slot they free: one round trip
   * and one commit per job instead of two, however busy the queue.
   */
  private async completeAndHandOff(runs: { run_id: string; result: unknown }[]): Promise<CompleteOutcome[]> {
    const free = this.running ? this.freeSlots(runs.length) : 0
    if (free <= 0) return this.client.completeMany(this.workerId, runs)
    this.reserved += free
    try {
      const { results, claimed } = await this.client.completeAndClaim(this.workerId, runs, {
        kinds: [...this.handlers.keys()],
        queues: this.options.queues,
        lease_seconds: this.leaseSeconds,
        max_jobs: Math.min(100, free),
      })
      this.startAll(claimed)
      return results
    } finally {
      this.reserved -= free
    }
  }

  private async claim(free: number): Promise<Claimed[]> {
    const body = {
      kinds: [...this.handlers.keys()],
      worker_id: this.workerId,
      queues: this.options.queues,
      lease_seconds: this.leaseSeconds,
      wait_seconds: Math.min(30, this.options.waitSeconds ?? 20),
    }
    if (this.slots > 1) return this.client.claimMany({ ...body, max_jobs: Math.min(100, free) }, this.claims.signal)
    const one = await this.client.claim(body, this.claims.signal)
    return one ? [one] : []
  }

  private get leaseSeconds(): number {
    return this.options.leaseSeconds ?? 60
  }

  /** Runs the handler, keeps the lease and reports the outcome; `release` frees the slot once reported. */
  private async execute(job: Job, run: Run, release: () => void): Promise<void> {
    const controller = new AbortController()
    let progress: Progress = {}
    let cancelled = false
    // Resolves when the job no longer needs heartbeats: finished, given up, lease lost or timed out.
    let end: (why: 'lost' | 'timeout' | 'done') => void = () => {}
    const ended = new Promise<'lost' | 'timeout' | 'done'>((resolve) => {
      end = resolve
    })
    const active: Active = { job, run, controller, settled: false, done: Promise.resolve(), giveUp: async () => {} }

    const beat = async () => {
      const sent = progress
      progress = {}
      try {
        const answer = await this.client.heartbeat(run.id, {
          worker_id: this.workerId,
          lease_seconds: this.leaseSeconds,
          ...sent,
        })
        if (answer.cancel_requested && !cancelled) {
          cancelled = true
          controller.abort(new Error('cancel requested'))
        }
      } catch (error) {
        progress = { ...sent, ...progress }
        // 409/404: the run is no longer ours (reaped or finished): stop working on it.
        if (error instanceof ForemanError && (error.status === 409 || error.status === 404)) {
          active.settled = true
          controller.abort(new Error('lease lost'))
          end('lost')
        } else this.report(error, job)
      }
    }
    const beats = (async () => {
      const every = (this.leaseSeconds * 1000) / 3
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined
        const tick = new Promise<'tick'>((resolve) => {
          timer = setTimeout(() => resolve('tick'), every)
        })
        const why = await Promise.race([tick, ended])
        clearTimeout(timer)
        if (why !== 'tick' || active.settled) return
        await beat()
      }
    })()
    const timeoutMs = (this.options.jobTimeoutSeconds ?? 0) * 1000
    const deadline = timeoutMs > 0 ? setTimeout(() => end('timeout'), timeoutMs) : undefined

    const context: JobContext = {
      run,
      signal: controller.signal,
      progress(current, total, message) {
        progress = { progress_current: current, progress_total: total, progress_message: message }
      },
    }
    const handler = this.handlers.get(job.kind)!
    const outcome = Promise.resolve()
      .then(() => handler(job, context))
      .then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )

    active.giveUp = async () => {
      if (active.settled) return
      active.settled = true
      controller.abort(new Error(SHUTDOWN_MESSAGE))
      end('done')
      await this.settle(run, job, { error: SHUTDOWN_MESSAGE, retryable: true, backoff_seconds: 0 })
    }
    active.done = (async () => {
      const result = await Promise.race([outcome, ended])
      if (active.settled) return
      active.settled = true
      end('done')
      if (result === 'timeout') {
        controller.abort(new Error('job timed out'))
        await this.settle(run, job, { error: `timed out after ${timeoutMs / 1000} s`, retryable: true })
      } else if (result === 'lost' || result === 'done') {
        return
      } else if (result.ok) {
        await this.settle(run, job, undefined, result.value)
      } else {
        await this.settle(run, job, failure(result.error, cancelled))
      }
    })()
    this.active.add(active)
    try {
      await active.done
      release()
      await beats
    } finally {
      clearTimeout(deadline)
      this.active.delete(active)
    }
  }

  /** Completes (no `fail`; batched when concurrency > 1) or fails the run; errors are reported, never thrown. */
  private async settle(run: Run, job: Job, fail?: Failure, result?: unknown): Promise<void> {
    try {
      if (fail) await this.client.fail(run.id, { ...fail, worker_id: this.workerId })
      else {
        const item = { run_id: run.id, result: result ?? null }
        const [outcome] = this.completions ? [await this.completions.add(item)] : await this.completeAndHandOff([item])
        if (outcome && outcome.status !== 200)
          throw new ForemanError(outcome.status, outcome.error ?? 'not completed', outcome)
      }
    } catch (error) {
      this.report(error, job)
    }
  }

  private report(error: unknown, job?: Job): void {
    try {
      this.options.onError?.(error, job)
    } catch {}
  }
}
