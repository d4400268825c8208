/**
 * Configuration from the environment. Every value is checked once, at start-up,
 * and a bad one stops the process with a message naming the variable.
 */

/** Where Foreman's Postgres comes from. */
export type DatabaseConfig =
  | {
      kind: 'external'
      url: string
      poolMax: number
      /**
       * `transaction`: `url` is a pooler in transaction mode (PgBouncer): no prepared
       * statements, no session state on it; what needs a session (LISTEN, NOTIFY,
       * migrations, session advisory locks) goes to `directUrl`.
       */
      poolMode: 'session' | 'transaction'
      /** The database itself, for what needs a session; null in session mode. */
      directUrl: string | null
    }
  | {
      kind: 'embedded'
      dataDir: string
      /** As root: where the cluster and a copy of the executables go when the postgres user cannot reach them. */
      relocationDir: string
      poolMax: number
    }

/** Everything the process needs to know, already validated. */
export interface Config {
  env: 'PROD' | 'DEV'
  port: number
  database: DatabaseConfig
  tablePrefix: string
  reaperIntervalSec: number
  defaultLeaseSec: number
  schedulerIntervalSec: number
  retentionDays: number
  /** Seconds a finished job stays in the hot tables before it moves to history (FOREMAN_HISTORY_AFTER_SEC). */
  historyAfterSec: number
  maxBodyBytes: number
  shutdownTimeoutSec: number
  /** Safety poll of the live layer: resync even when no NOTIFY arrived. */
  eventsPollSec: number
  /** Comment keep-alive cadence on SSE streams. */
  sseKeepAliveSec: number
  /** Most SSE streams open at once in this process; beyond it GET /events answers 503. */
  maxStreams: number
  /** Bearer tokens accepted (FOREMAN_API_TOKENS); empty means auth is off. */
  apiTokens: string[]
  /** Build the GIN index on jobs.params at start-up (FOREMAN_PARAMS_INDEX): payload search by index, at a cost to enqueue. */
  paramsIndex: boolean
  /**
   * A streaming replica for the read routes (FOREMAN_READ_DATABASE_URL): lists,
   * reads by id (primary on a miss), runs, stats, queues, workers and the metrics
   * table reads; null reads from the primary.
   */
  readDatabaseUrl: string | null
}

/** A configuration value that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

/** The prefix is spliced into identifiers, so it must be a plain identifier fragment. */
export const TABLE_PREFIX_PATTERN = /^[a-z_][a-z0-9_]{0,40}$/

/** Checks a table prefix and returns it; throws ConfigError otherwise. */
export function validateTablePrefix(prefix: string, variable = 'FOREMAN_TABLE_PREFIX'): string {
  if (prefix !== '' && !TABLE_PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(`${variable} must match ${TABLE_PREFIX_PATTERN} (or be empty), got ${JSON.stringify(prefix)}`)
  }
  return prefix
}

function number(
  env: Env,
  name: string,
  fallback: number,
  opts: { min: number; max: number; integer?: boolean },
): number {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || (opts.integer !== false && !Number.isInteger(value))) {
    throw new ConfigError(
      `${name} must be ${opts.integer === false ? 'a number' : 'an integer'}, got ${JSON.stringify(raw)}`,
    )
  }
  if (value < opts.min || value > opts.max) {
    throw new ConfigError(`${name} must be between ${opts.min} and ${opts.max}, got ${value}`)
  }
  return value
}

