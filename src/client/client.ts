/**
 * ForemanClient: one typed method per route, built only on `fetch` (Bun, Node 20+,
 * browsers). Types come from the server's own TypeBox schemas (`import type` only,
 * so nothing of the server is loaded at run time).
 */

import { Transport, toError } from './http'
import { type LimitsClient, limitsClient } from './limits'
import { parseSse } from './sse'
import type {
  BulkBody,
  BulkResult,
  ClaimBody,
  Claimed,
  ClaimManyBody,
  ClientOptions,
  CompleteBody,
  CompleteManyResult,
  CompleteOutcome,
  DatabaseHealth,
  DebouncedJob,
  Deleted,
  DeletedJob,
  DuplicateJob,
  EnqueueBatchItem,
  EnqueueBatchResult,
  EnqueueBody,
  Enqueued,
  EnqueuedGraph,
  EventsOptions,
  FailBody,
  HandoffClaim,
  HeartbeatBody,
  HeartbeatResult,
  Job,
  JobDeleted,
  JobEvent,
  ListJobsQuery,
  QueueState,
  QueueSummary,
  Readiness,
  Run,
  RunListQuery,
  Schedule,
  ScheduleBody,
  ScheduleListQuery,
  Stats,
  StatsWindow,
  WorkerSummary,
} from './types'

export type { LimitsClient } from './limits'
export * from './types'

type Query = Record<string, string | number | boolean | undefined>

const enc = encodeURIComponent

/**
 * A typed Foreman client. Pass the origin; `/foreman` is added (a URL that already
 * ends in `/foreman` is taken as is). Non-2xx answers throw `ForemanError`.
 * @example
 * const foreman = new ForemanClient({ baseUrl: 'http://localhost:7011' })
 * const { job } = await foreman.enqueue({ kind: 'send-email', params: { to: 'a@b.c' } })
 */
export class ForemanClient {
  private readonly http: Transport
  /** Flow-control limits per kind: `get`, `list`, `set`, `delete` (see LimitsClient). */
  readonly limits: LimitsClient

  constructor(options: ClientOptions) {
    this.http = new Transport(options)
    this.limits = limitsClient(this.http)
  }

  /** The `/foreman` base URL requests go to. */
  get baseUrl(): string {
    return this.http.base
  }

  /** `GET /ping`: the banner with the server's version. */
  async ping(): Promise<{ message: string }> {
    return this.get('/ping')
  }

  /** `GET /healthz`: the process answers. */
  async healthz(): Promise<{ status: 'ok' }> {
    return this.get('/healthz')
  }

  /** `GET /readyz`: whether this instance should get traffic. */
  async readyz(): Promise<Readiness> {
    const spec = { method: 'GET', path: '/readyz', idempotent: false }
    return (await this.http.json<Readiness>(spec, [503])).body
  }

  /**
   * `POST /jobs`. A duplicate idempotency key is not an error: `created` is false and
   * `job` is the existing one. With `debounce_seconds` (and a key) a job still
   * pending and not yet due is moved instead: new params, due that many seconds
   * from now; the answer has `debounced: true`. Retried on connection errors only
   * with an idempotency key.
   *
   * Orchestration: `depends_on` (job ids) keeps the job `waiting` until each has
   * succeeded; a failed or cancelled one cancels it (`error: "dependency <id>
   * <status>"`) unless `on_dependency_failure: 'run'`. `unique_while_active` frees
   * the key once the job holding it has ended. `expires_in_seconds` cancels the job
   * (`error: "expired"`) if nobody claims it in time; `timeout_seconds` fails a run
   * that takes longer (`"timed out"`, retried as any failure).
   * @example
   * const { job } = await foreman.enqueue({ kind: 'invoice', depends_on: [charge.id], expires_in_seconds: 3600 })
   */
  async enqueue(body: EnqueueBody): Promise<Enqueued> {
    const idempotent = typeof body.idempotency_key === 'string'
    const spec = { method: 'POST', path: '/jobs', body, idempotent, extraMs: (body.wait_seconds ?? 0) * 1000 }
    type Answer = Job | typeof DuplicateJob.static | typeof DebouncedJob.static
    const { status, body: answer } = await this.http.json<Answer>(spec, [409])
    if (status === 409) return { created: false, job: (answer as typeof DuplicateJob.static).job }
    if (status === 200) {
      const { debounced: _, ...job } = answer as typeof DebouncedJob.static
      return { created: false, debounced: true, job }
    }
    return { created: true, job: answer as Job }
  }

