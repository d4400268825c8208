/** GET /metrics: the Prometheus scrape endpoint. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { metricsFlowKeysRead } from './flow-sql'
import { applyFlowKeys, applyTableSnapshot } from './gauges'
import { primeKindQueue } from './known-labels'
import { metricsSnapshotRead, tableHealthRead } from './sql'

/**
 * Reads the tables, then answers every metric in the Prometheus text format.
 * With a replica, the counts come from it and Postgres' statistics (dead tuples,
 * the oldest transaction) from the primary, the server they are about.
 */
export async function scrape(deps: Deps): Promise<string> {
  const { metrics, sql, readSql, tables, log } = deps
  // Side by side with the snapshot, on its own connection and timeout: its cost
  // grows with the flow-controlled backlog, so a slow one must not cost the rest.
  const flowKeys = metricsFlowKeysRead(readSql, tables).catch((err) => {
    log.warn({ err }, 'metrics: flow key read failed')
    return null
  })
  try {
    const snapshot =
      readSql === sql
        ? await metricsSnapshotRead(sql, tables)
        : await Promise.all([metricsSnapshotRead(readSql, tables, false), tableHealthRead(sql, tables)]).then(
            ([counts, health]) => ({ ...counts, ...health }),
          )
    applyTableSnapshot(metrics.tables, snapshot)
    // Pending work is claimed next (here or on another instance): its counters start now.
    for (const q of snapshot.queues) primeKindQueue(metrics, q.kind, q.queue)
  } catch (err) {
    // Counters are still worth serving when the database is slow or down; the
    // read-success gauge says the table gauges are missing and why to look.
    log.warn({ err }, 'metrics: table read failed')
    applyTableSnapshot(metrics.tables, null)
  }
  applyFlowKeys(metrics.tables, await flowKeys)
  return metrics.registry.metrics()
}

/** The metrics route. */
export const metricsRoutes = (deps: Deps) =>
  new Elysia().get(
    '/metrics',
    async () => new Response(await scrape(deps), { headers: { 'content-type': deps.metrics.registry.contentType } }),
    {
      response: { 200: t.String({ description: 'Prometheus text exposition format 0.0.4' }) },
      detail: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description:
          'Counters and histograms of the job lifecycle and HTTP requests since this process started, plus queue depth, oldest pending age, overdue leases, due schedules and table health read from the database at scrape time (with a 2 s statement timeout).',
      },
    },
  )
