/**
 * Worker: claims jobs of the kinds it has handlers for, runs up to `concurrency`
 * at once, heartbeats at a third of the lease, and reports the outcome.
 */
import { Batcher } from './batcher'
import type { Claimed, CompleteOutcome, ForemanClient, Job, Run } from './client'
import { ForemanError } from './errors'
import { type ExecutionHost, type Handler, JobExecution } from './execution'
import { type Failure, sleep } from './worker-support'

export { type Handler, type JobContext, SHUTDOWN_MESSAGE } from './execution'

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
  private readonly active = new Set<JobExecution>()
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
  /** stop()'s grace has run out: a job handed over from now on is given up at once. */
  private givingUp = false

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
    this.givingUp = false
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
    // The server claims nothing for an aborted long poll, and gives back at once a
    // job it claimed as the request went; a claim answered before the abort is run.
    this.claims.abort()
    // Each loop ends once every job it started has (those a hand-off in flight brings included).
    const drained = Promise.all(this.loops).then(() => 'drained' as const)
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs)
    })
    if ((await Promise.race([drained, late])) === 'late') {
      this.givingUp = true
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
    // A completion sent before stop() may still hand over jobs: wait for those too.
    while (this.started.size > 0) await Promise.all(this.started)
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

  /** Runs one job (see JobExecution); `release` frees its slot once its outcome is reported. */
  private async execute(job: Job, run: Run, release: () => void): Promise<void> {
    const execution = new JobExecution(job, run, this.handlers.get(job.kind)!, this.host)
    this.active.add(execution)
    try {
      if (this.givingUp) await execution.giveUp()
      else await execution.perform(release)
    } finally {
      this.active.delete(execution)
    }
  }

  /** What each JobExecution uses of this Worker. */
  private get host(): ExecutionHost {
    return {
      client: this.client,
      workerId: this.workerId,
      leaseSeconds: this.leaseSeconds,
      jobTimeoutMs: (this.options.jobTimeoutSeconds ?? 0) * 1000,
      report: (error, job) => this.report(error, job),
      settle: (run, job, fail, result) => this.settle(run, job, fail, result),
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