  /**
   * `POST /jobs/batch`: 1–1,000 jobs in one round-trip and one statement; answers
   * `{ created, job }` per job in input order (`created` is false when the key
   * already held the job, stored or earlier in the batch). Any invalid job refuses
   * the whole batch. Retried on connection errors only when every job has an
   * idempotency key, since a retry could otherwise store the keyless ones twice.
   * (enqueueGraph sends the same request and also answers `refs`.)
   * @example
   * const answers = await foreman.enqueueMany(emails.map((to) => ({ kind: 'send-email', params: { to } })))
   */
  async enqueueMany(jobs: EnqueueBatchItem[]): Promise<Enqueued[]> {
    return (await this.enqueueGraph(jobs)).jobs
  }

  /**
   * `POST /jobs/batch` for jobs that depend on each other: an item names itself
   * with `ref` and others list that ref in `depends_on` (beside stored job ids);
   * answers each item's Enqueued in input order and `refs`, each ref's job id. A
   * cycle or an unknown ref refuses the whole batch (400 naming the ref). Retried
   * as enqueueMany.
   * @example
   * const { refs } = await foreman.enqueueGraph([
   *   { kind: 'fetch', ref: 'a' }, { kind: 'fetch', ref: 'b' },
   *   { kind: 'merge', ref: 'join', depends_on: ['a', 'b'] },
   * ])
   */
  async enqueueGraph(jobs: EnqueueBatchItem[]): Promise<EnqueuedGraph> {
    const idempotent = jobs.every((job) => typeof job.idempotency_key === 'string')
    const spec = { method: 'POST', path: '/jobs/batch', body: { jobs }, idempotent }
    const answer = (await this.http.json<EnqueueBatchResult>(spec)).body
    return { jobs: answer.jobs, refs: answer.refs ?? {} }
  }

  /**
   * `GET /jobs`: newest first; page on with `cursor` = the last id. `params` keeps
   * the jobs whose params contain it (sent JSON-encoded).
   * @example const jobs = await foreman.listJobs({ kind: 'invoice', params: { customer: 42 } })
   */
  async listJobs(query: ListJobsQuery = {}): Promise<Job[]> {
    const { params, ...rest } = query
    return this.get('/jobs', params === undefined ? rest : { ...rest, params: JSON.stringify(params) })
  }

  /** `GET /jobs/:id`; `includeRun` adds `current_run`. */
  async getJob(id: string, options: { includeRun?: boolean } = {}): Promise<Job> {
    return this.get(`/jobs/${enc(id)}`, { include: options.includeRun ? 'current_run' : undefined })
  }

  /** `GET /jobs/:id/runs`: every attempt, oldest first. */
  async listJobRuns(id: string): Promise<Run[]> {
    return this.get(`/jobs/${enc(id)}/runs`)
  }

  /** `GET /jobs/:id/dependents`: the jobs that list this one in `depends_on` (`[]` when none; 404 for an unknown job). */
  async listJobDependents(id: string): Promise<Job[]> {
    return this.get(`/jobs/${enc(id)}/dependents`)
  }

  /** `POST /jobs/:id/cancel`: pending → cancelled, active → cancel requested. */
  async cancel(id: string): Promise<Job> {
    return this.post(`/jobs/${enc(id)}/cancel`, undefined, true)
  }

  /**
   * `POST /jobs/:id/retry`: a failed or cancelled job goes back to pending, due now;
   * answers it. `cascade` also re-arms the dependents its end cancelled: they wait
   * for it again.
   */
  async retry(id: string, options: { cascade?: boolean } = {}): Promise<Job> {
    const query = { cascade: options.cascade ? 'true' : undefined }
    // Not retried: a second send after a lost answer would meet the job pending (409) or already claimed.
    return (await this.http.json<Job>({ method: 'POST', path: `/jobs/${enc(id)}/retry`, query, idempotent: false }))
      .body
  }

  /** `DELETE /jobs/:id`: removes a finished job and its runs; answers `{ id }`. */
  async deleteJob(id: string): Promise<JobDeleted> {
    return this.send('DELETE', `/jobs/${enc(id)}`, undefined, true)
  }

