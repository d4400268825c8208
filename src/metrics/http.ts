/**
 * Times every HTTP request by method, route template and status. Elysia applies
 * hooks only to routes registered after them, so the app uses this before its
 * routes. Error answers carry their status in `set.status` (the app's onError puts
 * it there); a handler that answers with a Response carries its own.
 */
import { Elysia } from 'elysia'
import type { Metrics } from './registry'

/** Label for requests that matched no route: never the raw path (ids would explode the series). */
export const UNMATCHED_ROUTE = 'unmatched'

/** The request-timing plugin. */
export function httpMetrics(metrics: Metrics) {
  const started = new WeakMap<Request, number>()
  return new Elysia()
    .onRequest(({ request }) => {
      started.set(request, performance.now())
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      const begun = started.get(request)
      if (begun === undefined) return
      const status =
        responseValue instanceof Response ? responseValue.status : typeof set.status === 'number' ? set.status : 200
      metrics.httpDuration.observe(
        { method: request.method, route: route || UNMATCHED_ROUTE, status: String(status) },
        (performance.now() - begun) / 1000,
      )
    })
}
