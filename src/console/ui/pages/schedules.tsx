/** Schedules: when each fires next, enable/disable, fire now, create and edit. */
import { useState } from 'preact/hooks'
import { api, type Schedule, type ScheduleBody } from '../api'
import { Confirm, ErrorNote, Link, Loading, PageHeader, Time } from '../components'
import { dateTime } from '../format'
import { useAction, useLoad } from '../hooks'
import { ScheduleForm } from './schedule-form'

/** A schedule as a full body for PUT, with `changes` applied. */
const asBody = (s: Schedule, changes: Partial<ScheduleBody> = {}): ScheduleBody => ({
  kind: s.kind,
  queue: s.queue,
  service: s.service,
  params: s.params,
  priority: s.priority,
  max_attempts: s.max_attempts,
  cron_expr: s.cron_expr,
  timezone: s.timezone,
  enabled: s.enabled,
  ...changes,
})

function Row(props: { schedule: Schedule; onEdit: () => void; onChange: () => void }) {
  const { schedule: s } = props
  const action = useAction()
  const [fired, setFired] = useState<string>()
  const [deleting, setDeleting] = useState(false)
  const act = (work: () => Promise<unknown>) =>
    action.run(async () => {
      await work()
      props.onChange()
    })
  return (
    <tr data-testid="schedule-row" data-id={s.id} data-enabled={String(s.enabled)}>
      <th scope="row">
        {s.kind}
        <div class="muted small">{s.queue}</div>
      </th>
      <td>
        <code>{s.cron_expr}</code>
        <div class="muted small">{s.timezone}</div>
      </td>
      <td>
        {s.enabled ? <span class="badge status-active">enabled</span> : <span class="badge paused">disabled</span>}
      </td>
      <td title={s.next_fire_at ? dateTime(s.next_fire_at, s.timezone) : undefined}>
        {s.enabled ? <Time at={s.next_fire_at} /> : <span class="muted">—</span>}
      </td>
      <td>
        {s.last_job_id ? (
          <Link to={`/jobs/${s.last_job_id}`}>
            <Time at={s.last_fire_at} />
          </Link>
        ) : (
          <Time at={s.last_fire_at} />
        )}
        {s.last_error && <div class="error-text small">{s.last_error}</div>}
        {fired && (
          <div class="small">
            <Link to={`/jobs/${fired}`}>fired</Link>
          </div>
        )}
      </td>
      <td class="row-actions">
        <button
          type="button"
          disabled={action.busy}
          onClick={() => act(async () => setFired((await api.fireSchedule(s.id)).id))}
          data-testid="schedule-fire"
        >
          Fire now
        </button>
        <button
          type="button"
          disabled={action.busy}
          onClick={() => act(() => api.replaceSchedule(s.id, asBody(s, { enabled: !s.enabled })))}
          data-testid="schedule-toggle"
        >
          {s.enabled ? 'Disable' : 'Enable'}
        </button>
        <button type="button" onClick={props.onEdit} data-testid="schedule-edit">
          Edit
        </button>
        <button type="button" class="danger" disabled={action.busy} onClick={() => setDeleting(true)}>
          Delete
        </button>
        <ErrorNote error={action.error} />
        {deleting && (
          <Confirm
            title="Delete this schedule?"
            confirmLabel="Delete"
            danger
            busy={action.busy}
            onCancel={() => setDeleting(false)}
            onConfirm={() => act(() => api.deleteSchedule(s.id)).then(() => setDeleting(false))}
          >
            <p>
              {s.kind} ({s.cron_expr}) will stop firing. Jobs it already enqueued stay.
            </p>
          </Confirm>
        )}
      </td>
    </tr>
  )
}

/** The schedules page. Fires enqueue jobs, so job events (throttled) bring the fire times up to date. */
export function SchedulesPage() {
  const schedules = useLoad(api.listSchedules, 'schedules', { throttleMs: 2000 })
  const [editing, setEditing] = useState<Schedule | 'new'>()
  return (
    <section aria-labelledby="page-title" data-testid="page-schedules">
      <PageHeader title="Schedules">
        <button type="button" class="primary" onClick={() => setEditing('new')} data-testid="schedule-new">
          New schedule
        </button>
      </PageHeader>
      {editing && (
        <ScheduleForm
          key={editing === 'new' ? 'new' : editing.id}
          schedule={editing === 'new' ? undefined : editing}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined)
            schedules.reload()
          }}
        />
      )}
      <ErrorNote error={schedules.error} />
      {!schedules.data ? (
        <Loading error={schedules.error} />
      ) : (
        <div class="table-wrap">
          <table data-testid="schedules-table">
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">When</th>
                <th scope="col">State</th>
                <th scope="col">Next fire</th>
                <th scope="col">Last fire</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {schedules.data.map((s) => (
                <Row key={s.id} schedule={s} onEdit={() => setEditing(s)} onChange={schedules.reload} />
              ))}
            </tbody>
          </table>
          {schedules.data.length === 0 && <p class="muted">No schedules yet.</p>}
        </div>
      )}
    </section>
  )
}