  /**
   * `POST /jobs/bulk`: cancel, retry or delete up to `limit` jobs matching `filter`
   * or `ids`; repeat while `more` is true. Never retried (repeat it yourself: each
   * call acts only on jobs still matching).
   * @example
   * let answer
   * do answer = await foreman.bulk({ action: 'retry', filter: { kind: 'invoice', status: 'failed' } })
   * while (answer.more)
   */
  async bulk(body: BulkBody): Promise<BulkResult> {
    return this.post('/jobs/bulk', body, false)
  }

  /** `POST /claim`: the job and its run, or `null` when nothing is claimable (204). */
  async claim(body: ClaimBody, signal?: AbortSignal): Promise<Claimed | null> {
    const extraMs = (body.wait_seconds ?? 0) * 1000
    const spec = { method: 'POST', path: '/claim', body, idempotent: false, extraMs, signal }
    const { status, body: answer } = await this.http.json<Claimed>(spec)
    return status === 204 ? null : answer
  }

  /**
   * `POST /claims`: up to `max_jobs` jobs and their runs in one round-trip (`[]`
   * when nothing is claimable; with `wait_seconds`, once at least one is).
   */
  async claimMany(body: ClaimManyBody, signal?: AbortSignal): Promise<Claimed[]> {
    const extraMs = (body.wait_seconds ?? 0) * 1000
    const spec = { method: 'POST', path: '/claims', body, idempotent: false, extraMs, signal }
    return (await this.http.json<Claimed[]>(spec)).body
  }

  /** `POST /runs/:id/heartbeat`: extends the lease, stores progress; answers the run and `cancel_requested`. */
  async heartbeat(runId: string, body: HeartbeatBody): Promise<HeartbeatResult> {
    // Idempotent: sending it twice only extends the lease twice.
    return this.post(`/runs/${enc(runId)}/heartbeat`, body, true)
  }

  /** `POST /runs/:id/complete`: the run and the job succeed; answers the job. */
  async complete(runId: string, body: CompleteBody): Promise<Job> {
    return this.post(`/runs/${enc(runId)}/complete`, body, false)
  }

  /**
   * `POST /runs/complete`: completes several runs held by `workerId` in one
   * round-trip; answers each run's outcome in input order (`status` 200 with the
   * job, or 404/409 with `error`). Never retried.
   */
  async completeMany(workerId: string, runs: { run_id: string; result?: unknown }[]): Promise<CompleteOutcome[]> {
    const body = { worker_id: workerId, runs }
    return (await this.post<CompleteManyResult>('/runs/complete', body, false)).results
  }

  /**
   * `POST /runs/complete` with `claim`: completes `runs` and claims up to
   * `claim.max_jobs` new jobs for the same worker in one round trip (no waiting).
   */
  async completeAndClaim(
    workerId: string,
    runs: { run_id: string; result?: unknown }[],
    claim: HandoffClaim,
  ): Promise<{ results: CompleteOutcome[]; claimed: Claimed[] }> {
    const body = { worker_id: workerId, runs, claim }
    const answer = await this.post<CompleteManyResult>('/runs/complete', body, false)
    return { results: answer.results, claimed: answer.claimed ?? [] }
  }

  /** `POST /runs/:id/fail`: omit `backoff_seconds` for the server's exponential backoff; answers the job. */
  async fail(runId: string, body: FailBody): Promise<Job> {
    return this.post(`/runs/${enc(runId)}/fail`, body, false)
  }

  /** `GET /runs`: runs across jobs, newest first. */
  async listRuns(query: Partial<RunListQuery> = {}): Promise<Run[]> {
    return this.get('/runs', query)
  }

  /** `GET /runs/:id`. */
  async getRun(id: string): Promise<Run> {
    return this.get(`/runs/${enc(id)}`)
  }

  /** `POST /schedules`. */
  async createSchedule(body: ScheduleBody): Promise<Schedule> {
    return this.post('/schedules', body, false)
  }

  /** `GET /schedules`: newest first. */
  async listSchedules(query: Partial<ScheduleListQuery> = {}): Promise<Schedule[]> {
    return this.get('/schedules', query)
  }

  /** `GET /schedules/:id`. */
  async getSchedule(id: string): Promise<Schedule> {
    return this.get(`/schedules/${enc(id)}`)
  }

  /** `PUT /schedules/:id`: a full replace. */
  async replaceSchedule(id: string, body: ScheduleBody): Promise<Schedule> {
    return this.send('PUT', `/schedules/${enc(id)}`, body, true)
  }

