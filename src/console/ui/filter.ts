/** The jobs page's filter: read from and written to the URL, checked against live events. */
import type { Job, JobFilter } from './api'

/** What the filter form holds (text as typed). */
export interface FilterForm {
  status: string
  kind: string
  queue: string
  service: string
  params: string
}

const FIELDS = ['status', 'kind', 'queue', 'service', 'params'] as const

/** The form's values from a URL query. */
export function formFromQuery(query: URLSearchParams): FilterForm {
  return Object.fromEntries(FIELDS.map((f) => [f, query.get(f) ?? ''])) as unknown as FilterForm
}

/** The URL query for a form (empty fields left out). */
export function queryFromForm(form: FilterForm): string {
  const query = new URLSearchParams()
  for (const field of FIELDS) if (form[field].trim()) query.set(field, form[field].trim())
  const text = query.toString()
  return text ? `?${text}` : ''
}

/** The API filter for a form; throws naming `params` when it is not a JSON object. */
export function filterFromForm(form: FilterForm): JobFilter {
  const filter: JobFilter = {}
  if (form.status) filter.status = form.status as JobFilter['status']
  if (form.kind.trim()) filter.kind = form.kind.trim()
  if (form.queue.trim()) filter.queue = form.queue.trim()
  if (form.service.trim()) filter.service = form.service.trim()
  if (form.params.trim()) {
    let params: unknown
    try {
      params = JSON.parse(form.params)
    } catch {
      throw new Error('Payload search: not valid JSON (e.g. {"customer": 42})')
    }
    if (params === null || typeof params !== 'object' || Array.isArray(params)) {
      throw new Error('Payload search: must be a JSON object (e.g. {"customer": 42})')
    }
    filter.params = params as Record<string, unknown>
  }
  return filter
}

/** Postgres' `@>` for JSON: objects by key, arrays by element, scalars by equality. */
export function contains(whole: unknown, part: unknown): boolean {
  if (Array.isArray(part)) {
    return Array.isArray(whole) && part.every((p) => whole.some((w) => contains(w, p)))
  }
  if (part !== null && typeof part === 'object') {
    if (whole === null || typeof whole !== 'object' || Array.isArray(whole)) return false
    const w = whole as Record<string, unknown>
    return Object.entries(part).every(([key, value]) => key in w && contains(w[key], value))
  }
  return whole === part
}

/** True when `job` belongs in a list filtered by `filter`. */
export function matches(job: Job, filter: JobFilter): boolean {
  if (filter.status && job.status !== filter.status) return false
  if (filter.kind && job.kind !== filter.kind) return false
  if (filter.queue && job.queue !== filter.queue) return false
  if (filter.service && job.service !== filter.service) return false
  return !filter.params || contains(job.params, filter.params)
}

/** The filter in words, for a confirmation: `status failed, kind email`. */
export function describeFilter(filter: JobFilter): string {
  const parts = Object.entries(filter).map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`)
  return parts.length ? parts.join(', ') : 'no filter: every job'
}
