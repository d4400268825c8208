/**
 * Starts a whole Foreman process: database (external or embedded), migrations,
 * the HTTP server and the sweeps; and stops them again in order.
 */
import { buildApp, type ForemanApp } from './app'
import { type Config, describeConfig } from './config'
import { openConnections } from './db/connections'
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded'
import { ensureParamsIndex, migrate, paramsIndexName } from './db/migrate'
import { tablesFor } from './db/tables'
import type { Deps } from './deps'
import { createLiveEvents } from './events/live'
import type { Logger } from './log'
import { primeKnownFromDatabase } from './metrics/known-labels'
import { createMetrics } from './metrics/registry'
import { MAX_WAIT_SEC } from './runs/model'
import { startHistory } from './sweeps/history'
import type { SweepLoop } from './sweeps/loop'
import { startReaper } from './sweeps/reaper'
import { startRetention } from './sweeps/retention'
import { startScheduler } from './sweeps/scheduler'
import { VERSION } from './version'

/** A running Foreman. */
export interface RunningForeman {
  port: number
  /** Stops accepting, drains in-flight requests, stops sweeps, closes the pool and the embedded database. */
  shutdown(): Promise<void>
}

/** Boots Foreman with `config`; resolves once it is listening. */
export async function startForeman(config: Config, log: Logger): Promise<RunningForeman> {
  log.info({ version: VERSION, config: describeConfig(config) }, 'starting Foreman')
  let embedded: EmbeddedDatabase | undefined
  let url: string
  if (config.database.kind === 'embedded') {
    log.info({ dataDir: config.database.dataDir }, 'no database configured: starting embedded Postgres')
    const pgLog = log.child({ component: 'postgres' })
    embedded = await startEmbeddedPostgres({
      dataDir: config.database.dataDir,
      relocationDir: config.database.relocationDir,
      onLog: (line) => pgLog.debug(line),
      // A moved cluster or a stopped leftover server is something an operator must see.
      onNotice: (message) => pgLog.warn(message),
    })
    url = embedded.url
    log.info(
      {
        dataDir: embedded.dataDir,
        ...(embedded.movedFrom && { movedFrom: embedded.movedFrom }),
        url: embedded.url.replace(/:[^:@/]*@/, ':***@'),
      },
      'using embedded Postgres',
    )
  } else {
    url = config.database.url
    log.info({ url: url.replace(/:[^:@/]*@/, ':***@') }, 'using external Postgres')
  }

  const db = config.database
  const connections = openConnections({
    url,
    poolMax: db.poolMax,
    poolMode: db.kind === 'external' ? db.poolMode : 'session',
    directUrl: db.kind === 'external' ? db.directUrl : null,
    readUrl: config.readDatabaseUrl,
  })
  const { sql, sessionSql, notifySql, readSql } = connections
  if (sessionSql !== sql)
    log.info('transaction pool mode: LISTEN, NOTIFY and migrations go to FOREMAN_DIRECT_DATABASE_URL')
  if (readSql !== sql) log.info('read routes go to the replica at FOREMAN_READ_DATABASE_URL')
  const tables = tablesFor(config.tablePrefix)
  const applied = await migrate(sessionSql, tables)
  log.info({ applied, prefix: config.tablePrefix }, applied.length ? 'migrations applied' : 'schema up to date')
  if (config.paramsIndex && (await ensureParamsIndex(sessionSql, tables))) {
    log.info({ index: paramsIndexName(tables) }, 'params index built (FOREMAN_PARAMS_INDEX)')
  }

  // NOTIFY gets a connection of its own, so a burst of notifications never waits
  // behind (or holds up) the query pool; LISTEN has its own too (postgres.js).
  const events = createLiveEvents({
    sql,
    listenSql: sessionSql,
    notifySql,
    tables,
    log,
    pollIntervalMs: config.eventsPollSec * 1000,
  })
  await events.start()

  const deps: Deps = { config, sql, readSql, tables, log, events, metrics: createMetrics() }
  await primeKnownFromDatabase(deps)
  const app = buildApp(deps)
  const server = listen(app, config)
  const sweeps = startSweeps(deps)
  log.info({ port: server.port }, `Foreman v${VERSION} listening on :${server.port}`)

  let stopping: Promise<void> | undefined
  const shutdown = () => {
    stopping ??= (async () => {
      log.info('shutting down: draining requests')
      // End SSE streams and long-polls first, or the drain would wait them out.
      events.close()
      const drained = server.stop(false)
      const deadline = Bun.sleep(config.shutdownTimeoutSec * 1000).then(() => 'timeout' as const)
      if ((await Promise.race([drained, deadline])) === 'timeout') {
        log.warn('drain timed out: closing remaining connections')
        await server.stop(true)
      }
      await Promise.all(sweeps.map((s) => s.stop()))
      await events.stop()
      await connections.end()
      await embedded?.stop()
      log.info('stopped')
    })()
    return stopping
  }
  return { port: server.port ?? config.port, shutdown }
}

/** Starts the background sweeps every instance runs: reaper, history, retention (when on) and scheduler. */
export function startSweeps(deps: Deps): SweepLoop[] {
  return [startReaper(deps), startHistory(deps), startRetention(deps), startScheduler(deps)].filter(
    (s): s is SweepLoop => s !== null,
  )
}

/**
 * Serves `app` on `config.port` as production does (tests pass port 0).
 *
 * Bun's own body limit is lifted: over it Bun answers an empty 413 before the app
 * sees the request, and every refusal must be JSON. The app's limit
 * (maxBodyBytes) is the one that holds: a Content-Length over it is refused
 * before a byte is read, a chunked body is read only up to it, and Bun drops
 * what nobody reads (measured: 300 MB sent either way, the server's RSS stayed
 * at 24 MB).
 */
export function listen(app: ForemanApp, config: Pick<Config, 'port'>) {
  return Bun.serve({
    port: config.port,
    fetch: app.fetch,
    // Long-poll claims and waiting enqueues are silent for up to 30 s; SSE streams
    // lift the timeout per request and send keep-alives.
    idleTimeout: MAX_WAIT_SEC + 10,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  })
}
