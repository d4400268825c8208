/**
 * Liveness and readiness. healthz says the process answers; readyz says this
 * instance should get traffic: the database answers within a short bound, every
 * migration is applied, and the process is not shutting down (readiness turns 503
 * the moment a drain begins, while in-flight requests finish).
 */
import { Elysia, t } from 'elysia'
import { pendingMigrations } from '../db/migrate'
import type { Deps } from '../deps'

/** How long readyz waits for the database before calling it unreachable. */
const DATABASE_CHECK_MS = 2000

const Ready = t.Object({ status: t.Literal('ready') })
const NotReadyBody = t.Object({
  status: t.Literal('not ready'),
  error: t.String({ description: 'shutting down, database unreachable or migrations pending' }),
})

/** What a 503 says: which check failed, never where (host, port, role) or which files. */
export type NotReady = 'shutting down' | 'database unreachable' | 'migrations pending'

/**
 * Why this instance is not ready, or null when it is. readyz is open even under
 * bearer auth, so its answer names only the failed check; the detail (the driver's
 * message, with host and port, or the pending files) goes to `log`.
 */
export async function notReadyReason(deps: Deps): Promise<NotReady | null> {
  if (deps.events.closing.aborted) return 'shutting down'
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), DATABASE_CHECK_MS)
  })
  try {
    const pending = await Promise.race([pendingMigrations(deps.sql, deps.tables), timeout])
    if (pending === 'timeout') {
      deps.log.warn({ timeout_ms: DATABASE_CHECK_MS }, 'not ready: the database did not answer in time')
      return 'database unreachable'
    }
    if (pending.length > 0) {
      deps.log.warn({ pending }, 'not ready: migrations pending')
      return 'migrations pending'
    }
    return null
  } catch (err) {
    deps.log.warn({ err }, 'not ready: database unreachable')
    return 'database unreachable'
  } finally {
    clearTimeout(timer)
  }
}

/** GET /healthz and GET /readyz. */
export const healthRoutes = (deps: Deps) =>
  new Elysia()
    .get('/healthz', () => ({ status: 'ok' as const }), {
      response: t.Object({ status: t.Literal('ok') }),
      detail: { tags: ['operations'], summary: 'Liveness: the process answers' },
    })
    .get(
      '/readyz',
      async ({ set }) => {
        const reason = await notReadyReason(deps)
        if (reason === null) return { status: 'ready' as const }
        set.status = 503
        return { status: 'not ready' as const, error: reason }
      },
      {
        response: { 200: Ready, 503: NotReadyBody },
        detail: {
          tags: ['operations'],
          summary: 'Readiness: database reachable, migrations applied, not draining',
          description:
            '503 naming the failed check otherwise (details go to the log); it turns 503 as soon as a shutdown begins.',
        },
      },
    )
