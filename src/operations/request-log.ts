/** One structured log line per request: method, route template, status, duration. */
import { Elysia } from 'elysia'
import type { Logger } from '../log'

/** Logs every answered request at info (5xx at error) with its duration in milliseconds. */
export function requestLog(log: Logger) {
  const started = new WeakMap<Request, number>()
  return new Elysia()
    .onRequest(({ request }) => {
      started.set(request, performance.now())
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set }) => {
      const status = typeof set.status === 'number' ? set.status : 200
      // At LOG_LEVEL=warn (what a busy deployment runs) build no line at all.
      if (status < 500 && !log.isLevelEnabled('info')) return
      const begun = started.get(request)
      const line = {
        method: request.method,
        // The template (/foreman/jobs/:id), not the URL: ids would make every line unique.
        route: route || 'unmatched',
        status,
        duration_ms: begun === undefined ? undefined : Math.round((performance.now() - begun) * 100) / 100,
      }
      if (status >= 500) log.error(line, 'request')
      else log.info(line, 'request')
    })
}
