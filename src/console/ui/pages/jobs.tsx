/** Jobs: a filtered, keyset-paged table that follows live changes, with multi-select and bulk actions. */
import { useEffect, useMemo, useState } from 'preact/hooks'
import { api, type Job, type JobFilter } from '../api'
import { BulkActions } from '../bulk'
import { ErrorNote, Link, Loading, PageHeader, Status, Time } from '../components'
import { type FilterForm, filterFromForm, formFromQuery, matches, queryFromForm } from '../filter'
import { useLoad } from '../hooks'
import { onLiveEvent } from '../live'
import { navigate } from '../router'

const PAGE = 50
/** Every job status in lifecycle order; as a Record, tsc names any status the API gains and this list lacks. */
const STATUSES = Object.keys({
  waiting: true,
  pending: true,
  active: true,
  succeeded: true,
  failed: true,
  cancelled: true,
} satisfies Record<Job['status'], true>)

function Filters(props: { initial: FilterForm; onApply: (form: FilterForm) => void }) {
  const [form, setForm] = useState(props.initial)
  useEffect(() => setForm(props.initial), [props.initial])
  const field = (name: keyof FilterForm, label: string, placeholder = '') => (
    <label>
      {label}
      <input
        value={form[name]}
        placeholder={placeholder}
        onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })}
        data-testid={`filter-${name}`}
      />
    </label>
  )
  return (
    <form
      class="filters"
      aria-label="Filter jobs"
      onSubmit={(e) => {
        e.preventDefault()
        props.onApply(form)
      }}
    >
      <label>
        Status
        <select
          value={form.status}
          onChange={(e) => setForm({ ...form, status: e.currentTarget.value })}
          data-testid="filter-status"
        >
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {field('kind', 'Kind')}
      {field('queue', 'Queue')}
      {field('service', 'Service')}
      {field('params', 'Payload contains (JSON)', '{"customer": 42}')}
      <button type="submit" class="primary" data-testid="filter-apply">
        Apply
      </button>
    </form>
  )
}

/** Puts `job` into a newest-first page: replaces it, or inserts it where its id sorts if it falls inside the page. */
function merge(rows: Job[], job: Job, filter: JobFilter, firstPage: boolean): Job[] {
  const at = rows.findIndex((r) => r.id === job.id)
  if (at >= 0) return rows.map((r) => (r.id === job.id ? { ...r, ...job } : r))
  if (!matches(job, filter)) return rows
  const last = rows[rows.length - 1]
  // Beyond the page's oldest row it belongs to a later page (unless the page is not full).
  if (last && job.id < last.id && rows.length >= PAGE) return rows
  if (!firstPage && rows[0] && job.id > rows[0].id) return rows
  const next = [...rows, job].sort((a, b) => (a.id < b.id ? 1 : -1))
  return next
}

/** The jobs page; filters and the page's cursor live in the URL. */
export function JobsPage(props: { query: URLSearchParams }) {
  const queryText = props.query.toString()
  const form = useMemo(() => formFromQuery(props.query), [queryText])
  const cursor = props.query.get('cursor') ?? undefined
  const parsed = useMemo((): { filter?: JobFilter; error?: string } => {
    try {
      return { filter: filterFromForm(form) }
    } catch (e) {
      return { error: (e as Error).message }
    }
  }, [form])
  const filter = parsed.filter
  const page = useLoad(
    () => (filter ? api.listJobs(filter, cursor, PAGE) : Promise.resolve([])),
    `${queryText}`,
    // Rows follow the stream below; a reload is only needed after the stream was lost.
    { affects: () => false },
  )
  const [rows, setRows] = useState<Job[]>([])
  const [selected, setSelected] = useState<Set<string>>(new Set())
  useEffect(() => {
    if (page.data) setRows(page.data)
  }, [page.data])
  useEffect(() => setSelected(new Set()), [queryText])
  useEffect(
    () =>
      onLiveEvent((event) => {
        if (!filter) return
        if (event.type === 'deleted') setRows((r) => r.filter((j) => j.id !== event.deleted.id))
        else setRows((r) => merge(r, event.job, filter, !cursor))
      }),
    [filter, cursor],
  )

  const apply = (next: FilterForm) => navigate(`/jobs${queryFromForm(next)}`, true)
  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s)
      if (next.has(id)) next.delete(id)
      else next.add(id)
      return next
    })
  const allSelected = rows.length > 0 && rows.every((r) => selected.has(r.id))
  const last = rows[rows.length - 1]
  const nextQuery = new URLSearchParams(props.query)
  if (last) nextQuery.set('cursor', last.id)
  const firstQuery = new URLSearchParams(props.query)
  firstQuery.delete('cursor')

  return (
    <section aria-labelledby="page-title" data-testid="page-jobs">
      <PageHeader title="Jobs" />
      <Filters initial={form} onApply={apply} />
      <ErrorNote error={parsed.error ?? page.error} />
      <BulkActions
        selected={[...selected].filter((id) => rows.some((r) => r.id === id))}
        filter={filter}
        onDone={() => {
          setSelected(new Set())
          page.reload()
        }}
      />
      {page.data === undefined && !page.error ? (
        <Loading error={page.error} />
      ) : (
        <div class="table-wrap">
          <table class="jobs" data-testid="jobs-table">
            <thead>
              <tr>
                <th scope="col" class="check">
                  <input
                    type="checkbox"
                    aria-label="Select every job on this page"
                    checked={allSelected}
                    onChange={() => setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.id)))}
                    data-testid="select-all"
                  />
                </th>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Queue</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Enqueued</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((job) => (
                <tr key={job.id} data-testid="job-row" data-id={job.id} data-status={job.status}>
                  <td class="check">
                    <input
                      type="checkbox"
                      aria-label={`Select ${job.id}`}
                      checked={selected.has(job.id)}
                      onChange={() => toggle(job.id)}
                      data-testid="row-select"
                    />
                  </td>
                  <td>
                    <Link to={`/jobs/${job.id}`}>
                      <code>{job.id}</code>
                    </Link>
                  </td>
                  <td>{job.kind}</td>
                  <td>{job.queue}</td>
                  <td>
                    <Status status={job.status} />
                    {job.cancel_requested && job.status === 'active' && <span class="muted"> stopping</span>}
                  </td>
                  <td>
                    {job.attempt_count} / {job.max_attempts}
                  </td>
                  <td>
                    <Time at={job.enqueued_at} />
                  </td>
                  <td>
                    <Time at={job.updated_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {rows.length === 0 && <p class="muted">No jobs match.</p>}
        </div>
      )}
      <nav class="pager" aria-label="Pages">
        {cursor && (
          <Link to={`/jobs${firstQuery.size ? `?${firstQuery}` : ''}`} testid="page-first">
            ← Newest
          </Link>
        )}
        {rows.length >= PAGE && last && (
          <Link to={`/jobs?${nextQuery}`} testid="page-next">
            Older →
          </Link>
        )}
      </nav>
    </section>
  )
}
