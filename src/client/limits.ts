/** `client.limits`: flow-control limits per kind (`/limits`), kept apart so client.ts stays one screenful of routes. */
import type { Transport } from './http'
import type { Limits, LimitsBody, LimitsDeleted, LimitsDetail, LimitsGetQuery } from './types'

const enc = encodeURIComponent

/** The limit methods of a ForemanClient. */
export interface LimitsClient {
  /**
   * `GET /limits/:kind`: the limits, the kind's running and pending jobs and rate
   * window, and its busiest keys (`keys_limit`, 1–200, default 20); a kind without
   * limits throws ForemanError 404.
   * @example const { active, keys } = await foreman.limits.get('export', { keys_limit: 5 })
   */
  get(kind: string, query?: LimitsGetQuery): Promise<LimitsDetail>
  /** `GET /limits`: every kind that has limits, by kind. */
  list(): Promise<Limits[]>
  /**
   * `PUT /limits/:kind`: a full replace (a field left out is no limit); answers the stored limits.
   * @example await foreman.limits.set('export', { max_active_per_key: 2, rate: { limit: 100, per_seconds: 60 } })
   */
  set(kind: string, body: LimitsBody): Promise<Limits>
  /** `DELETE /limits/:kind`: answers `{ kind }`; a kind without limits throws ForemanError 404. */
  delete(kind: string): Promise<LimitsDeleted>
}

/** The limit methods over a client's transport. PUT and DELETE are retried like any idempotent call. */
export function limitsClient(http: Transport): LimitsClient {
  const call = async <T>(method: string, path: string, body?: unknown, query?: LimitsGetQuery) =>
    (await http.json<T>({ method, path, body, query, idempotent: true })).body
  return {
    get: (kind, query) => call('GET', `/limits/${enc(kind)}`, undefined, query),
    list: () => call('GET', '/limits'),
    set: (kind, body) => call('PUT', `/limits/${enc(kind)}`, body),
    delete: (kind) => call('DELETE', `/limits/${enc(kind)}`),
  }
}
