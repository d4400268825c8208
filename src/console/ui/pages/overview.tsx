/** Overview: counts by queue and kind, the last hour's throughput, workers, and database health. */
import { api, type DatabaseHealth, type QueueSummary, type WorkerSummary } from '../api'
import { ThroughputChart } from '../chart'
import { ErrorNote, Link, Loading, PageHeader } from '../components'
import { count, duration } from '../format'
import { useLoad } from '../hooks'

function Totals(props: { queues: QueueSummary[]; workers: WorkerSummary[] | undefined }) {
  const { queues, workers } = props
  const total = (key: 'pending' | 'scheduled' | 'active' | 'succeeded_last_hour' | 'failed_last_hour') =>
    queues.reduce((n, q) => n + q[key], 0)
  const oldest = Math.max(0, ...queues.map((q) => q.oldest_pending_age_seconds ?? 0))
  const stats: [string, string, string][] = [
    ['Pending', count(total('pending')), 'total-pending'],
    ['Scheduled', count(total('scheduled')), 'total-scheduled'],
    ['Active', count(total('active')), 'total-active'],
    ['Succeeded (1 h)', count(total('succeeded_last_hour')), 'total-succeeded'],
    ['Failed (1 h)', count(total('failed_last_hour')), 'total-failed'],
    ['Oldest pending', oldest ? duration(oldest) : '—', 'oldest-pending'],
    ['Workers running', workers ? count(workers.filter((w) => w.running.length > 0).length) : '…', 'total-workers'],
  ]
  return (
    <dl class="totals">
      {stats.map(([name, value, testid]) => (
        <div key={name} class="card total">
          <dt>{name}</dt>
          <dd data-testid={testid}>{value}</dd>
        </div>
      ))}
    </dl>
  )
}

/** Per queue, then per kind inside it. */
function QueueCounts(props: { queues: QueueSummary[] }) {
  if (props.queues.length === 0) return <p class="muted">No jobs yet.</p>
  return (
    <div class="table-wrap">
      <table data-testid="overview-queues">
        <thead>
          <tr>
            <th scope="col">Queue / kind</th>
            <th scope="col">Pending</th>
            <th scope="col">Scheduled</th>
            <th scope="col">Active</th>
            <th scope="col">Succeeded 1 h</th>
            <th scope="col">Failed 1 h</th>
            <th scope="col">Oldest pending</th>
          </tr>
        </thead>
        <tbody>
          {props.queues.flatMap((q) => [
            <tr key={q.queue} class="group" data-testid="overview-queue" data-queue={q.queue}>
              <th scope="row">
                <Link to={`/jobs?queue=${encodeURIComponent(q.queue)}`}>{q.queue}</Link>
                {q.paused && <span class="badge paused">paused</span>}
              </th>
              <td>{count(q.pending)}</td>
              <td>{count(q.scheduled)}</td>
              <td>{count(q.active)}</td>
              <td>{count(q.succeeded_last_hour)}</td>
              <td class={q.failed_last_hour ? 'bad' : undefined}>{count(q.failed_last_hour)}</td>
              <td>{q.pending ? duration(q.oldest_pending_age_seconds) : '—'}</td>
            </tr>,
            ...q.kinds.map((k) => (
              <tr key={`${q.queue}/${k.kind}`} class="sub">
                <th scope="row">
                  <Link to={`/jobs?queue=${encodeURIComponent(q.queue)}&kind=${encodeURIComponent(k.kind)}`}>
                    {k.kind}
                  </Link>
                </th>
                <td>{count(k.pending)}</td>
                <td>{count(k.scheduled)}</td>
                <td>{count(k.active)}</td>
                <td>{count(k.succeeded_last_hour)}</td>
                <td class={k.failed_last_hour ? 'bad' : undefined}>{count(k.failed_last_hour)}</td>
                <td />
              </tr>
            )),
          ])}
        </tbody>
      </table>
    </div>
  )
}

function Workers(props: { workers: WorkerSummary[] }) {
  const running = props.workers.filter((w) => w.running.length > 0)
  return (
    <div data-testid="workers-summary">
      <p>
        {count(running.length)} running, {count(props.workers.length - running.length)} idle (seen in the last hour).{' '}
        <Link to="/workers">All workers</Link>
      </p>
      <ul class="plain">
        {running.slice(0, 8).map((w) => (
          <li key={w.worker_id}>
            <code>{w.worker_id}</code>: {w.running.map((r) => r.kind).join(', ')}
          </li>
        ))}
      </ul>
    </div>
  )
}

function Database(props: { health: DatabaseHealth }) {
  const { tables, warnings, oldest_transaction_age_seconds } = props.health
  return (
    <div data-testid="db-health">
      {warnings.length === 0 ? (
        <p class="good" data-testid="db-ok">
          Healthy: nothing to worry about.
        </p>
      ) : (
        <ul class="warnings" role="alert" data-testid="db-warnings">
          {warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
      <p>Oldest open transaction: {duration(oldest_transaction_age_seconds)}</p>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Table</th>
              <th scope="col">Rows</th>
              <th scope="col">Dead rows</th>
              <th scope="col">Last autovacuum</th>
            </tr>
          </thead>
          <tbody>
            {tables.map((t) => (
              <tr key={t.table}>
                <th scope="row">
                  <code>{t.table}</code>
                </th>
                <td>{count(t.live_tuples)}</td>
                <td>{count(t.dead_tuples)}</td>
                <td>{t.last_autovacuum ? new Date(t.last_autovacuum).toLocaleString() : 'never'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  )
}

/** The overview page. */
export function OverviewPage() {
  const queues = useLoad(api.listQueues, 'queues')
  const workers = useLoad(api.listWorkers, 'workers')
  const stats = useLoad(() => api.stats(), 'stats', { throttleMs: 5000 })
  const database = useLoad(api.databaseHealth, 'database', { throttleMs: 30_000 })
  return (
    <section aria-labelledby="page-title" data-testid="page-overview">
      <PageHeader title="Overview" />
      <ErrorNote error={queues.error} />
      {queues.data ? <Totals queues={queues.data} workers={workers.data} /> : <Loading error={queues.error} />}
      <div class="grid">
        <section class="card wide">
          <h2>Throughput, last hour</h2>
          <ErrorNote error={stats.error} />
          {stats.data ? <ThroughputChart stats={stats.data} /> : <Loading error={stats.error} />}
        </section>
        <section class="card wide">
          <h2>Queues and kinds</h2>
          {queues.data && <QueueCounts queues={queues.data} />}
        </section>
        <section class="card">
          <h2>Workers</h2>
          <ErrorNote error={workers.error} />
          {workers.data ? <Workers workers={workers.data} /> : <Loading error={workers.error} />}
        </section>
        <section class="card">
          <h2>Database</h2>
          <ErrorNote error={database.error} />
          {database.data ? <Database health={database.data} /> : <Loading error={database.error} />}
        </section>
      </div>
    </section>
  )
}