  /** `DELETE /schedules/:id`: answers `{ id }`. */
  async deleteSchedule(id: string): Promise<typeof Deleted.static> {
    return this.send('DELETE', `/schedules/${enc(id)}`, undefined, true)
  }

  /** `POST /schedules/:id/fire`: enqueues one job now; answers it. */
  async fireSchedule(id: string): Promise<Job> {
    return this.post(`/schedules/${enc(id)}/fire`, undefined, false)
  }

  /**
   * `GET /queues`: every queue with live work, recent endings or a pause, by name.
   * `maxAgeSeconds` accepts an answer another request read up to that long ago.
   */
  async listQueues(options: { maxAgeSeconds?: number } = {}): Promise<QueueSummary[]> {
    return this.get('/queues', { max_age_seconds: options.maxAgeSeconds })
  }

  /** `POST /queues/:queue/pause`: claims skip the queue from now on, on every instance (idempotent). */
  async pauseQueue(queue: string): Promise<QueueState> {
    return this.post(`/queues/${enc(queue)}/pause`, undefined, true)
  }

  /** `POST /queues/:queue/resume`: claims take the queue again; waiting claimers are woken (idempotent). */
  async resumeQueue(queue: string): Promise<QueueState> {
    return this.post(`/queues/${enc(queue)}/resume`, undefined, true)
  }

  /** `GET /workers`: each worker with running runs or runs ended in the last hour (`maxAgeSeconds` as listQueues). */
  async listWorkers(options: { maxAgeSeconds?: number } = {}): Promise<WorkerSummary[]> {
    return this.get('/workers', { max_age_seconds: options.maxAgeSeconds })
  }

  /** `GET /stats`: enqueued, succeeded, failed and retried per minute and kind over `window` (default 1h). */
  async stats(window?: StatsWindow, options: { maxAgeSeconds?: number } = {}): Promise<Stats> {
    return this.get('/stats', { window, max_age_seconds: options.maxAgeSeconds })
  }

  /** `GET /database`: table health and the oldest transaction, with plain-words warnings. */
  async databaseHealth(): Promise<DatabaseHealth> {
    return this.get('/database')
  }

  /** `GET /metrics`: Prometheus text. */
  async metrics(): Promise<string> {
    const { res, value } = await this.http.send({ method: 'GET', path: '/metrics', idempotent: true }, (r) => r.text())
    if (!res.ok) throw toError(res.status, null, value)
    return value
  }

  /**
   * Live job events as an async iterator: `GET /events/:id` when `jobId` is given
   * (ends after the terminal state), otherwise `GET /events` with filters (runs
   * until `signal` aborts or you break; resume with `lastEventId`).
   * @example for await (const e of foreman.events({ jobId })) if (e.type === 'job') console.log(e.job.status)
   */
  async *events(options: EventsOptions & { jobId?: string } = {}): AsyncGenerator<JobEvent> {
    const { jobId, lastEventId, signal, ...filters } = options
    const path = jobId ? `/events/${enc(jobId)}` : '/events'
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (lastEventId) headers['last-event-id'] = lastEventId
    const spec = { method: 'GET', path, query: jobId ? {} : filters, idempotent: true, stream: true, signal, headers }
    const { res } = await this.http.send(spec, async () => undefined)
    if (!res.ok || !res.body) {
      const text = await res.text()
      let body: unknown = null
      try {
        body = JSON.parse(text)
      } catch {}
      throw toError(res.status, body, text)
    }
    try {
      for await (const message of parseSse(res.body)) {
        const data = JSON.parse(message.data)
        if (message.event === 'job') yield { type: 'job', id: message.id, job: data as Job }
        else if (message.event === 'deleted') yield { type: 'deleted', id: message.id, deleted: data as DeletedJob }
      }
    } catch (error) {
      if (!signal?.aborted) throw error
    }
  }

  private async get<T>(path: string, query: Query = {}): Promise<T> {
    return (await this.http.json<T>({ method: 'GET', path, query, idempotent: true })).body
  }

  private async post<T>(path: string, body: unknown, idempotent: boolean): Promise<T> {
    return this.send('POST', path, body, idempotent)
  }

  private async send<T>(method: string, path: string, body: unknown, idempotent: boolean): Promise<T> {
    return (await this.http.json<T>({ method, path, body, idempotent })).body
  }
}
