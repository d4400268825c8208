/** HTTP controller for throughput stats. */
import { Elysia } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody } from '../http/schema'
import { maxAgeOf, sharedReads } from '../http/shared-read'
import type { StatsWindow } from './model'
import { Stats, StatsQuery } from './model'
import { getStats } from './service'

/** GET /stats. */
export const statsRoutes = (deps: Deps) => {
  const stats = sharedReads((window: StatsWindow | undefined) => getStats(deps, window))
  return new Elysia().get('/stats', ({ query }) => stats.read(query.window, maxAgeOf(query)), {
    query: StatsQuery,
    response: { 200: Stats, 400: ErrorBody },
    detail: {
      tags: ['operations'],
      summary: 'Throughput per minute and kind',
      description:
        'For charts: per minute (`bucket_seconds` 60) and kind, jobs enqueued, succeeded and failed for good, and runs retried (failed or abandoned with the job back to pending), from the start of the minute `window` (15m, 1h, 6h, 24h; default 1h) before the current one up to now. Only minutes with activity are listed, by minute then kind; `minute` is the start of the minute. Read from indexes over each time column, so its cost follows the window’s activity, not the history kept. Jobs deleted since are not counted.',
    },
  })
}
