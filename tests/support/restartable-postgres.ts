/**
 * A Postgres of one test file's own (the preload's shared one must never go down
 * under other tests) that can be stopped in immediate mode and started again on
 * the same port. Made with the product's embedded launcher (initdb, the postgres
 * system user when root), then stopped and run as our own child with the command
 * line Postgres recorded in postmaster.opts, so that we can send it SIGQUIT:
 * what `pg_ctl stop -m immediate` sends (every connection dropped, no checkpoint).
 * Fast (no fsync) unless asked to be durable: with fsync and synchronous_commit
 * off, an immediate shutdown loses commits already acknowledged, which the fault
 * suite's checker would rightly count against Foreman.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../../src/db/embedded'

/** Splits postmaster.opts: the binary, then each argument in double quotes. */
function parseOpts(text: string): { bin: string; args: string[] } {
  const line = text.trim()
  const bin = line.split(' ')[0] ?? ''
  const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] ?? '').replace(/\\(.)/g, '$1'))
  return { bin, args }
}

/** How a RestartablePostgres runs. */
export interface RestartableOptions {
  /** fsync and synchronous_commit on (the fault suite); default off, for speed. */
  durable?: boolean
  /** Told of every postmaster it spawns (the fault suite kills them on exit). */
  onSpawn?: (proc: ChildProcess, exited: Promise<void>) => void
}

/** A private Postgres that can be restarted in immediate mode. */
export class RestartablePostgres {
  constructor(private readonly options: RestartableOptions = {}) {}

  url = ''
  private dir = ''
  private cmd: { bin: string; args: string[] } | undefined
  private owner: { uid: number; gid: number } | undefined
  private proc: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  /** Initialises and starts it; answers once it accepts connections. */
  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'foreman-restart-pg-'))
    // As root, Postgres runs as the `postgres` user, which must be able to enter here.
    await chmod(this.dir, 0o755)
    const dataDir = join(this.dir, 'pg')
    const db = await startEmbeddedPostgres({
      dataDir,
      fast: !this.options.durable,
      relocationDir: join(this.dir, 'relocated'),
    })
    this.url = db.url
    await db.stop()
    this.cmd = parseOpts(await readFile(join(db.dataDir, 'postmaster.opts'), 'utf8'))
    const { uid, gid } = await stat(db.dataDir)
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
    const { bin, args } = this.cmd ?? { bin: '', args: [] }
    const proc = spawn(bin, args, { ...this.owner, stdio: ['ignore', 'ignore', 'pipe'] })
    this.proc = proc
    this.exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    this.options.onSpawn?.(proc, this.exited)
    let log = ''
    await new Promise<void>((resolve, reject) => {
      proc.stderr?.on('data', (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-4000)
        if (log.includes('ready to accept connections')) resolve()
      })
      proc.once('exit', () => reject(new Error(`postgres exited during start:\n${log}`)))
    })
  }

  /** A fast shutdown (SIGINT) and the folder removed. */
  async close(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGINT')
      await this.exited
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true })
  }
}
