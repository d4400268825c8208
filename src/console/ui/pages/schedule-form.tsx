/**
 * Create or edit a schedule, with a preview of its next five fire times in its
 * own time zone. The preview uses the server's own recurrence rules
 * (src/schedules/recurrence.ts, croner underneath), so it shows what the server
 * will do and the same message for an expression it would refuse.
 */
import { useMemo, useState } from 'preact/hooks'
import { parseRecurrence } from '../../../schedules/recurrence'
import { api, type Schedule, type ScheduleBody } from '../api'
import { ErrorNote } from '../components'
import { dateTime } from '../format'
import { useAction } from '../hooks'

interface Form {
  kind: string
  queue: string
  service: string
  params: string
  priority: string
  max_attempts: string
  cron_expr: string
  timezone: string
  enabled: boolean
}

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone

function formOf(s: Schedule | undefined): Form {
  return {
    kind: s?.kind ?? '',
    queue: s?.queue ?? 'default',
    service: s?.service ?? '',
    params: s ? JSON.stringify(s.params ?? {}, null, 2) : '{}',
    priority: String(s?.priority ?? 0),
    max_attempts: String(s?.max_attempts ?? 1),
    cron_expr: s?.cron_expr ?? '*/15 * * * *',
    timezone: s?.timezone ?? browserZone ?? 'UTC',
    enabled: s?.enabled ?? true,
  }
}

/** The next `n` fire times of `expr` in `timezone`, or why there are none. */
export function preview(expr: string, timezone: string, n = 5): { times: Date[] } | { error: string } {
  try {
    const recurrence = parseRecurrence(expr, timezone)
    const times: Date[] = []
    let at = new Date()
    let previous: Date | null = null
    for (let i = 0; i < n; i++) {
      at = recurrence.next(at, previous)
      previous = at
      times.push(at)
    }
    return { times }
  } catch (error) {
    return { error: (error as Error).message }
  }
}

function bodyOf(form: Form): ScheduleBody {
  let params: unknown
  try {
    params = JSON.parse(form.params || '{}')
  } catch {
    throw new Error('params: not valid JSON')
  }
  return {
    kind: form.kind.trim(),
    queue: form.queue.trim() || undefined,
    service: form.service.trim() || undefined,
    params,
    priority: Number(form.priority),
    max_attempts: Number(form.max_attempts),
    cron_expr: form.cron_expr,
    timezone: form.timezone.trim() || undefined,
    enabled: form.enabled,
  }
}

/** The form; `schedule` is the one being edited (a full replace), none to create. */
export function ScheduleForm(props: { schedule?: Schedule; onSaved: () => void; onClose: () => void }) {
  const [form, setForm] = useState(() => formOf(props.schedule))
  const action = useAction()
  const next = useMemo(() => preview(form.cron_expr, form.timezone), [form.cron_expr, form.timezone])
  const zones = useMemo(() => Intl.supportedValuesOf('timeZone'), [])
  const set = (field: keyof Form) => (e: { currentTarget: HTMLInputElement | HTMLTextAreaElement }) =>
    setForm({ ...form, [field]: e.currentTarget.value })
  const save = () =>
    action.run(async () => {
      const body = bodyOf(form)
      if (props.schedule) await api.replaceSchedule(props.schedule.id, body)
      else await api.createSchedule(body)
      props.onSaved()
    })
  return (
    <form
      class="card schedule-form"
      aria-label={props.schedule ? 'Edit schedule' : 'New schedule'}
      data-testid="schedule-form"
      onSubmit={(e) => {
        e.preventDefault()
        void save()
      }}
    >
      <h2>{props.schedule ? `Edit ${props.schedule.kind}` : 'New schedule'}</h2>
      <div class="form-grid">
        <label>
          Kind
          <input required value={form.kind} onInput={set('kind')} data-testid="schedule-kind" />
        </label>
        <label>
          Queue
          <input value={form.queue} onInput={set('queue')} />
        </label>
        <label>
          Service
          <input value={form.service} onInput={set('service')} />
        </label>
        <label>
          Priority
          <input type="number" value={form.priority} onInput={set('priority')} />
        </label>
        <label>
          Max attempts
          <input type="number" min={1} value={form.max_attempts} onInput={set('max_attempts')} />
        </label>
        <label>
          Cron expression
          <input required value={form.cron_expr} onInput={set('cron_expr')} data-testid="schedule-cron" />
        </label>
        <label>
          Time zone
          <input list="time-zones" value={form.timezone} onInput={set('timezone')} data-testid="schedule-timezone" />
          <datalist id="time-zones">
            {zones.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </label>
        <label class="inline">
          <input
            type="checkbox"
            checked={form.enabled}
            onChange={(e) => setForm({ ...form, enabled: e.currentTarget.checked })}
          />
          Enabled
        </label>
        <label class="wide">
          Params (JSON)
          <textarea rows={4} value={form.params} onInput={set('params')} />
        </label>
      </div>
      <div class="preview" aria-live="polite" data-testid="cron-preview">
        {'error' in next ? (
          <p class="error-note">{next.error}</p>
        ) : (
          <>
            <p class="muted">Next fire times in {form.timezone}:</p>
            <ol>
              {next.times.map((t) => (
                <li key={t.getTime()}>{dateTime(t, form.timezone)}</li>
              ))}
            </ol>
          </>
        )}
      </div>
      <ErrorNote error={action.error} />
      <div class="actions">
        <button type="button" onClick={props.onClose}>
          Close
        </button>
        <button type="submit" class="primary" disabled={action.busy} data-testid="schedule-save">
          Save
        </button>
      </div>
    </form>
  )
}
