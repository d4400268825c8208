/** Workers: who runs what now, their last heartbeat, and what they finished in the last hour. */
import { api } from '../api'
import { ErrorNote, Link, Loading, PageHeader, Progress, Time } from '../components'
import { count } from '../format'
import { useLoad } from '../hooks'

/** The workers page. */
export function WorkersPage() {
  const workers = useLoad(api.listWorkers, 'workers')
  return (
    <section aria-labelledby="page-title" data-testid="page-workers">
      <PageHeader title="Workers" />
      <p class="muted">Workers holding a run now or that finished one in the last hour.</p>
      <ErrorNote error={workers.error} />
      {!workers.data ? (
        <Loading error={workers.error} />
      ) : (
        <div class="table-wrap">
          <table data-testid="workers-table">
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Running</th>
                <th scope="col">Last heartbeat</th>
                <th scope="col">Finished 1 h</th>
                <th scope="col">Succeeded</th>
                <th scope="col">Failed</th>
              </tr>
            </thead>
            <tbody>
              {workers.data.map((w) => (
                <tr key={w.worker_id} data-testid="worker-row" data-worker={w.worker_id}>
                  <th scope="row">
                    <code>{w.worker_id}</code>
                  </th>
                  <td>
                    {w.running.length === 0 ? (
                      <span class="muted">idle</span>
                    ) : (
                      <ul class="plain">
                        {w.running.map((r) => (
                          <li key={r.run_id}>
                            <Link to={`/jobs/${r.job_id}`}>{r.kind}</Link>{' '}
                            <span class="muted">
                              ({r.queue}, attempt {r.attempt}, started <Time at={r.started_at} />)
                            </span>
                            <Progress
                              current={r.progress_current}
                              total={r.progress_total}
                              message={r.progress_message}
                            />
                          </li>
                        ))}
                      </ul>
                    )}
                  </td>
                  <td>
                    <Time at={w.last_heartbeat_at} />
                  </td>
                  <td>{count(w.finished_last_hour)}</td>
                  <td>{count(w.succeeded_last_hour)}</td>
                  <td class={w.failed_last_hour ? 'bad' : undefined}>{count(w.failed_last_hour)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {workers.data.length === 0 && <p class="muted">No worker in the last hour.</p>}
        </div>
      )}
    </section>
  )
}