/** `true`/`false` (also 1/0, yes/no, on/off; any case); unset or empty is `fallback`. */
function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase()
  if (raw === undefined || raw === '') return fallback
  if (['true', '1', 'yes', 'on'].includes(raw)) return true
  if (['false', '0', 'no', 'off'].includes(raw)) return false
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(env[name])}`)
}

const DATABASE_VARS = ['DATABASE_HOST', 'DATABASE_PORT', 'DATABASE_NAME', 'DATABASE_USER', 'DATABASE_PASSWORD']

function databaseConfig(env: Env): DatabaseConfig {
  const poolMax = number(env, 'FOREMAN_DB_POOL_MAX', 10, { min: 1, max: 1000 })
  if (env.DATABASE_URL) {
    if (!/^postgres(ql)?:\/\//.test(env.DATABASE_URL)) {
      throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://')
    }
    return { kind: 'external', url: env.DATABASE_URL, poolMax, ...poolMode(env) }
  }
  if (DATABASE_VARS.some((name) => env[name] !== undefined)) {
    // Once any DATABASE_* is set the seed's defaults fill in the rest.
    const port = number(env, 'DATABASE_PORT', 5432, { min: 1, max: 65535 })
    const url = new URL('postgres://localhost')
    url.hostname = env.DATABASE_HOST || 'localhost'
    url.port = String(port)
    url.pathname = `/${encodeURIComponent(env.DATABASE_NAME || 'foreman')}`
    url.username = encodeURIComponent(env.DATABASE_USER || 'postgres')
    url.password = encodeURIComponent(env.DATABASE_PASSWORD ?? 'password')
    return { kind: 'external', url: url.toString(), poolMax, ...poolMode(env) }
  }
  if (env.FOREMAN_DB_POOL_MODE?.trim() === 'transaction') {
    throw new ConfigError(
      'FOREMAN_DB_POOL_MODE=transaction needs DATABASE_URL pointing at the pooler (the embedded Postgres has none)',
    )
  }
  return {
    kind: 'embedded',
    dataDir: env.FOREMAN_EMBEDDED_DATA_DIR || '.foreman/postgres',
    relocationDir: env.FOREMAN_EMBEDDED_RELOCATION_DIR || '/var/lib/foreman',
    poolMax,
  }
}

/**
 * FOREMAN_DB_POOL_MODE (`session`, the default, or `transaction` behind PgBouncer)
 * and FOREMAN_DIRECT_DATABASE_URL, which transaction mode requires: LISTEN and
 * migrations cannot go through a transaction pooler, and finding that out at the
 * first NOTIFY that never arrives is worse than refusing to start.
 */
function poolMode(env: Env): { poolMode: 'session' | 'transaction'; directUrl: string | null } {
  const mode = env.FOREMAN_DB_POOL_MODE?.trim() || 'session'
  if (mode !== 'session' && mode !== 'transaction') {
    throw new ConfigError(`FOREMAN_DB_POOL_MODE must be session or transaction, got ${JSON.stringify(mode)}`)
  }
  const direct = postgresUrl(env, 'FOREMAN_DIRECT_DATABASE_URL')
  if (mode === 'transaction' && direct === null) {
    throw new ConfigError(
      'FOREMAN_DB_POOL_MODE=transaction needs FOREMAN_DIRECT_DATABASE_URL: LISTEN, NOTIFY and migrations need a session, which a transaction pooler does not keep',
    )
  }
  return { poolMode: mode, directUrl: mode === 'transaction' ? direct : null }
}

/** Comma-separated tokens; each must be printable and free of spaces (it travels in a header). */
function apiTokens(raw: string | undefined): string[] {
  const tokens = (raw ?? '')
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '')
  for (const token of tokens) {
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new ConfigError('FOREMAN_API_TOKENS must be comma-separated tokens of printable ASCII without spaces')
    }
  }
  return tokens
}

/** Reads and validates the configuration; throws ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const rawEnv = (env.ENV ?? 'PROD').toUpperCase()
  if (rawEnv !== 'PROD' && rawEnv !== 'DEV') {
    throw new ConfigError(`ENV must be PROD or DEV, got ${JSON.stringify(env.ENV)}`)
  }
  return {
    env: rawEnv,
    port: number(env, 'PORT', 7011, { min: 0, max: 65535 }),
    database: databaseConfig(env),
    tablePrefix: validateTablePrefix(env.FOREMAN_TABLE_PREFIX ?? 'foreman_'),
    reaperIntervalSec: number(env, 'FOREMAN_REAPER_INTERVAL_SEC', 10, { min: 0.05, max: 86_400, integer: false }),
    defaultLeaseSec: number(env, 'FOREMAN_DEFAULT_LEASE_SEC', 60, { min: 1, max: 86_400 }),
    schedulerIntervalSec: number(env, 'FOREMAN_SCHEDULER_INTERVAL_SEC', 1, { min: 0.05, max: 86_400, integer: false }),
    retentionDays: number(env, 'FOREMAN_RETENTION_DAYS', 0, { min: 0, max: 36_500, integer: false }),
    historyAfterSec: number(env, 'FOREMAN_HISTORY_AFTER_SEC', 10, { min: 0, max: 86_400, integer: false }),
    maxBodyBytes: number(env, 'FOREMAN_MAX_BODY_BYTES', 1024 * 1024, { min: 1024, max: 256 * 1024 * 1024 }),
    shutdownTimeoutSec: number(env, 'FOREMAN_SHUTDOWN_TIMEOUT_SEC', 25, { min: 0, max: 3600, integer: false }),
    eventsPollSec: number(env, 'FOREMAN_EVENTS_POLL_SEC', 5, { min: 0.05, max: 3600, integer: false }),
    sseKeepAliveSec: number(env, 'FOREMAN_SSE_KEEPALIVE_SEC', 15, { min: 0.05, max: 3600, integer: false }),
    maxStreams: number(env, 'FOREMAN_MAX_STREAMS', 1000, { min: 1, max: 1_000_000 }),
    apiTokens: apiTokens(env.FOREMAN_API_TOKENS),
    paramsIndex: flag(env, 'FOREMAN_PARAMS_INDEX', false),
    readDatabaseUrl: postgresUrl(env, 'FOREMAN_READ_DATABASE_URL'),
  }
}

/** An optional postgres:// URL; unset or empty is null. */
function postgresUrl(env: Env, name: string): string | null {
  const url = env[name]?.trim() || null
  if (url !== null && !/^postgres(ql)?:\/\//.test(url)) {
    throw new ConfigError(`${name} must start with postgres:// or postgresql://`)
  }
  return url
}

/** The configuration with secrets masked, for the start-up log line. */
export function describeConfig(config: Config): Record<string, unknown> {
  const database =
    config.database.kind === 'embedded'
      ? config.database
      : {
          ...config.database,
          url: maskPassword(config.database.url),
          directUrl: config.database.directUrl === null ? null : maskPassword(config.database.directUrl),
        }
  const readDatabaseUrl = config.readDatabaseUrl === null ? null : maskPassword(config.readDatabaseUrl)
  return { ...config, database, readDatabaseUrl, apiTokens: config.apiTokens.map(() => '***') }
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '***'
  }
}
