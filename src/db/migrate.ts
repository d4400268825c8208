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
      ${sql(tables.migrations)}
    cascade`
}
