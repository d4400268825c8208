/**
 * One job in flight on a Worker: it runs the handler, keeps the lease with
 * heartbeats, and reports exactly one outcome (done, failed, timed out, given up
 * at shutdown, or nothing when the lease was lost).
 */
import type { Dependency, ForemanClient, HeartbeatBody, Job, Run } from './client'
import { ForemanError } from './errors'
import { type Failure, failure } from './worker-support'

/** What a handler gets besides the job. */
export interface JobContext {
  /** The run (attempt) this handler executes. */
  run: Run
  /**
   * The jobs this one depends on (`depends_on`), each with its `status` and
   * `result`, as the claim answered them: what a join step combines. `[]` for a
   * job without dependencies. A dependency's status is `succeeded` unless the job
   * was enqueued with `on_dependency_failure: 'run'`.
   * @example
   * worker.handle('merge', (_job, ctx) => ctx.dependencies.map((d) => d.result))
   */
  dependencies: Dependency[]
  /** Fires on a cooperative cancel, when the lease is lost, and when stop() gives up on the job. */
  signal: AbortSignal
  /** Records progress; sent with the next heartbeat. */
  progress(current: number, total?: number, message?: string): void
}

/** Does one job; the value it answers becomes the job's `result`. */
export type Handler = (job: Job, ctx: JobContext) => unknown | Promise<unknown>

/** The message a job is failed with when stop() gives it up. */
export const SHUTDOWN_MESSAGE = 'worker shutting down'

/** What an execution needs from its Worker. */
export interface ExecutionHost {
  client: ForemanClient
  workerId: string
  leaseSeconds: number
  /** 0: no timeout. */
  jobTimeoutMs: number
  report(error: unknown, job?: Job): void
  /** Completes the run (with `result`) or fails it (with `fail`); never throws. */
  settle(run: Run, job: Job, fail?: Failure, result?: unknown): Promise<void>
}

type Progress = Pick<HeartbeatBody, 'progress_current' | 'progress_total' | 'progress_message'>
/** Why heartbeats stop: the lease was lost, the job timed out, or the outcome is decided. */
type EndReason = 'lost' | 'timeout' | 'done'
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown }

/** One job in flight (see the file comment). */
export class JobExecution {
  /** Aborts the handler's signal: cancel, lost lease, timeout, shutdown. */
  readonly controller = new AbortController()
  /** Set once the outcome is decided (reported or given up): later results are ignored. */
  private settled = false
  private progress: Progress = {}
  private cancelled = false
  private end: (why: EndReason) => void = () => {}
  private readonly ended = new Promise<EndReason>((resolve) => {
    this.end = resolve
  })

  constructor(
    readonly job: Job,
    readonly run: Run,
    private readonly handler: Handler,
    private readonly host: ExecutionHost,
  ) {}

  /** Runs the job to its outcome; `release` frees the slot once that is reported, before heartbeats wind down. */
  async perform(release: () => void): Promise<void> {
    const beats = this.keepLease()
    const timeoutMs = this.host.jobTimeoutMs
    const deadline = timeoutMs > 0 ? setTimeout(() => this.end('timeout'), timeoutMs) : undefined
    try {
      await this.reportOutcome(this.runHandler())
      release()
      await beats
    } finally {
      clearTimeout(deadline)
    }
  }

  /** Shutdown: aborts the handler and fails the run retryably at once (backoff 0). */
  async giveUp(): Promise<void> {
    if (this.settled) return
    this.settled = true
    this.controller.abort(new Error(SHUTDOWN_MESSAGE))
    this.end('done')
    await this.host.settle(this.run, this.job, { error: SHUTDOWN_MESSAGE, retryable: true, backoff_seconds: 0 })
  }

  /** The handler's result or error; it starts on the next microtask, so a synchronous throw is caught too. */
  private runHandler(): Promise<Outcome> {
    const context: JobContext = {
      run: this.run,
      // The claim answer carries `dependencies` only for jobs that have some.
      dependencies: this.job.dependencies ?? [],
      signal: this.controller.signal,
      progress: (current, total, message) => {
        this.progress = { progress_current: current, progress_total: total, progress_message: message }
      },
    }
    return Promise.resolve()
      .then(() => this.handler(this.job, context))
      .then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
  }

  /** Heartbeats every third of the lease until the execution ends. */
  private async keepLease(): Promise<void> {
    const every = (this.host.leaseSeconds * 1000) / 3
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const tick = new Promise<'tick'>((resolve) => {
        timer = setTimeout(() => resolve('tick'), every)
      })
      const why = await Promise.race([tick, this.ended])
      clearTimeout(timer)
      if (why !== 'tick' || this.settled) return
      await this.beat()
    }
  }

  /** One heartbeat with the latest progress; a cancel aborts the signal, a lost run ends the execution. */
  private async beat(): Promise<void> {
    const sent = this.progress
    this.progress = {}
    try {
      const answer = await this.host.client.heartbeat(this.run.id, {
        worker_id: this.host.workerId,
        lease_seconds: this.host.leaseSeconds,
        ...sent,
      })
      if (answer.cancel_requested && !this.cancelled) {
        this.cancelled = true
        this.controller.abort(new Error('cancel requested'))
      }
    } catch (error) {
      this.progress = { ...sent, ...this.progress }
      // 409/404: the run is no longer ours (reaped or finished): stop working on it.
      if (error instanceof ForemanError && (error.status === 409 || error.status === 404)) {
        this.settled = true
        this.controller.abort(new Error('lease lost'))
        this.end('lost')
      } else this.host.report(error, this.job)
    }
  }

  /** Reports whichever comes first: the handler's outcome, a timeout; nothing when the lease was lost or given up. */
  private async reportOutcome(outcome: Promise<Outcome>): Promise<void> {
    const result = await Promise.race([outcome, this.ended])
    if (this.settled) return
    this.settled = true
    this.end('done')
    const { run, job, host } = this
    if (result === 'timeout') {
      this.controller.abort(new Error('job timed out'))
      await host.settle(run, job, { error: `timed out after ${host.jobTimeoutMs / 1000} s`, retryable: true })
    } else if (result === 'lost' || result === 'done') {
      return
    } else if (result.ok) {
      await host.settle(run, job, undefined, result.value)
    } else {
      await host.settle(run, job, failure(result.error, this.cancelled))
    }
  }
}
