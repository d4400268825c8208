import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Sql } from './client'
import { unbounded } from './deadline'
import type { Tables } from './tables'

/**
 * Where the numbered, forward-only `.sql` migrations live: the repository's
 * `migrations/` folder, or inside a compiled binary (`npm run build` embeds the
 * folder as an asset next to the bundled entry, in Bun's virtual file system).
 */
export const MIGRATIONS_DIR = Bun.isStandaloneExecutable
  ? join(import.meta.dir, 'migrations')
  : join(import.meta.dir, '..', '..', 'migrations')

const listed = new Map<string, Promise<string[]>>()

/**
 * The migration file names in `dir`, in order. Listed once per process: the files
 * ship with the code, and readiness asks on every probe.
 */
function migrationFiles(dir: string): Promise<string[]> {
  let files = listed.get(dir)
  if (!files) {
    files = readdir(dir).then((all) => all.filter((f) => /^\d+_.+\.sql$/.test(f)).sort())
    listed.set(dir, files)
  }
  return files
}

/** One migration file, already rendered for a table prefix. */
interface Migration {
  version: number
  name: string
  text: string
}

/**
 * Migrations name tables as `{{prefix}}jobs`; the prefix has been validated as an
 * identifier fragment, so substituting it is safe (values never go this way).
 */
async function loadMigrations(tables: Tables, dir: string): Promise<Migration[]> {
  const files = await migrationFiles(dir)
  return Promise.all(
    files.map(async (name) => ({
      version: Number.parseInt(name, 10),
      name,
      text: (await Bun.file(join(dir, name)).text()).replaceAll('{{prefix}}', tables.prefix),
    })),
  )
}

/**
 * Applies pending migrations in one transaction under a transaction-scoped advisory
 * lock keyed by the prefix, so instances booting together apply each file once.
 * Returns the names of the files it applied.
 */
export async function migrate(sql: Sql, tables: Tables, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await loadMigrations(tables, dir)
  // Without the per-call deadline: a migration may rightly run long (an index built on a large table).
  return unbounded(sql).begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`foreman-migrate:${tables.prefix}`}))`
    await tx`
      create table if not exists ${tx(tables.migrations)} (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`
    const done = new Set(
      (await tx<{ version: number }[]>`select version from ${tx(tables.migrations)}`).map((r) => r.version),
    )
    const applied: string[] = []
    for (const m of migrations) {
      if (done.has(m.version)) continue
      await tx.unsafe(m.text)
      await tx`insert into ${tx(tables.migrations)} (version, name) values (${m.version}, ${m.name})`
      applied.push(m.name)
    }
    return applied
  })
}

/**
 * The migration files not yet recorded as applied (empty when the schema is current).
 * Throws when the database cannot be asked.
 */
export async function pendingMigrations(sql: Sql, tables: Tables, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = await migrationFiles(dir)
  const [exists] = await sql<{ found: boolean }[]>`select to_regclass(${tables.migrations}) is not null as found`
  if (!exists?.found) return files
  const applied = new Set(
    (await sql<{ version: number }[]>`select version from ${sql(tables.migrations)}`).map((r) => r.version),
  )
  return files.filter((f) => !applied.has(Number.parseInt(f, 10)))
}

/** Removes Foreman's tables for this prefix (tests, benchmarks, uninstalling). */
export async function dropTables(sql: Sql, tables: Tables): Promise<void> {
  await sql`
    drop table if exists ${sql(tables.runs)}, ${sql(tables.jobs)}, ${sql(tables.schedules)}, ${sql(tables.pausedQueues)},
      ${sql(tables.limits)}, ${sql(tables.flowSlots)}, ${sql(tables.jobsHistory)}, ${sql(tables.runsHistory)},
      ${sql(tables.jobKeys)}, ${sql(tables.migrations)}
    cascade`
  // The jobs table's trigger went with it; functions stay unless dropped by name.
  await sql`drop function if exists ${sql(`${tables.prefix}jobs_dependents_settle`)}()`
  await sql`drop function if exists ${sql(`${tables.prefix}history_ensure_day`)}(date)`
}

/** The name of the optional GIN index on jobs.params (FOREMAN_PARAMS_INDEX). */
export const paramsIndexName = (tables: Tables) => `${tables.prefix}jobs_params_idx`

/** How long an instance waits between tries while another one builds the params index. */
const PARAMS_INDEX_POLL_MS = 250

/**
 * Builds the GIN index (jsonb_path_ops) that serves `GET /jobs?params=` and bulk
 * filters on params, unless it is there; answers whether this call built it.
 * Opt-in (FOREMAN_PARAMS_INDEX), not a numbered migration: it cost batch enqueue
 * 9–17% and single enqueue 0–5% (bench/params-index.ts, two runs, interleaved
 * rounds). CREATE INDEX CONCURRENTLY, so enqueues and claims go on while a
 * large table is indexed; it cannot run inside a transaction, hence outside
 * migrate(). A build cut short (a crash, a restart) leaves an invalid
 * index that `if not exists` would keep for good: it is dropped and built again.
 * Turning the setting off leaves an existing index alone (drop it by hand).
 *
 * Instances starting together take turns under a session advisory lock, asked
 * for with pg_try_advisory_lock and a pause: a concurrent build waits for every
 * transaction older than it, and a waiter parked inside pg_advisory_lock would
 * be one, waiting on the builder in turn.
 */
export async function ensureParamsIndex(sql: Sql, tables: Tables): Promise<boolean> {
  const name = paramsIndexName(tables)
  const key = `foreman-params-index:${tables.prefix}`
  // Its own connection (the advisory lock is the session's) without the per-call deadline: a build may rightly run long.
  const conn = await unbounded(sql).reserve()
  try {
    while (!(await conn<{ ok: boolean }[]>`select pg_try_advisory_lock(hashtext(${key})) as ok`)[0]?.ok) {
      await Bun.sleep(PARAMS_INDEX_POLL_MS)
    }
    try {
      const [found] = await conn<{ valid: boolean }[]>`
        select indisvalid as valid from pg_index where indexrelid = to_regclass(${name})`
      if (found?.valid) return false
      // Identifiers from a validated prefix, as in the migrations.
      if (found) await conn.unsafe(`drop index concurrently if exists ${name}`)
      await conn.unsafe(
        `create index concurrently if not exists ${name} on ${tables.jobs} using gin (params jsonb_path_ops)`,
      )
      return true
    } finally {
      await conn`select pg_advisory_unlock(hashtext(${key}))`
    }
  } finally {
    conn.release()
  }
}
