/** Queues: what waits and runs in each, and pause/resume. */
import { api, type QueueSummary } from '../api'
import { ErrorNote, Link, Loading, PageHeader, Time } from '../components'
import { count, duration } from '../format'
import { useAction, useLoad } from '../hooks'

function Row(props: { queue: QueueSummary; onChange: () => void }) {
  const { queue: q } = props
  const action = useAction()
  const toggle = () =>
    action.run(async () => {
      await (q.paused ? api.resumeQueue(q.queue) : api.pauseQueue(q.queue))
      props.onChange()
    })
  return (
    <tr data-testid="queue-row" data-queue={q.queue} data-paused={String(q.paused)}>
      <th scope="row">
        <Link to={`/jobs?queue=${encodeURIComponent(q.queue)}`}>{q.queue}</Link>
      </th>
      <td>
        {q.paused ? (
          <span class="badge paused" data-testid="queue-state">
            paused <Time at={q.paused_at} />
          </span>
        ) : (
          <span class="badge status-active" data-testid="queue-state">
            running
          </span>
        )}
      </td>
      <td>{count(q.pending)}</td>
      <td>{count(q.scheduled)}</td>
      <td>{count(q.active)}</td>
      <td>{q.pending ? duration(q.oldest_pending_age_seconds) : '—'}</td>
      <td>
        {count(q.succeeded_last_minute)} / {count(q.succeeded_last_hour)}
      </td>
      <td class={q.failed_last_hour ? 'bad' : undefined}>
        {count(q.failed_last_minute)} / {count(q.failed_last_hour)}
      </td>
      <td>{q.kinds.map((k) => k.kind).join(', ')}</td>
      <td>
        <button
          type="button"
          class={q.paused ? 'primary' : undefined}
          disabled={action.busy}
          onClick={toggle}
          aria-label={`${q.paused ? 'Resume' : 'Pause'} queue ${q.queue}`}
          data-testid="queue-toggle"
        >
          {q.paused ? 'Resume' : 'Pause'}
        </button>
        <ErrorNote error={action.error} />
      </td>
    </tr>
  )
}

/** The queues page. */
export function QueuesPage() {
  const queues = useLoad(api.listQueues, 'queues')
  return (
    <section aria-labelledby="page-title" data-testid="page-queues">
      <PageHeader title="Queues" />
      <p class="muted">A paused queue keeps its jobs; no worker claims from it until it is resumed.</p>
      <ErrorNote error={queues.error} />
      {!queues.data ? (
        <Loading error={queues.error} />
      ) : (
        <div class="table-wrap">
          <table data-testid="queues-table">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col">State</th>
                <th scope="col">Pending</th>
                <th scope="col">Scheduled</th>
                <th scope="col">Active</th>
                <th scope="col">Oldest pending</th>
                <th scope="col">Succeeded 1 m / 1 h</th>
                <th scope="col">Failed 1 m / 1 h</th>
                <th scope="col">Kinds</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {queues.data.map((q) => (
                <Row key={q.queue} queue={q} onChange={queues.reload} />
              ))}
            </tbody>
          </table>
          {queues.data.length === 0 && <p class="muted">No queues yet: a queue appears with its first job.</p>}
        </div>
      )}
    </section>
  )
}
