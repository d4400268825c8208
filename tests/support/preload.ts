/**
 * One Postgres per `bun test` run: DATABASE_URL when set, otherwise an embedded
 * server in a temporary folder, tuned for speed (no fsync). Each test file then
 * works under its own table prefix (see harness.ts), so files never collide.
 */
import { afterAll } from 'bun:test'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../../src/db/embedded'
import { startPgBouncer } from './pgbouncer'

const dir = await mkdtemp(join(tmpdir(), 'foreman-test-'))
// As root, Postgres runs as the `postgres` user, which must be able to enter here.
await chmod(dir, 0o755)
// In a checkout that user cannot enter (a clone under /root), a copy of the server
// executables goes here rather than into /var/lib/foreman; the servers that tests
// start as child processes inherit it.
const relocationDir = join(dir, 'relocated')
process.env.FOREMAN_EMBEDDED_RELOCATION_DIR ??= relocationDir

if (!process.env.DATABASE_URL) {
  const db = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), fast: true, relocationDir })
  process.env.DATABASE_URL = db.url
  process.env.FOREMAN_TEST_EMBEDDED = '1'
  afterAll(async () => {
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })
} else {
  afterAll(() => rm(dir, { recursive: true, force: true }))
}

// `npm run test:pgbouncer`: PgBouncer in transaction mode in front of it; the
// fixtures send their pools through it (harness.ts).
if (process.env.FOREMAN_TEST_POOL_MODE === 'transaction' && !process.env.FOREMAN_TEST_PGBOUNCER_URL) {
  const bouncerDir = join(dir, 'pgbouncer')
  await mkdir(bouncerDir, { recursive: true })
  const bouncer = await startPgBouncer(process.env.DATABASE_URL as string, bouncerDir)
  process.env.FOREMAN_TEST_PGBOUNCER_URL = bouncer.url
  afterAll(() => bouncer.stop())
}
