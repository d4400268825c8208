/**
 * A Postgres of scenario 6's own (the preload's shared one must never go down
 * under other tests), restartable in immediate mode on the same port. Created
 * with the product's embedded launcher (initdb, the postgres system user when
 * root), then stopped and run as our own child from the same binary with the
 * exact command line Postgres recorded in postmaster.opts, so that we can
 * SIGQUIT it, which is what `pg_ctl stop -m immediate` sends: no checkpoint,
 * every connection dropped, crash recovery at the next start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../../../src/db/embedded'
import { track } from './processes'

/** Splits postmaster.opts: the binary, then each argument in double quotes. */
function parseOpts(text: string): { bin: string; args: string[] } {
  const line = text.trim()
  const bin = line.split(' ')[0]!
  const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'))
  return { bin, args }
}

/** A private Postgres that can be restarted in immediate mode. */
export class PrivatePostgres {
  url = ''
  private dir = ''
  private cmd: { bin: string; args: string[] } | undefined
  private owner: { uid: number; gid: number } | undefined
  private proc: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  /** Initialises and starts it; answers once it accepts connections. */
  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'foreman-faults-pg-'))
    await chmod(this.dir, 0o755)
    const dataDir = join(this.dir, 'pg')
    // Durable (fsync and synchronous_commit on): with them off, an immediate shutdown loses
    // commits already acknowledged (a complete answered 200 came back as a running run).
    const db = await startEmbeddedPostgres({ dataDir })
    this.url = db.url
    await db.stop()
    this.cmd = parseOpts(await readFile(join(dataDir, 'postmaster.opts'), 'utf8'))
    const { uid, gid } = await stat(dataDir)
    this.owner = process.getuid?.() === 0 ? { uid, gid } : undefined
    await this.run()
  }

  /** Immediate shutdown (SIGQUIT, as pg_ctl -m immediate); resolves once the postmaster is gone. */
  async stopImmediate(): Promise<void> {
    this.proc?.kill('SIGQUIT')
    await this.exited
  }

  /** Starts it again on the same port and data; resolves once it accepts connections. */
  async run(): Promise<void> {
    const { bin, args } = this.cmd!
    const proc = spawn(bin, args, { ...this.owner, stdio: ['ignore', 'ignore', 'pipe'] })
    this.proc = proc
    this.exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    track({
      pid: proc.pid ?? 0,
      exited: this.exited.then(() => 0),
      kill: (signal) => proc.kill(signal as NodeJS.Signals),
    })
    let log = ''
    await new Promise<void>((resolve, reject) => {
      proc.stderr?.on('data', (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-4000)
        if (log.includes('ready to accept connections')) resolve()
      })
      proc.once('exit', () => reject(new Error(`postgres exited during start:\n${log}`)))
    })
  }

  /** A fast shutdown (SIGINT) and the data folder removed. */
  async close(): Promise<void> {
    this.proc?.kill('SIGINT')
    await this.exited
    if (this.dir) await rm(this.dir, { recursive: true, force: true })
  }
}
