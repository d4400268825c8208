/**
 * PgBouncer (Debian's `pgbouncer`, installed by `.ci/run` when missing) in
 * transaction mode in front of the test Postgres, for `npm run test:pgbouncer`.
 * A small server pool (10), so suites that open many client connections really
 * share server connections the way a deployment behind PgBouncer does.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmod, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'

/** A running PgBouncer and the URL that reaches the test database through it. */
export interface PgBouncer {
  url: string
  stop(): Promise<void>
}

/** The server pool per (database, user): what every Foreman of the run shares. */
export const PGBOUNCER_POOL_SIZE = 10

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Starts PgBouncer in `dir` in front of `databaseUrl`; resolves once it accepts connections. */
export async function startPgBouncer(databaseUrl: string, dir: string): Promise<PgBouncer> {
  const binary = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => spawnSync('test', ['-x', p]).status === 0)
  if (!binary) throw new Error('pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run does it)')
  const target = new URL(databaseUrl)
  const user = decodeURIComponent(target.username)
  const password = decodeURIComponent(target.password)
  const port = await freePort()
  const ini = join(dir, 'pgbouncer.ini')
  await writeFile(join(dir, 'userlist.txt'), `"${user}" "${password}"\n`)
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${PGBOUNCER_POOL_SIZE}`,
      'max_client_conn = 2000',
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  )
  // Writable by the user it runs as (its log).
  await chmod(dir, 0o777)
  // PgBouncer refuses to run as root; Postgres' own user is there whenever tests run as root.
  const asRoot = process.getuid?.() === 0
  const child = spawn(binary, [...(asRoot ? ['-u', 'postgres'] : []), ini], { stdio: 'ignore' })
  const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}${target.pathname}`
  const deadline = Date.now() + 10_000
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (ok) break
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`pgbouncer did not start (see ${dir}/pgbouncer.log)`)
    await Bun.sleep(50)
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM')
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))
    },
  }
}
