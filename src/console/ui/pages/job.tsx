/** One job: what it was given, what came of it, every run (progress moving live), and what an operator can do. */
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, type Dependency, type Job, type Run } from '../api'
import { Confirm, ErrorNote, Json, Link, Loading, PageHeader, Progress, Status, Time } from '../components'
import { between, dateTime, duration } from '../format'
import { useAction, useLoad } from '../hooks'
import { onLiveEvent } from '../live'
import { navigate } from '../router'

const isTerminal = (status: string) => status === 'succeeded' || status === 'failed' || status === 'cancelled'

function Runs(props: { runs: Run[] }) {
  if (props.runs.length === 0) return <p class="muted">Not started yet.</p>
  return (
    <div class="table-wrap">
      <table data-testid="runs-table">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Worker</th>
            <th scope="col">Status</th>
            <th scope="col">Started</th>
            <th scope="col">Took</th>
            <th scope="col">Progress</th>
            <th scope="col">Error</th>
          </tr>
        </thead>
        <tbody>
          {props.runs.map((run) => (
            <tr key={run.id} data-testid="run-row" data-id={run.id} data-status={run.status}>
              <td>{run.attempt}</td>
              <td>
                <code>{run.worker_id}</code>
              </td>
              <td>
                <Status status={run.status} />
                {run.status === 'running' && (
                  <div class="muted small">
                    lease <Time at={run.lease_expires_at} />
                  </div>
                )}
              </td>
              <td>
                <Time at={run.started_at} />
              </td>
              <td>{duration(between(run.started_at, run.finished_at))}</td>
              <td>
                <Progress current={run.progress_current} total={run.progress_total} message={run.progress_message} />
              </td>
              <td class="error-text">{run.error ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** The jobs this one depends on, with their statuses (read again when one of them changes). */
function Dependencies(props: { dependencies: Dependency[] }) {
  return (
    <ul class="dependencies" data-testid="job-dependencies">
      {props.dependencies.map((d) => (
        <li key={d.id} data-testid="dependency" data-id={d.id} data-status={d.status}>
          <Link to={`/jobs/${d.id}`}>
            <code>{d.id}</code>
          </Link>{' '}
          {d.kind} <Status status={d.status} />
        </li>
      ))}
    </ul>
  )
}

/** Cancel, retry, delete, re-enqueue a copy: each shown only when the job's state allows it. */
function Actions(props: { job: Job; onChange: (job: Job) => void; onDeleting: () => void }) {
  const { job } = props
  const action = useAction()
  const [confirmDelete, setConfirmDelete] = useState(false)
  const canCancel = (job.status === 'pending' || job.status === 'active') && !job.cancel_requested
  const copy = () =>
    action.run(async () => {
      const { job: created } = await api.enqueue({
        kind: job.kind,
        queue: job.queue,
        service: job.service,
        params: job.params,
        priority: job.priority,
        max_attempts: job.max_attempts,
      })
      navigate(`/jobs/${created.id}`)
    })
  return (
    <>
      {canCancel && (
        <button
          type="button"
          disabled={action.busy}
          onClick={() => action.run(() => api.cancel(job.id).then(props.onChange))}
          data-testid="job-cancel"
        >
          Cancel
        </button>
      )}
      {(job.status === 'failed' || job.status === 'cancelled') && (
        <button
          type="button"
          class="primary"
          disabled={action.busy}
          onClick={() => action.run(() => api.retry(job.id).then(props.onChange))}
          data-testid="job-retry"
        >
          Retry
        </button>
      )}
      <button type="button" disabled={action.busy} onClick={copy} data-testid="job-copy">
        Enqueue a copy
      </button>
      {isTerminal(job.status) && (
        <button
          type="button"
          class="danger"
          disabled={action.busy}
          onClick={() => setConfirmDelete(true)}
          data-testid="job-delete"
        >
          Delete
        </button>
      )}
      <ErrorNote error={action.error} />
      {confirmDelete && (
        <Confirm
          title="Delete this job?"
          confirmLabel="Delete"
          danger
          busy={action.busy}
          onCancel={() => setConfirmDelete(false)}
          onConfirm={() =>
            action.run(async () => {
              props.onDeleting()
              await api.deleteJob(job.id)
              setConfirmDelete(false)
              navigate('/jobs')
            })
          }
        >
          <p>
            <code>{job.id}</code> and its {job.attempt_count} {job.attempt_count === 1 ? 'run' : 'runs'} will be removed
            for good.
          </p>
        </Confirm>
      )}
    </>
  )
}

/** The job page. Live: the job and its running run come with every event; the run list is read again when a run starts or ends. */
export function JobPage(props: { id: string }) {
  // The ids of the jobs this one depends on, as last shown.
  const dependencyIds = useRef<ReadonlySet<string>>(new Set())
  // The job's own events keep it current; only its dependencies' events call for a
  // read, since events carry no `dependencies` (their statuses and results).
  const loaded = useLoad(() => api.getJob(props.id), props.id, {
    affects: (e) => e.type === 'job' && dependencyIds.current.has(e.job.id),
    throttleMs: 300,
  })
  // Set once this page deletes the job: a run-list re-read still queued from an
  // earlier event would only meet a 404.
  const deleting = useRef(false)
  const runs = useLoad(
    () => (deleting.current ? Promise.resolve(shown.current) : api.listJobRuns(props.id)),
    props.id,
    {
      affects: (e) => e.type === 'job' && e.job.id === props.id && !e.job.current_run,
      throttleMs: 300,
    },
  )
  const [job, setJob] = useState<Job>()
  dependencyIds.current = new Set(job?.dependencies?.map((d) => d.id))
  const [runList, setRunList] = useState<Run[]>([])
  const shown = useRef(runList)
  shown.current = runList
  const [gone, setGone] = useState(false)
  useEffect(() => {
    setJob(loaded.data)
    setGone(false)
  }, [loaded.data])
  useEffect(() => setRunList(runs.data ?? []), [runs.data])
  useEffect(
    () =>
      onLiveEvent((event) => {
        if (event.type === 'deleted') {
          if (event.deleted.id === props.id) setGone(true)
          return
        }
        if (event.job.id !== props.id) return
        // Events carry the job without `dependencies`: keep those of the last read.
        setJob((shownJob) => ({
          ...event.job,
          dependencies: event.job.dependencies ?? (shownJob?.id === event.job.id ? shownJob.dependencies : undefined),
        }))
        const run = event.job.current_run
        if (!run) return
        // A new attempt: read the list again for its order and the previous run's end.
        if (!shown.current.some((r) => r.id === run.id)) runs.reload()
        else setRunList((list) => list.map((r) => (r.id === run.id ? run : r)))
      }),
    [props.id, runs.reload],
  )

  if (gone)
    return (
      <p data-testid="job-gone">
        This job was deleted. <Link to="/jobs">Back to jobs</Link>
      </p>
    )
  if (!job) return loaded.error ? <ErrorNote error={loaded.error} /> : <Loading />
  // `job.error` says why a job ended with no run to blame (a dependency, expiry).
  const lastError = job.error ?? [...runList].reverse().find((r) => r.error)?.error
  return (
    <section aria-labelledby="page-title" data-testid="page-job" data-id={job.id}>
      <PageHeader title={job.kind}>
        <Actions
          job={job}
          onChange={setJob}
          onDeleting={() => {
            deleting.current = true
          }}
        />
      </PageHeader>
      <p class="subtitle">
        <code>{job.id}</code> <Status status={job.status} testid="job-status" />
        {job.cancel_requested && !isTerminal(job.status) && <span class="badge paused">cancel requested</span>}
      </p>
      <dl class="facts card">
        <div>
          <dt>Queue</dt>
          <dd>{job.queue}</dd>
        </div>
        <div>
          <dt>Service</dt>
          <dd>{job.service || '—'}</dd>
        </div>
        <div>
          <dt>Priority</dt>
          <dd>{job.priority}</dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>
            {job.attempt_count} of {job.max_attempts}
          </dd>
        </div>
        <div>
          <dt>Enqueued</dt>
          <dd title={dateTime(job.enqueued_at)}>
            <Time at={job.enqueued_at} />
          </dd>
        </div>
        <div>
          <dt>Due</dt>
          <dd>
            <Time at={job.scheduled_at ?? job.enqueued_at} />
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>
            <Time at={job.started_at} />
          </dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>
            <Time at={job.completed_at} />
          </dd>
        </div>
        <div>
          <dt>Idempotency key</dt>
          <dd>{job.idempotency_key ?? '—'}</dd>
        </div>
        {job.expires_at && (
          <div>
            <dt>Expires</dt>
            <dd title={dateTime(job.expires_at)} data-testid="job-expires">
              <Time at={job.expires_at} />
            </dd>
          </div>
        )}
        {job.timeout_seconds !== null && (
          <div>
            <dt>Run timeout</dt>
            <dd data-testid="job-timeout">{duration(job.timeout_seconds)}</dd>
          </div>
        )}
      </dl>
      {job.dependencies && job.dependencies.length > 0 && (
        <section class="card">
          <h2>Depends on</h2>
          <Dependencies dependencies={job.dependencies} />
        </section>
      )}
      <div class="grid">
        <section class="card">
          <h2>Params</h2>
          <Json value={job.params} testid="job-params" />
        </section>
        <section class="card">
          <h2>Result</h2>
          <Json value={job.result} testid="job-result" />
        </section>
        {lastError && (
          <section class="card wide">
            <h2>Last error</h2>
            <pre class="json error-text" data-testid="job-error">
              {lastError}
            </pre>
          </section>
        )}
      </div>
      <section class="card">
        <h2>Runs</h2>
        <ErrorNote error={runs.error} />
        {runs.data ? <Runs runs={runList} /> : <Loading error={runs.error} />}
      </section>
    </section>
  )
}
